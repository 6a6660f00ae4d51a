"""Building blocks shared by every model: convolutions, resizing, activations.

All tensors are NHWC. Convolutions take PyTorch-style symmetric padding or TensorFlow
"SAME" padding, and can be standard or depthwise-separable.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def _align_corners_lerp(x: jax.Array, axis: int, out_size: int) -> jax.Array:
  """Linear interpolation along one axis with align_corners=True sampling."""
  in_size = x.shape[axis]
  if in_size == out_size:
    return x
  if out_size == 1 or in_size == 1:
    # align_corners maps every output to source 0 when either side has one sample.
    return jnp.repeat(jnp.take(x, jnp.array([0]), axis=axis), out_size, axis=axis)
  # Source coordinate of each output sample, computed in float64 on the host so the
  # indices and weights are exact constants of the compiled program.

  src = np.arange(out_size, dtype=np.float64) * ((in_size - 1) / (out_size - 1))
  lo = np.clip(np.floor(src).astype(np.int32), 0, in_size - 2)
  frac = (src - lo).astype(np.float32)
  shape = [1] * x.ndim
  shape[axis] = out_size
  w = jnp.asarray(frac, dtype=x.dtype).reshape(shape)
  a = jnp.take(x, jnp.asarray(lo), axis=axis)
  b = jnp.take(x, jnp.asarray(lo + 1), axis=axis)
  return a + (b - a) * w


def resize_bilinear(x: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear resize of an NHWC tensor with PyTorch's ``align_corners=True`` semantics.

  ``jax.image.resize`` samples at half-pixel centres and antialiases when shrinking, so it
  does not reproduce ``F.interpolate(..., align_corners=True)``; this separable lerp over
  explicit source indices does, exactly.

  Args:
    x: array of shape (N, H, W, C).
    size: the output (height, width).

  Returns:
    Array of shape (N, size[0], size[1], C) and the dtype of ``x``.
  """
  if x.ndim != 4:
    raise ValueError(f'resize_bilinear expects NHWC (4-D) input, got shape {x.shape}.')
  out_h, out_w = (int(s) for s in size)
  if out_h < 1 or out_w < 1:
    raise ValueError(f'resize_bilinear: output size must be positive, got {size}.')
  x = _align_corners_lerp(x, 1, out_h)
  return _align_corners_lerp(x, 2, out_w)
