"""Depthwise convolution as a sum of shifted, scaled copies of the input, for XLA on CPU.

XLA's grouped convolution (feature_group_count == channels) is an order of magnitude slower than
this on CPU, forward and backward (``benchmarks/depthwise.py``); on GPU the native op is fast and
``layers.Conv`` uses it there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp

from adabins_jax.models import recompute


def _shifted_taps(x: jax.Array, kernel_hw: tuple[int, int], strides: tuple[int, int],
                  pads) -> Iterator[tuple[int, int, jax.Array]]:
  """The strided views of the padded input that each kernel tap (i, j) multiplies."""
  kh, kw = kernel_hw
  sh, sw = strides
  x = jnp.pad(x, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
  out_h = (x.shape[1] - kh) // sh + 1
  out_w = (x.shape[2] - kw) // sw + 1
  for i in range(kh):
    for j in range(kw):
      yield i, j, jax.lax.slice(
          x, (0, i, j, 0),
          (x.shape[0], i + (out_h - 1) * sh + 1, j + (out_w - 1) * sw + 1, x.shape[3]),
          (1, sh, sw, 1))


def _shifted_sum(x, kernel, strides, pads):
  out = None
  for i, j, tap in _shifted_taps(x, kernel.shape[:2], strides, pads):
    term = tap * kernel[i, j, 0]
    out = term if out is None else out + term
  return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _depthwise_shifted(x, kernel, strides, pads):
  return _shifted_sum(x, kernel, strides, pads)


def _depthwise_shifted_fwd(x, kernel, strides, pads):
  return _shifted_sum(x, kernel, strides, pads), (x, kernel)


def _input_gradient(cotangent, kernel, strides, pads, input_hw):
  """The transpose of ``_shifted_sum`` in x: itself a shifted sum, of the spread-out cotangent.

  With the cotangent dilated by the stride (zeros between its rows and columns) and padded by
  k - 1 minus the forward's padding on each side, every input pixel's gradient is the sum of
  k*k shifted copies times the kernel turned by 180 degrees: one fused pass, where the
  automatic transpose pads and adds each tap's term into the gradient in turn (k*k passes).
  """
  (kh, kw), (sh, sw) = kernel.shape[:2], strides
  (top, _), (left, _) = pads
  out_h, out_w = cotangent.shape[1:3]
  h, w = input_hw
  # lax.pad crops where a side's padding is negative.
  spread = jax.lax.pad(cotangent, jnp.zeros((), cotangent.dtype), (
      (0, 0, 0),
      (kh - 1 - top, h + top - (out_h - 1) * sh - 1, sh - 1),
      (kw - 1 - left, w + left - (out_w - 1) * sw - 1, sw - 1),
      (0, 0, 0)))
  return _shifted_sum(spread, kernel[::-1, ::-1], (1, 1), ((0, 0), (0, 0)))


def _depthwise_shifted_bwd(strides, pads, saved, cotangent):
  # Made after the forward pass, so that its k*k shifted copies are not kept for the ones below.
  x, kernel = recompute.after(saved, cotangent)
  # JAX names a custom VJP's backward ops as forward ones; the scope tells profiles apart.
  with jax.named_scope('backward'):
    # Linear in x: its transpose needs only the kernel, no saved activations.
    d_x = _input_gradient(cotangent, kernel, strides, pads, x.shape[1:3])
    # One reduction per tap, each reading its slice of x where it lies (tap-major order).
    sums = [jnp.sum(tap * cotangent, axis=(0, 1, 2))
            for _, _, tap in _shifted_taps(x, kernel.shape[:2], strides, pads)]
    return d_x, jnp.stack(sums).reshape(kernel.shape).astype(kernel.dtype)


_depthwise_shifted.defvjp(_depthwise_shifted_fwd, _depthwise_shifted_bwd)


def conv_shifted(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                 pads: Sequence[tuple[int, int]]) -> jax.Array:
  """Depthwise convolution as a sum of k*k shifted, scaled copies of the input.

  Its gradient is written out (custom VJP): differentiated automatically, the forward pass would
  keep each of the k*k shifted copies for the kernel gradient, k*k times the input's memory
  (25x for a 5x5 kernel); here the backward pass slices them again from the saved input.

  Args:
    x: (N, H, W, C) input.
    kernel: (kh, kw, 1, C) depthwise kernel (HWIO with one input channel per group).
    strides: (sh, sw).
    pads: explicit ((top, bottom), (left, right)) padding.

  Returns:
    (N, H', W', C) output, identical to ``lax.conv_general_dilated`` with groups == C.
  """
  return _depthwise_shifted(x, kernel, tuple(int(s) for s in strides),
                            tuple(tuple(int(p) for p in pair) for pair in pads))
