"""Custom gradients that recompute from saved inputs must not keep the forward's copies alive."""

import jax
import jax.numpy as jnp
import pytest

from adabins_jax.models import depthwise
from adabins_jax.models import winograd


def _temp_bytes(conv, kernel_shape, layers):
  """XLA's planned temporary memory for the gradient of ``layers`` stacked convolutions."""
  x = jnp.ones((2, 32, 32, 16))
  kernels = [jnp.full(kernel_shape, 0.01)] * layers

  def loss(x, kernels):
    for kernel in kernels:
      x = jnp.tanh(conv(x, kernel))
    return jnp.sum(x ** 2)

  compiled = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, kernels).compile()
  return compiled.memory_analysis().temp_size_in_bytes


@pytest.mark.parametrize('conv,kernel_shape', [
    (lambda x, k: depthwise.conv_shifted(x, k, (1, 1), ((2, 2), (2, 2))), (5, 5, 1, 16)),
    (lambda x, k: winograd.conv3x3(x, k, ((1, 1), (1, 1))), (3, 3, 16, 16)),
])
def test_each_layer_keeps_only_its_input(conv, kernel_shape):
  # One 2x32x32x16 activation is 131 kB; each extra layer may keep about one (its input). Kept
  # for the backward pass, the 25 shifted copies of a 5x5 depthwise layer add 3.3 MB per layer,
  # Winograd's tiles and transformed kernel 0.4 MB.
  one, five = _temp_bytes(conv, kernel_shape, 1), _temp_bytes(conv, kernel_shape, 5)
  assert five - one < 4 * 131_072, (one, five)
