"""benchmarks/profile_train_step.py: executed ops are grouped by the scope that made them."""

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import layers
from tests import benchmark_scripts

profile_train_step = benchmark_scripts.load('profile_train_step')


def test_groups_name_scope_and_direction():
  group = profile_train_step._group
  assert group('jit(_train_step)/jvp(bins_head/conv_winograd)/dot_general') == (
      'conv_winograd (forward)')
  assert group('jit(_train_step)/transpose(jvp(batch_norm))/mul') == 'batch_norm (backward)'
  assert group('jit(f)/jvp(conv_shifted)/backward/reduce_sum') == 'conv_shifted (backward)'
  assert group('jit(_train_step)/optimizer/add') == 'optimizer'
  assert group('jit(_train_step)/jvp()/add') == 'model, other (forward)'


def test_breakdown_times_the_scopes_of_a_real_program():
  conv = layers.Conv(8, 8, 3, padding=1, groups=8, depthwise_impl='shifted', rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(conv)
  loss = lambda state, x: jnp.sum(nnx.merge(graphdef, state)(x) ** 2)
  step = jax.jit(jax.grad(loss, argnums=(0, 1)))
  args = (state, jnp.ones((2, 32, 32, 8)))
  compiled = step.lower(*args).compile()
  groups = profile_train_step.breakdown(compiled, lambda: jax.block_until_ready(compiled(*args)))
  assert {'conv_shifted (forward)', 'conv_shifted (backward)'} <= set(groups)
  assert all(seconds >= 0 for seconds in groups.values())
