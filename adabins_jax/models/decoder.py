"""The AdaBins decoder (``DecoderBN`` of the release) and the U-Net style up-block it uses."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import layers


class UpBlock(nnx.Module):
  """Resize to the skip's size (align_corners bilinear), concatenate, (conv-BN-act) twice."""

  def __init__(self, in_ch: int, skip_ch: int, out_ch: int, *, conv: str = 'standard',
               activation=layers.leaky_relu, dtype=None, param_dtype=jnp.float32,
               rngs: nnx.Rngs):
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.conv1 = layers.make_conv(conv, in_ch + skip_ch, out_ch, 3, padding=1, **kw)
    self.bn1 = layers.batch_norm(out_ch, **kw)
    self.conv2 = layers.make_conv(conv, out_ch, out_ch, 3, padding=1, **kw)
    self.bn2 = layers.batch_norm(out_ch, **kw)
    self.activation = activation

  def __call__(self, x: jax.Array, skip: jax.Array) -> jax.Array:
    x = layers.resize_bilinear(x, skip.shape[1:3])
    x = jnp.concatenate([x, skip.astype(x.dtype)], axis=-1)
    x = self.activation(self.bn1(self.conv1(x)))
    return self.activation(self.bn2(self.conv2(x)))


class Decoder(nnx.Module):
  """AdaBins' decoder over encoder taps at strides 2, 4, 8, 16 and 32.

  The bottleneck is a 1x1 conv *with padding 1*, a quirk of the release that grows the map by two
  pixels each side; it is kept because released weights were trained with it. Up-block widths
  halve from ``features // 2``; the output is ``out_ch`` channels at stride 2.
  """

  def __init__(self, feature_channels: Sequence[int], *, features: int | None = None,
               out_ch: int = 128, dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    if len(feature_channels) != 5:
      raise ValueError(f'Decoder needs 5 encoder taps, got channels {tuple(feature_channels)}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    bottleneck = feature_channels[-1]
    features = features or bottleneck
    self.conv2 = layers.Conv(bottleneck, features, 1, padding=1, **kw)
    skips = feature_channels[3::-1]
    widths = [features // 2 ** i for i in range(5)]
    self.up1, self.up2, self.up3, self.up4 = (
        UpBlock(widths[i], skips[i], widths[i + 1], **kw) for i in range(4))
    self.conv3 = layers.Conv(widths[4], out_ch, 3, padding=1, **kw)

  def __call__(self, taps: Sequence[jax.Array]) -> jax.Array:
    block0, block1, block2, block3, block4 = taps
    x = self.conv2(block4)
    x = self.up1(x, block3)
    x = self.up2(x, block2)
    x = self.up3(x, block1)
    x = self.up4(x, block0)
    return self.conv3(x)
