"""The memory-saving swish gives jax.nn.silu's values and gradients."""

import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax.models import activations


def test_values_and_gradients_match_jax_silu():
  x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 7, 5)) * 6, jnp.float32)
  weights = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape), jnp.float32)
  np.testing.assert_allclose(activations.silu(x), jax.nn.silu(x), rtol=1e-6, atol=1e-7)
  got = jax.grad(lambda x: jnp.sum(activations.silu(x) * weights))(x)
  expected = jax.grad(lambda x: jnp.sum(jax.nn.silu(x) * weights))(x)
  np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_backward_keeps_only_the_input():
  x = jnp.ones((2048, 128))  # 1 MB per activation
  w = jnp.full((128, 128), 0.01)

  def temp_bytes(act, layers):
    def loss(x):
      for _ in range(layers):
        x = act(x @ w)  # As in the encoder: a convolution between activations.
      return jnp.sum(x)
    return jax.jit(jax.grad(loss)).lower(x).compile().memory_analysis().temp_size_in_bytes

  plain = temp_bytes(jax.nn.silu, 6) - temp_bytes(jax.nn.silu, 2)
  ours = temp_bytes(activations.silu, 6) - temp_bytes(activations.silu, 2)
  assert ours < plain, (ours, plain)
