"""3x3 convolution by Winograd's minimal filtering, F(4x4, 3x3), for XLA on CPU.

A stride-1 3x3 convolution computes every 4x4 block of output from a 6x6 block of input. Winograd
(Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) rewrites that as

    Y = A^T [ (G g G^T) * (B^T d B) ] A

with fixed small matrices A, B, G: the 6x6 "transformed" input tiles and 3x3 -> 6x6 transformed
kernels are multiplied elementwise, which over channels is 36 independent matrix products
(tiles x C_in) @ (C_in x C_out). That is 36 multiply-adds per 16 outputs instead of 144, 4x fewer,
and the products are plain batched matmuls, which XLA's CPU backend runs closer to peak than its
convolution. The transforms are additions and small-constant multiplies over the whole tensor,
memory-bound, so the method pays where the matmuls are large: many channels and enough tiles.

On the paper model's decoder (nine 3x3 convolutions, 227 of its 272 GFLOP at 416x544) this takes
the CPU forward pass from 1.8-2.2 s to 1.4-1.6 s per 416x544 image on 2 cores (alternated with
XLA's convolution: ``benchmarks/torch_reference.py --conv3x3_impls auto,xla``; README).
In float32 the result differs from the direct convolution by ~4e-6 relative (the constants of
F(4x4, 3x3) are exact in binary except 1/6, 1/12, 1/24), ~1e-7 after a whole model; in bfloat16
the transforms lose too much, so ``layers.Conv`` uses this only for float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

TILE = 4  # output tile edge m of F(m x m, 3 x 3)
_ALPHA = TILE + 2  # input tile edge

# The matrices of F(4, 3) with interpolation points 0, +-1, +-2, infinity (Lavin & Gray, eq. 7).
_BT = np.array([[4, 0, -5, 0, 1, 0],
                [0, -4, -4, 1, 1, 0],
                [0, 4, -4, -1, 1, 0],
                [0, -2, -1, 2, 1, 0],
                [0, 2, -1, -2, 1, 0],
                [0, 4, 0, -5, 0, 1]], np.float64)
_G = np.array([[1 / 4, 0, 0],
               [-1 / 6, -1 / 6, -1 / 6],
               [-1 / 6, 1 / 6, -1 / 6],
               [1 / 24, 1 / 12, 1 / 6],
               [1 / 24, -1 / 12, 1 / 6],
               [0, 0, 1]], np.float64)
_AT = np.array([[1, 1, 1, 1, 1, 0],
                [0, 1, -1, 2, -2, 0],
                [0, 1, 1, 4, 4, 0],
                [0, 1, -1, 8, -8, 1]], np.float64)


def _combine(matrix: np.ndarray, terms: Sequence[jax.Array]) -> jax.Array:
  """``stack([sum_i matrix[p, i] * terms[i] for p])``, skipping zeros and unit multiplies."""
  rows = []
  for coefficients in matrix:
    total = None
    for c, term in zip(coefficients, terms):
      if c == 0:
        continue
      scaled = term if c == 1 else -term if c == -1 else term * np.asarray(c, term.dtype)
      total = scaled if total is None else total + scaled
    rows.append(total)
  return jnp.stack(rows, 0)


def _taps(x: jax.Array, axis: int, count: int) -> list[jax.Array]:
  """The ``_ALPHA`` strided views ``x[TILE * t + i]`` (t < count) along ``axis``, i < _ALPHA."""
  views = []
  for i in range(_ALPHA):
    start = [0] * x.ndim
    limit = list(x.shape)
    strides = [1] * x.ndim
    start[axis], limit[axis], strides[axis] = i, i + TILE * (count - 1) + 1, TILE
    views.append(jax.lax.slice(x, start, limit, strides))
  return views


def transform_kernel(kernel: jax.Array) -> jax.Array:
  """(3, 3, C_in, C_out) HWIO kernel -> (36, C_in, C_out) transformed kernels G g G^T.

  The 36 are in column-major order (index 6 * col + row), as ``conv3x3`` orders its input tiles.
  """
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f'Winograd F(4x4, 3x3) needs a 3x3 kernel, got HWIO shape {kernel.shape}.')
  rows = _combine(_G, [kernel[i] for i in range(3)])  # (6_row, 3, C_in, C_out): G g
  tiles = _combine(_G, [rows[:, j] for j in range(3)])  # (6_col, 6_row, C_in, C_out): G g G^T
  return tiles.reshape(_ALPHA * _ALPHA, *kernel.shape[2:])


def conv3x3(x: jax.Array, kernel: jax.Array,
            pads: Sequence[tuple[int, int]] = ((1, 1), (1, 1))) -> jax.Array:
  """Stride-1 3x3 convolution of NHWC ``x`` with an HWIO ``kernel``, by Winograd F(4x4, 3x3).

  Computes what ``lax.conv_general_dilated(x, kernel, (1, 1), pads, ('NHWC', 'HWIO', 'NHWC'))``
  computes, to float rounding, for any input size (ragged edge tiles are zero-padded and cropped).

  Args:
    x: (N, H, W, C_in) input.
    kernel: (3, 3, C_in, C_out) kernel.
    pads: explicit, non-negative ((top, bottom), (left, right)) zero padding.

  Returns:
    (N, H + top + bottom - 2, W + left + right - 2, C_out).
  """
  (top, bottom), (left, right) = (tuple(int(p) for p in pair) for pair in pads)
  if min(top, bottom, left, right) < 0:
    raise ValueError(f'Winograd conv3x3 needs non-negative padding, got {pads}.')
  transformed = transform_kernel(kernel)  # Also checks that the kernel is 3x3.
  if kernel.shape[2] != x.shape[-1]:
    raise ValueError(f'Winograd conv3x3: kernel of HWIO shape {kernel.shape} does not fit an '
                     f'input of NHWC shape {x.shape}.')
  n, h, w, _ = x.shape
  out_h, out_w = h + top + bottom - 2, w + left + right - 2
  if out_h < 1 or out_w < 1:
    raise ValueError(f'Winograd conv3x3: input {x.shape} with padding {pads} is smaller than '
                     'the 3x3 kernel.')
  tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
  # Zero-pad so that the last tile's 6x6 input window is complete.
  x = jnp.pad(x, ((0, 0), (top, TILE * tiles_h + 2 - h - top),
                  (left, TILE * tiles_w + 2 - w - left), (0, 0)))
  # Input tiles B^T d B, one axis at a time: (6_col, 6_row, N, tiles_h, tiles_w, C_in).
  rows = _combine(_BT, _taps(x, 1, tiles_h))  # (6_row, N, tiles_h, W, C_in)
  tiles = _combine(_BT, _taps(rows, 3, tiles_w))
  tiles = tiles.reshape(_ALPHA * _ALPHA, n * tiles_h * tiles_w, -1)
  products = jnp.einsum('tkc,tco->tko', tiles, transformed)
  products = products.reshape(_ALPHA, _ALPHA, n, tiles_h, tiles_w, -1)
  # Output tiles A^T M A: (4_row, 4_col, N, tiles_h, tiles_w, C_out), then interleaved.
  cols = _combine(_AT, [products[q] for q in range(_ALPHA)])  # (4_col, 6_row, ...)
  out = _combine(_AT, [cols[:, p] for p in range(_ALPHA)])
  out = out.transpose(2, 3, 0, 4, 1, 5).reshape(n, TILE * tiles_h, TILE * tiles_w, -1)
  return out[:, :out_h, :out_w]
