"""benchmarks/profile_train_step.py: executed ops are grouped by the scope that made them."""

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import layers
from helpers import benchmark_scripts

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


def test_compile_breakdown_counts_the_fusions_of_each_scope():
  compile_breakdown = benchmark_scripts.load('compile_breakdown')

  def f(x, y):
    with jax.named_scope('optimizer'):
      a = jnp.sin(x) * 2.0 + 1.0
    with jax.named_scope('batch_norm'):
      b = jnp.exp(y) * jnp.sum(y)
    return a, b

  text = jax.jit(f).lower(jnp.ones((64, 64)), jnp.ones((32, 16))).compile().as_text()
  counts = compile_breakdown.fusions_by_group(text)
  entry = text[text.index('\nENTRY'):]
  assert counts['optimizer'] >= 1 and counts['batch_norm'] >= 1
  assert sum(counts.values()) == entry.count(' fusion(')
