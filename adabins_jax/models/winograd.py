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

The paper model's decoder (nine 3x3 convolutions) holds most of its FLOPs, so this shortens its
CPU forward pass markedly (``benchmarks/torch_reference.py --conv3x3_impls auto,xla`` times
both; docs/benchmark.md).
In float32 the result differs from the direct convolution by ~4e-6 relative (the constants of
F(4x4, 3x3) are exact in binary except 1/6, 1/12, 1/24), ~1e-7 after a whole model; in bfloat16
the transforms lose too much, so ``layers.Conv`` uses this only for float32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax.models import recompute

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


def _check(x: jax.Array, kernel: jax.Array, pads) -> tuple[tuple[int, int], tuple[int, int]]:
  (top, bottom), (left, right) = (tuple(int(p) for p in pair) for pair in pads)
  if min(top, bottom, left, right) < 0:
    raise ValueError(f'Winograd conv3x3 needs non-negative padding, got {pads}.')
  if kernel.ndim != 4 or kernel.shape[:2] != (3, 3):
    raise ValueError(f'Winograd F(4x4, 3x3) needs a 3x3 kernel, got HWIO shape {kernel.shape}.')
  if kernel.shape[2] != x.shape[-1]:
    raise ValueError(f'Winograd conv3x3: kernel of HWIO shape {kernel.shape} does not fit an '
                     f'input of NHWC shape {x.shape}.')
  if x.shape[1] + top + bottom - 2 < 1 or x.shape[2] + left + right - 2 < 1:
    raise ValueError(f'Winograd conv3x3: input {x.shape} with padding {pads} is smaller than '
                     'the 3x3 kernel.')
  return (top, bottom), (left, right)


def _input_tiles(x: jax.Array, pads) -> jax.Array:
  """B^T d B for every 6x6 input window: (36, N * tiles_h * tiles_w, C_in), column-major."""
  (top, bottom), (left, right) = pads
  n, h, w, _ = x.shape
  tiles_h, tiles_w = -(-(h + top + bottom - 2) // TILE), -(-(w + left + right - 2) // TILE)
  # Zero-pad so that the last tile's 6x6 input window is complete.
  x = jnp.pad(x, ((0, 0), (top, TILE * tiles_h + 2 - h - top),
                  (left, TILE * tiles_w + 2 - w - left), (0, 0)))
  # One axis at a time: (6_col, 6_row, N, tiles_h, tiles_w, C_in).
  rows = _combine(_BT, _taps(x, 1, tiles_h))  # (6_row, N, tiles_h, W, C_in)
  tiles = _combine(_BT, _taps(rows, 3, tiles_w))
  return tiles.reshape(_ALPHA * _ALPHA, n * tiles_h * tiles_w, -1)


def _output_tiles(products: jax.Array, n: int, out_h: int, out_w: int) -> jax.Array:
  """A^T M A for every tile of ``products`` (36, N * tiles, C_out), interleaved into NHWC."""
  tiles_h, tiles_w = -(-out_h // TILE), -(-out_w // TILE)
  products = products.reshape(_ALPHA, _ALPHA, n, tiles_h, tiles_w, -1)
  # (4_row, 4_col, N, tiles_h, tiles_w, C_out), then interleaved.
  cols = _combine(_AT, [products[q] for q in range(_ALPHA)])  # (4_col, 6_row, ...)
  out = _combine(_AT, [cols[:, p] for p in range(_ALPHA)])
  out = out.transpose(2, 3, 0, 4, 1, 5).reshape(n, TILE * tiles_h, TILE * tiles_w, -1)
  return out[:, :out_h, :out_w]


def _conv3x3(x: jax.Array, kernel: jax.Array, pads) -> jax.Array:
  n, h, w, _ = x.shape
  (top, bottom), (left, right) = pads
  products = jnp.einsum('tkc,tco->tko', _input_tiles(x, pads), transform_kernel(kernel))
  return _output_tiles(products, n, h + top + bottom - 2, w + left + right - 2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv3x3_vjp(x, kernel, pads):
  return _conv3x3(x, kernel, pads)


def _conv3x3_fwd(x, kernel, pads):
  # Only the operands are kept: the transformed tiles (2.25x the input) are made again below.
  return _conv3x3(x, kernel, pads), (x, kernel)


def _conv3x3_bwd(pads, saved, cotangent):
  # Made after the forward pass, so that its transformed tiles and kernel are not kept for the
  # ones made again below.
  x, kernel = recompute.after(saved, cotangent)
  (top, bottom), (left, right) = pads
  # JAX names a custom VJP's backward ops as forward ones; the scope tells profiles apart.
  with jax.named_scope('backward'):
    # The input gradient is the full correlation of the cotangent with the flipped kernel: one
    # more Winograd convolution, which reads overlapping windows instead of scattering into
    # them as the transpose of the tiling would (six full-size padded copies per layer).
    back = ((2 - top, 2 - bottom), (2 - left, 2 - right))
    flipped = jnp.flip(kernel, (0, 1)).swapaxes(2, 3)
    if min(min(pair) for pair in back) >= 0:
      d_x = _conv3x3(cotangent, flipped, back)
    else:  # Padding above 2 crops the cotangent, which only XLA's convolution takes.
      d_x = jax.lax.conv_general_dilated(cotangent, flipped, (1, 1), back,
                                         dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    # The kernel gradient stays in the Winograd domain: the 36 products' transposes against
    # the input tiles, then the transposes of the (linear) output and kernel transforms.
    n, out_h, out_w, c_out = cotangent.shape
    tiles = _input_tiles(x, pads)
    products = jax.ShapeDtypeStruct((*tiles.shape[:2], c_out), cotangent.dtype)
    (d_products,) = jax.linear_transpose(
        lambda p: _output_tiles(p, n, out_h, out_w), products)(cotangent)
    d_transformed = jnp.einsum('tkc,tko->tco', tiles, d_products)
    (d_kernel,) = jax.linear_transpose(transform_kernel, kernel)(d_transformed)
  return d_x.astype(x.dtype), d_kernel.astype(kernel.dtype)


_conv3x3_vjp.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def conv3x3(x: jax.Array, kernel: jax.Array,
            pads: Sequence[tuple[int, int]] = ((1, 1), (1, 1))) -> jax.Array:
  """Stride-1 3x3 convolution of NHWC ``x`` with an HWIO ``kernel``, by Winograd F(4x4, 3x3).

  Computes what ``lax.conv_general_dilated(x, kernel, (1, 1), pads, ('NHWC', 'HWIO', 'NHWC'))``
  computes, to float rounding, for any input size (ragged edge tiles are zero-padded and cropped).
  Its gradient is written out (custom VJP): the input gradient is itself a Winograd convolution
  and the kernel gradient is taken in the Winograd domain, so the backward pass keeps only the
  input and the kernel from the forward pass, not their 2.25x- and 4x-larger transforms.

  Args:
    x: (N, H, W, C_in) input.
    kernel: (3, 3, C_in, C_out) kernel.
    pads: explicit, non-negative ((top, bottom), (left, right)) zero padding.

  Returns:
    (N, H + top + bottom - 2, W + left + right - 2, C_out).
  """
  return _conv3x3_vjp(x, kernel, _check(x, kernel, pads))
