"""Checkpoints holding per-tensor Adam moments restore into the flattened optimizer."""

import logging

from flax import nnx
import jax
from jax import flatten_util
import numpy as np
import pytest

from adabins_jax import checkpointing
from adabins_jax import optim
from adabins_jax import parallel
from adabins_jax.configs import default
from adabins_jax.errors import CheckpointError
from helpers.stand_ins import TinyDepthModel

# Two lr groups besides the default one, and one group that matches nothing (empty).
_GROUPS = {'encoder_lr_multiplier': 0.1,
           'lr_multiplier_rules': ((r'/bias$', 2.0), (r'^nowhere/', 3.0))}
_TOTAL_STEPS = 10


def _optim_config(flatten_groups):
  config = default.get_config().optim
  config.update(learning_rate=0.05, flatten_groups=flatten_groups, **_GROUPS)
  return config


def _build(flatten_groups, seed=0):
  model = TinyDepthModel(rngs=nnx.Rngs(params=seed, dropout=seed + 1))
  tx = optim.create_optimizer(_optim_config(flatten_groups), _TOTAL_STEPS)
  return model, nnx.Optimizer(model, tx, wrt=nnx.Param)


def _steps(model, optimizer, first_step, num_steps):
  """Optimizer steps in place on made-up gradients, those of steps ``first_step + 1 ...``.

  No forward pass: what is under test is the optimizer state, and compiling a train step per
  form would double the test's time.
  """
  params = nnx.state(model, nnx.Param)
  for step in range(first_step + 1, first_step + num_steps + 1):
    rng = np.random.default_rng(step)
    scale = 1.0 if step % 2 else 0.005  # Clipped, then left alone.
    grads = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32) * scale, params)
    _update(model, optimizer, grads)


@nnx.jit
def _update(model, optimizer, grads):
  optimizer.update(model, grads)


def _group_states(optimizer):
  """lr group -> its ``inject_hyperparams`` state, as plain arrays."""
  inner = nnx.as_pure(optimizer.opt_state)[1].inner_states
  return {group: masked.inner_state for group, masked in inner.items()}


def _save_per_tensor(workdir, step):
  model, optimizer = _build(flatten_groups=False)
  _steps(model, optimizer, 0, step)
  manager = checkpointing.create_manager(workdir)
  assert checkpointing.save(manager, step, model, optimizer)
  checkpointing.finish(manager)
  return model, optimizer


def test_a_per_tensor_checkpoint_resumes_in_the_flat_optimizer(tmp_path, caplog):
  model, optimizer = _save_per_tensor(tmp_path, 2)
  flat_model, flat_optimizer = _build(flatten_groups=True, seed=5)
  # On the absl logger itself: another test in this process may have lowered its verbosity.
  with caplog.at_level(logging.INFO, logger='absl'):
    assert checkpointing.restore(checkpointing.create_manager(tmp_path), flat_model,
                                 flat_optimizer) == 2
  assert sum('joined them into' in r.getMessage() for r in caplog.records) == 1
  # The model, the step and each group's counts and hyperparameters as saved; the moments
  # exactly the saved ones, raveled as the flat optimizer ravels its parameters.
  saved_variables = nnx.Not(nnx.RngState)
  for a, b in zip(jax.tree.leaves(nnx.state(model, saved_variables)),
                  jax.tree.leaves(nnx.state(flat_model, saved_variables)), strict=True):
    np.testing.assert_array_equal(b, a)
  assert int(flat_optimizer.step[...]) == 2
  want, got = _group_states(optimizer), _group_states(flat_optimizer)
  assert want.keys() == got.keys() == {'lr_x0.1', 'lr_x1', 'lr_x2', 'lr_x3'}
  for group in want:
    for name in ('count', 'hyperparams', 'hyperparams_states'):
      for a, b in zip(jax.tree.leaves(getattr(want[group], name)),
                      jax.tree.leaves(getattr(got[group], name)), strict=True):
        np.testing.assert_array_equal(b, a, err_msg=f'{group}/{name}')
    adam, flat_adam = want[group].inner_state[0], got[group].inner_state[0]
    assert int(flat_adam.count) == int(adam.count) == 2
    for moment in ('mu', 'nu'):
      saved, joined = getattr(adam, moment), getattr(flat_adam, moment)
      if group == 'lr_x3':  # Empty: no moments either way.
        assert not jax.tree.leaves(saved) and not jax.tree.leaves(joined)
        continue
      np.testing.assert_array_equal(joined, flatten_util.ravel_pytree(saved)[0],
                                    err_msg=f'{group}/{moment}')
  # The next step of both forms lands on the same parameters, up to the one unit in the last
  # place by which the two forms' compiled updates may round an element differently.
  _steps(model, optimizer, 2, 1)
  _steps(flat_model, flat_optimizer, 2, 1)
  for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param)),
                  jax.tree.leaves(nnx.state(flat_model, nnx.Param)), strict=True):
    np.testing.assert_allclose(b, a, rtol=1e-6, atol=1e-8)


def test_the_joined_moments_land_replicated_on_the_mesh(tmp_path):
  _save_per_tensor(tmp_path, 1)
  mesh = parallel.create_mesh(2)
  model, optimizer = _build(flatten_groups=True)
  nnx.update((model, optimizer), parallel.replicate(nnx.state((model, optimizer)), mesh))
  assert checkpointing.restore(checkpointing.create_manager(tmp_path), model, optimizer) == 1
  for x in jax.tree.leaves(nnx.state(optimizer)):
    assert x.sharding.is_fully_replicated and len(x.sharding.device_set) == 2


def test_model_only_restore_reads_a_per_tensor_checkpoint(tmp_path):
  model, _ = _save_per_tensor(tmp_path, 1)
  fresh = TinyDepthModel(rngs=nnx.Rngs(params=5, dropout=5))
  assert checkpointing.restore_model(tmp_path, fresh, 'latest') == 1
  for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param)),
                  jax.tree.leaves(nnx.state(fresh, nnx.Param)), strict=True):
    np.testing.assert_array_equal(b, a)


def test_a_flat_checkpoint_is_refused_by_the_per_tensor_optimizer(tmp_path):
  model, optimizer = _build(flatten_groups=True)
  manager = checkpointing.create_manager(tmp_path)
  assert checkpointing.save(manager, 1, model, optimizer)
  checkpointing.finish(manager)
  model, optimizer = _build(flatten_groups=False)
  with pytest.raises(CheckpointError, match='flatten_groups'):
    checkpointing.restore(checkpointing.create_manager(tmp_path), model, optimizer)
