"""The flattened optimizer (optim.flatten_groups) gives the per-tensor optimizer's numbers."""

from flax import nnx
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from adabins_jax import optim
from adabins_jax import steps
from adabins_jax.configs import default
from helpers.stand_ins import TinyDepthModel, synthetic_batch


def _optim_config(flatten_groups, **overrides):
  config = default.get_config().optim
  # Large enough for the parameters to move visibly in a few steps.
  config.update(learning_rate=0.05, flatten_groups=flatten_groups, **overrides)
  return config


# Two lr groups (encoder x0.1, biases x2) and one rule that matches nothing, so one group of
# the partition is empty.
_GROUPS = {'encoder_lr_multiplier': 0.1,
           'lr_multiplier_rules': ((r'/bias$', 2.0), (r'^nowhere/', 3.0))}


def _run_optax(flatten_groups, params, grads):
  tx = optim.create_optimizer(_optim_config(flatten_groups, **_GROUPS), len(grads))
  state = tx.init(params)
  update = jax.jit(tx.update)
  for g in grads:
    updates, state = update(g, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


def test_flat_and_per_tensor_steps_agree():
  rng = np.random.default_rng(0)
  params = {'encoder': {'kernel': rng.normal(size=(3, 4)), 'bias': rng.normal(size=(4,))},
            'decoder': {'bias': rng.normal(size=(5,)), 'kernel': rng.normal(size=(2, 2, 3))}}
  params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
  # Large gradients (clipped by the global norm) alternate with small ones (left alone).
  grads = [jax.tree.map(lambda p, s=s: jnp.asarray(rng.normal(size=p.shape) * s, jnp.float32),
                        params) for s in [1.0, 0.005] * 4]
  flat, flat_state = _run_optax(True, params, grads)
  per_tensor, per_tensor_state = _run_optax(False, params, grads)
  for path, a in jax.tree_util.tree_leaves_with_path(per_tensor):
    b = flat[path[0].key][path[1].key]
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-9, err_msg=jax.tree_util.keystr(path))
    assert not np.allclose(a, params[path[0].key][path[1].key], atol=1e-2)  # they did move
  # The injected hyperparameters sit at the same place in both states, with the same values.
  for group in ('lr_x0.1', 'lr_x1', 'lr_x2', 'lr_x3'):
    want = per_tensor_state[1].inner_states[group].inner_state.hyperparams
    got = flat_state[1].inner_states[group].inner_state.hyperparams
    assert want.keys() == got.keys()
    for name in want:
      np.testing.assert_array_equal(got[name], want[name], err_msg=f'{group}/{name}')
  # The flat state holds one moment vector per group, in ravel_pytree's order.
  mu = flat_state[1].inner_states['lr_x2'].inner_state.inner_state[0].mu
  assert mu.shape == (4 + 5,)
  # The empty group keeps its (empty) per-tensor form: Orbax cannot save a zero-size vector.
  assert not jax.tree.leaves(flat_state[1].inner_states['lr_x3'].inner_state.inner_state[0].mu)


def _compiled_reductions(flatten_groups: bool, params) -> int:
  """Reductions in the optimized program of one optimizer update (XLA CPU: a kernel each)."""
  tx = optim.create_optimizer(_optim_config(flatten_groups, **_GROUPS), 10)
  compiled = jax.jit(tx.update).lower(params, tx.init(params), params).compile()
  return compiled.as_text().count(' reduce(')


def test_flat_update_reduces_per_group_not_per_tensor():
  # The global-norm clip's sums of squares are what the compile pays per weight tensor.
  params = {'encoder': {}, 'decoder': {}}
  for i in range(12):
    params['encoder' if i % 2 else 'decoder'][f'layer{i}'] = {
        'kernel': jnp.ones((3, i + 2)), 'bias': jnp.ones((i + 2,))}
  flat = _compiled_reductions(True, params)
  per_tensor = _compiled_reductions(False, params)
  assert per_tensor >= 24, per_tensor
  assert 1 <= flat <= 6, flat  # about one per non-empty group (3 here)


def test_global_norm_is_the_norm_of_all_leaves():
  rng = np.random.default_rng(1)
  tree = {'a': jnp.asarray(rng.normal(size=(7, 3)), jnp.float32),
          'b': [jnp.asarray(rng.normal(size=(5,)), jnp.float32)]}
  np.testing.assert_allclose(optim.global_norm(tree), optax.tree.norm(tree), rtol=1e-6)
  assert float(optim.global_norm({})) == 0.0


def _step_config():
  config = ml_collections.ConfigDict()
  config.train = {'silog_weight': 1.0, 'chamfer_weight': 0.1}
  config.model = {'min_depth_m': 1e-3, 'max_depth_m': 10.0}
  return config


def _train(flatten_groups, num_steps):
  model = TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=1))
  optim_config = _optim_config(flatten_groups, **_GROUPS)
  optimizer = nnx.Optimizer(model, optim.create_optimizer(optim_config, 10), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  train_step = steps.make_train_step(_step_config(), graphdef,
                                     optim.learning_rate_schedule(optim_config, 10))
  batch = synthetic_batch()
  history = []
  for step in range(num_steps):
    state, metrics = train_step(state, batch, jax.random.fold_in(jax.random.key(7), step))
    history.append(jax.device_get(metrics))
  model, optimizer = nnx.merge(graphdef, state)
  return model, optimizer, history


@pytest.mark.slow  # Compiles the train step twice: 15-30 s on a busy 2-core CPU.
def test_train_step_metrics_and_parameters_agree():
  flat_model, flat_optimizer, flat_history = _train(True, 4)
  model, optimizer, history = _train(False, 4)
  # The first step's loss and gradients come before any update: identical. After that the two
  # compiled updates may round an element differently (by one unit in the last place, seen
  # here), which the next steps carry on.
  assert history[0].keys() == flat_history[0].keys()
  for key in history[0]:
    np.testing.assert_array_equal(flat_history[0][key], history[0][key], err_msg=key)
  for step, (want, got) in enumerate(zip(history, flat_history)):
    for key in want:
      np.testing.assert_allclose(got[key], want[key], rtol=1e-5, err_msg=f'{step}: {key}')
  for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param)),
                  jax.tree.leaves(nnx.state(flat_model, nnx.Param)), strict=True):
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-8)
  assert int(flat_optimizer.step[...]) == int(optimizer.step[...]) == 4
