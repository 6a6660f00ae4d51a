"""EfficientNet encoders as the TensorFlow-ported weights define them (timm/geffnet ``tf_*``).

TF "SAME" padding, BatchNorm eps 1e-3 and momentum 0.01 (PyTorch convention), swish, and
squeeze-excite reduced from the block *input* width. Attribute names follow geffnet's so that the
released checkpoints map onto them one to one (see ``adabins_jax/torch_weights/mapping.py``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import activations
from adabins_jax.models import layers

# (repeats, kernel, stride, expand ratio, output channels) of the seven B0 stages; stage 0 uses
# depthwise-separable blocks, the others inverted residuals.
_B0_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
              (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
_B0_STEM, _B0_HEAD = 32, 1280
# Stages whose outputs the AdaBins decoder uses (strides 2, 4, 8, 16), then the head (stride 32).
SKIP_STAGES = (0, 1, 2, 4)


@dataclasses.dataclass(frozen=True)
class EfficientNetSpec:
  """Compound-scaling coefficients of one EfficientNet variant."""
  width: float
  depth: float


SPECS = {
    'b0': EfficientNetSpec(1.0, 1.0), 'b1': EfficientNetSpec(1.0, 1.1),
    'b2': EfficientNetSpec(1.1, 1.2), 'b3': EfficientNetSpec(1.2, 1.4),
    'b4': EfficientNetSpec(1.4, 1.8), 'b5': EfficientNetSpec(1.6, 2.2),
    'b6': EfficientNetSpec(1.8, 2.6), 'b7': EfficientNetSpec(2.0, 3.1),
}


def round_channels(channels: float, divisor: int = 8) -> int:
  """Width scaling as in the reference: nearest multiple of 8, never more than 10% down."""
  rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
  return rounded + divisor if rounded < 0.9 * channels else rounded


def _bn(features, rngs, dtype, param_dtype):
  # TF's BatchNorm defaults: decay 0.99 (PyTorch momentum 0.01), eps 1e-3.
  return layers.batch_norm(features, torch_momentum=0.01, eps=1e-3, dtype=dtype,
                           param_dtype=param_dtype, rngs=rngs)


class SqueezeExcite(nnx.Module):
  """Channel gating from globally pooled features."""

  def __init__(self, channels: int, reduced: int, *, dtype, param_dtype, rngs):
    conv = dict(padding=0, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.conv_reduce = layers.Conv(channels, reduced, 1, **conv)
    self.conv_expand = layers.Conv(reduced, channels, 1, **conv)

  def __call__(self, x):
    s = jnp.mean(x, axis=(1, 2), keepdims=True)
    s = self.conv_expand(activations.silu(self.conv_reduce(s)))
    return x * jax.nn.sigmoid(s)


class MBConv(nnx.Module):
  """Inverted residual (expand > 1) or depthwise-separable block (expand == 1)."""

  def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int,
               drop_path_rate: float, *, dtype, param_dtype, rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype)
    mid = in_ch * expand
    self.expand = expand
    if expand != 1:
      self.conv_pw = layers.Conv(in_ch, mid, 1, use_bias=False, rngs=rngs, **kw)
      self.bn1 = _bn(mid, rngs, **kw)
    self.conv_dw = layers.Conv(mid, mid, kernel, strides=stride, groups=mid, use_bias=False,
                               rngs=rngs, **kw)
    bn_dw = _bn(mid, rngs, **kw)
    self.se = SqueezeExcite(mid, max(1, int(in_ch * 0.25)), rngs=rngs, **kw)
    proj = layers.Conv(mid, out_ch, 1, use_bias=False, rngs=rngs, **kw)
    bn_proj = _bn(out_ch, rngs, **kw)
    # geffnet names: DepthwiseSeparableConv has conv_dw/bn1/conv_pw/bn2, InvertedResidual has
    # conv_pw/bn1/conv_dw/bn2/conv_pwl/bn3.
    if expand == 1:
      self.bn1, self.conv_pw, self.bn2 = bn_dw, proj, bn_proj
    else:
      self.bn2, self.conv_pwl, self.bn3 = bn_dw, proj, bn_proj
    self.residual = stride == 1 and in_ch == out_ch
    self.drop_path = layers.drop_path(drop_path_rate, rngs) if self.residual else None

  def __call__(self, x):
    shortcut = x
    if self.expand == 1:
      x = self.se(activations.silu(self.bn1(self.conv_dw(x))))
      x = self.bn2(self.conv_pw(x))
    else:
      x = activations.silu(self.bn1(self.conv_pw(x)))
      x = self.se(activations.silu(self.bn2(self.conv_dw(x))))
      x = self.bn3(self.conv_pwl(x))
    if self.residual:
      x = self.drop_path(x) + shortcut
    return x


class EfficientNet(nnx.Module):
  """EfficientNet feature extractor returning the taps the AdaBins decoder needs.

  Calling it on (N, H, W, 3) returns a list of five maps at strides 2, 4, 8, 16 and 32: the
  outputs of stages 0, 1, 2 and 4, and the 1x1 head convolution before its BatchNorm (the release
  taps ``conv_head`` directly; ``bn2`` is kept so ImageNet and released weights load unchanged).
  """

  def __init__(self, variant: str = 'b5', *, drop_path_rate: float = 0.0, dtype=None,
               param_dtype=jnp.float32, rngs: nnx.Rngs):
    if variant not in SPECS:
      raise ValueError(f'EfficientNet variant must be one of {sorted(SPECS)}, got {variant!r}.')
    spec = SPECS[variant]
    kw = dict(dtype=dtype, param_dtype=param_dtype)
    stem = round_channels(_B0_STEM * spec.width)
    self.conv_stem = layers.Conv(3, stem, 3, strides=2, use_bias=False, rngs=rngs, **kw)
    self.bn1 = _bn(stem, rngs, **kw)
    repeats = [int(math.ceil(r * spec.depth)) for r, *_ in _B0_STAGES]
    total, index, in_ch = sum(repeats), 0, stem
    stages, channels = [], []
    for n, (_, kernel, stride, expand, out) in zip(repeats, _B0_STAGES):
      out_ch, blocks = round_channels(out * spec.width), []
      for i in range(n):
        blocks.append(MBConv(in_ch, out_ch, kernel, stride if i == 0 else 1, expand,
                             drop_path_rate * index / total, rngs=rngs, **kw))
        in_ch, index = out_ch, index + 1
      stages.append(nnx.List(blocks))
      channels.append(out_ch)
    self.blocks = nnx.List(stages)
    head = round_channels(_B0_HEAD * spec.width)
    self.conv_head = layers.Conv(in_ch, head, 1, use_bias=False, rngs=rngs, **kw)
    self.bn2 = _bn(head, rngs, **kw)
    # Tuples, not lists: static attributes end up in the graphdef, which jit must hash.
    self.channels = tuple(channels)
    self.feature_channels = tuple(channels[s] for s in SKIP_STAGES) + (head,)

  def __call__(self, x: jax.Array) -> list[jax.Array]:
    x = activations.silu(self.bn1(self.conv_stem(x)))
    taps = []
    for i, stage in enumerate(self.blocks):
      for block in stage:
        x = block(x)
      if i in SKIP_STAGES:
        taps.append(x)
    taps.append(self.conv_head(x))
    return taps
