"""A U-Net encoder-decoder (Ronneberger et al., 2015) feeding the adaptive-bins head.

Double 3x3 conv + BatchNorm + ReLU per level, 2x2 max-pool down, bilinear (align_corners) up and
skip concatenation; standard or depthwise-separable convolutions. The decoder stops at stride 2
and projects to the head's width, so the model's output is at half the input resolution like
AdaBins'. Any input size works: pooling rounds up and up-sampling resizes to the skip's size.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import decoder as decoder_lib
from adabins_jax.models import layers


class DoubleConv(nnx.Module):
  """(3x3 conv -> BatchNorm -> ReLU) twice."""

  def __init__(self, in_ch: int, out_ch: int, *, conv: str, dtype, param_dtype,
               rngs: nnx.Rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.conv1 = layers.make_conv(conv, in_ch, out_ch, 3, padding=1, **kw)
    self.bn1 = layers.batch_norm(out_ch, **kw)
    self.conv2 = layers.make_conv(conv, out_ch, out_ch, 3, padding=1, **kw)
    self.bn2 = layers.batch_norm(out_ch, **kw)

  def __call__(self, x):
    x = jax.nn.relu(self.bn1(self.conv1(x)))
    return jax.nn.relu(self.bn2(self.conv2(x)))


def _max_pool(x: jax.Array) -> jax.Array:
  return nnx.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')


class UNet(nnx.Module):
  """U-Net returning an ``out_ch``-channel map at stride 2.

  Args:
    widths: channels per level, level i at stride 2**i; at least three levels.
    conv: 'standard' or 'dws' (depthwise-separable, for every 3x3 conv but the first, whose three
      input channels leave nothing to separate).
    out_ch: channels of the output map (the bins head's input).
  """

  def __init__(self, widths: Sequence[int] = (24, 48, 96, 192, 384), *, conv: str = 'standard',
               out_ch: int = 128, dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    widths = tuple(int(w) for w in widths)
    if len(widths) < 3:
      raise ValueError(f'UNet needs at least 3 levels of widths, got {widths}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.widths = widths
    self.down = nnx.List([DoubleConv(3, widths[0], conv='standard', **kw)] + [
        DoubleConv(widths[i - 1], widths[i], conv=conv, **kw) for i in range(1, len(widths))])
    self.up = nnx.List([
        decoder_lib.UpBlock(widths[i + 1], widths[i], widths[i], conv=conv,
                            activation=jax.nn.relu, **kw)
        for i in range(len(widths) - 2, 0, -1)])
    self.out = layers.make_conv(conv, widths[1], out_ch, 3, padding=1, **kw)

  @property
  def min_input_size(self) -> int:
    return 2 ** (len(self.widths) - 1)

  def __call__(self, x: jax.Array) -> jax.Array:
    skips = []
    for i, block in enumerate(self.down):
      x = block(x if i == 0 else _max_pool(x))
      skips.append(x)
    x = skips.pop()
    for block in self.up:
      x = block(x, skips.pop())
    return self.out(x)
