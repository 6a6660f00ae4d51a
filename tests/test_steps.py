"""Tests for adabins_jax.steps: one and two (fake CPU) devices agree; metrics are what they say."""

from flax import nnx
import jax
import ml_collections
import numpy as np
import optax
import pytest

from adabins_jax import losses
from adabins_jax import parallel
from adabins_jax import steps
from helpers.stand_ins import TinyDepthModel, synthetic_batch

_SCHEDULE = optax.linear_schedule(1e-2, 1e-3, transition_steps=10)
_TX = optax.adamw(_SCHEDULE, weight_decay=0.1)


def _config():
  config = ml_collections.ConfigDict()
  config.train = {'silog_weight': 1.0, 'chamfer_weight': 0.1}
  config.model = {'min_depth_m': 1e-3, 'max_depth_m': 10.0}
  return config


_TRAIN_STEP = None


def _train_step(graphdef):
  """One jitted step for the module, so each mesh compiles once.

  Every test builds the same model, so the first graphdef serves all their states.
  """
  global _TRAIN_STEP
  if _TRAIN_STEP is None:
    _TRAIN_STEP = steps.make_train_step(_config(), graphdef, _SCHEDULE)
  return _TRAIN_STEP


def _setup(num_devices, seed=0):
  mesh = parallel.create_mesh(num_devices)
  model = TinyDepthModel(rngs=nnx.Rngs(params=seed, dropout=seed + 1))
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  return mesh, graphdef, parallel.replicate(state, mesh)


def _run(num_devices, num_steps, batch=None):
  mesh, graphdef, state = _setup(num_devices)
  train_step = _train_step(graphdef)
  batch = parallel.shard_batch(batch or synthetic_batch(), mesh)
  history = []
  with jax.set_mesh(mesh):
    for step in range(num_steps):
      rng = jax.random.fold_in(jax.random.key(7), step)
      state, metrics = train_step(state, batch, rng)
      history.append(jax.device_get(metrics))
  return graphdef, state, history


def _leaves(state):
  return [np.asarray(x) for x in jax.tree.leaves(state)
          if not jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)]


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_one_and_two_devices_agree():
  _, state1, hist1 = _run(1, 2)
  _, state2, hist2 = _run(2, 2)
  for m1, m2 in zip(hist1, hist2):
    for key in m1:
      np.testing.assert_allclose(m1[key], m2[key], rtol=2e-5, err_msg=key)
  # Parameters, Adam moments and BatchNorm running statistics: the two-device BatchNorm uses
  # the statistics of the global batch, exactly as one device does.
  for a, b in zip(_leaves(state1), _leaves(state2)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_state_stays_replicated_and_step_counts():
  graphdef, state, _ = _run(2, 2)
  assert all(x.sharding.is_fully_replicated for x in jax.tree.leaves(state))
  _, optimizer = nnx.merge(graphdef, state)
  assert int(optimizer.step[...]) == 2


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_metrics_match_an_independent_computation():
  mesh, graphdef, state = _setup(1)
  batch = synthetic_batch()
  rng = jax.random.key(3)

  @jax.jit
  def reference(state):
    # Same model, same dropout key; loss and gradient written out by hand.
    model, _ = nnx.merge(graphdef, state)
    model.train()
    nnx.reseed(model, dropout=rng)

    def loss_fn(model):
      edges, pred = model(batch['image'])
      silog = losses.silog_loss(pred, batch['depth'], batch['depth'] > 1e-3)
      return silog + 0.1 * losses.bin_chamfer_loss(edges, batch['depth']), silog

    return nnx.value_and_grad(loss_fn, has_aux=True)(model)

  (loss, silog), grads = reference(jax.tree.map(lambda x: x.copy(), state))
  train_step = _train_step(graphdef)
  with jax.set_mesh(mesh):
    state, metrics = train_step(state, parallel.shard_batch(batch, mesh), rng)
    _, metrics2 = train_step(state, parallel.shard_batch(batch, mesh), rng)
  np.testing.assert_allclose(metrics['loss'], loss, rtol=1e-5)
  np.testing.assert_allclose(metrics['silog'], silog, rtol=1e-5)
  np.testing.assert_allclose(metrics['loss'], metrics['silog'] + 0.1 * metrics['chamfer'],
                             rtol=1e-6)
  np.testing.assert_allclose(metrics['grad_norm'], optax.tree.norm(grads), rtol=1e-4)
  # The learning rate reported is the one used for that update: 1e-2 first, then one tenth
  # of the way down to 1e-3.
  np.testing.assert_allclose(metrics['learning_rate'], 1e-2, rtol=1e-6)
  np.testing.assert_allclose(metrics2['learning_rate'], 1e-2 - 0.1 * (1e-2 - 1e-3), rtol=1e-6)


def test_dropout_follows_the_step_key():
  mesh, graphdef, state = _setup(1)
  train_step = _train_step(graphdef)
  batch = parallel.shard_batch(synthetic_batch(), mesh)
  losses_by_key = []
  for key in (1, 1, 2):
    # The state is donated; give each call its own copy.
    copy = jax.tree.map(lambda x: x.copy(), state)
    with jax.set_mesh(mesh):
      _, metrics = train_step(copy, batch, jax.random.key(key))
    losses_by_key.append(float(metrics['loss']))
  assert losses_by_key[0] == losses_by_key[1]
  assert losses_by_key[0] != losses_by_key[2]


def test_training_reduces_the_loss():
  # A learnable target: a constant 3 m scene, which the bins can move to.
  batch = synthetic_batch()
  batch['depth'] = np.full_like(batch['depth'], 3.0)
  _, _, history = _run(1, 15, batch)
  assert history[-1]['loss'] < 0.85 * history[0]['loss'], [h['loss'] for h in history]


def _eval_config(flip_average=True):
  config = _config()
  config.eval = {'crop': 'none', 'flip_average': flip_average}
  return config


def _reference_eval(model, image, gt, example_mask, flip_average):
  """The protocol in numpy and torch, image by image: abs_rel and d1 means and the count."""
  import torch  # pylint: disable=g-import-not-at-top

  model.eval()
  pred = np.clip(np.asarray(model(image)[1]), 1e-3, 10.0)
  if flip_average:
    flipped = np.asarray(model(image[:, :, ::-1])[1])[:, :, ::-1]
    pred = 0.5 * (pred + np.clip(flipped, 1e-3, 10.0))
  pred = torch.nn.functional.interpolate(
      torch.from_numpy(pred.transpose(0, 3, 1, 2).copy()), size=gt.shape[1:3],
      mode='bilinear', align_corners=True).numpy().transpose(0, 2, 3, 1)
  abs_rel, d1 = [], []
  for p, g, real in zip(pred, gt, example_mask):
    valid = (g > 1e-3) & (g < 10.0)
    if real and valid.any():
      p, g = p[valid], g[valid]
      abs_rel.append(np.mean(np.abs(g - p) / g))
      d1.append(np.mean(np.maximum(g / p, p / g) < 1.25))
  return np.mean(abs_rel), np.mean(d1), len(abs_rel)


# A 12x12 image with 16x16 ground truth is the 75%-input case: the prediction is resized to
# the ground truth's size.
@pytest.mark.parametrize('flip_average,image_size', [(True, 16), (False, 16), (True, 12)])
def test_eval_step_follows_the_protocol_on_one_and_two_devices(flip_average, image_size):
  batch = synthetic_batch(batch_size=4)
  batch['image'] = batch['image'][:, :image_size, :image_size]
  batch['depth'][2] = 0.0  # No valid pixel: not counted.
  batch['example_mask'] = np.array([True, True, True, False])  # The last one is padding.
  model = TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=1))
  expected = _reference_eval(model, batch['image'], batch['depth'], batch['example_mask'],
                             flip_average)
  for num_devices in (1, 2):
    mesh = parallel.create_mesh(num_devices)
    graphdef, state = nnx.split(model)
    eval_step = steps.make_eval_step(_eval_config(flip_average), graphdef)
    with jax.set_mesh(mesh):
      sums, depth = eval_step(parallel.replicate(state, mesh),
                              parallel.shard_batch(batch, mesh))
    result = sums.compute()
    assert result['num_images'] == expected[2] == 2
    np.testing.assert_allclose(result['abs_rel'], expected[0], rtol=1e-5)
    np.testing.assert_allclose(result['d1'], expected[1], rtol=1e-6)
    assert depth.shape == (4, 16, 16, 1)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_steps_accept_a_graphdef_jit_cannot_hash():
  # The shipped models keep static settings in tuples, so their graphdefs hash; a user's model
  # with a list attribute does not, and the steps, which close over the graphdef rather than
  # take it as a static argument, still compile for it.
  model = TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=1))
  model.stage_repeats = [1, 2]
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  with pytest.raises(TypeError, match='unhashable'):
    hash(graphdef)
  batch = synthetic_batch(batch_size=2, height=8, width=8)
  eval_graphdef, eval_state = nnx.split(model)
  sums, _ = steps.make_eval_step(_eval_config(False), eval_graphdef)(eval_state, batch)
  assert int(sums.count) == 2
  state, metrics = steps.make_train_step(_config(), graphdef, _SCHEDULE)(state, batch,
                                                                          jax.random.key(0))
  nnx.update((model, optimizer), state)  # The step donated the arrays they held.
  assert np.isfinite(metrics['loss'])


def test_a_batch_without_valid_depth_has_a_finite_loss_and_gradient(model, config):
  batch = {'image': np.zeros((2, 64, 80, 3), np.float32),
           'depth': np.zeros((2, 64, 80, 1), np.float32)}
  grad_fn = nnx.jit(nnx.value_and_grad(
      lambda m: steps.train_loss(m, batch, **steps.train_loss_kwargs(config))[0]))
  loss, grads = grad_fn(model)
  assert np.isfinite(float(loss))
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
