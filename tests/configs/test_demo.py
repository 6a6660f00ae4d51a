"""configs/demo.py: its data, model, train step and evaluation fit together.

The first tests trace without compiling (seconds); the last one compiles and runs one real
train step of the demo model at the demo's sizes.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from adabins_jax import metrics
from adabins_jax import models
from adabins_jax import optim
from adabins_jax import steps
from adabins_jax.datasets import synthetic_rooms
from adabins_jax.configs import demo

# What the docstring of configs/demo.py states.
DEMO_PARAMS = 701_904


def _conv(i, o, k):
  return k * k * i * o + o


def _double_conv(i, o):
  return _conv(i, o, 3) + 2 * o + _conv(o, o, 3) + 2 * o  # each conv with a BatchNorm


def _expected_params(m):
  """Trainable parameters of a standard-conv U-Net AdaBins, counted by hand from its layers."""
  w = m.unet_widths
  unet = _double_conv(3, w[0]) + sum(_double_conv(w[i - 1], w[i]) for i in range(1, len(w)))
  unet += sum(_double_conv(w[i + 1] + w[i], w[i]) for i in range(1, len(w) - 1))  # up blocks
  c = m.feature_channels
  unet += _conv(w[1], c, 3)  # to the head's input channels
  e, f = m.embed_dim, m.ffn_dim
  layer = (e * 3 * e + 3 * e) + (e * e + e) + (e * f + f) + (f * e + e) + 2 * 2 * e
  head = (_conv(c, e, m.patch_size) + m.pos_table_size * e + m.num_layers * layer
          + _conv(c, e, 3) + (e * 256 + 256) + (256 * 256 + 256) + (256 * m.n_bins + m.n_bins))
  return unet + head + m.n_queries * m.n_bins + m.n_bins  # + the 1x1 conv over query maps


def _frame_size(config):
  name, builder_config = config.data.dataset.split('/')
  assert name == synthetic_rooms.SyntheticRooms.name
  configs = {c.name: c for c in synthetic_rooms.SyntheticRooms.BUILDER_CONFIGS}
  return configs[builder_config].height, configs[builder_config].width


def _network_size(size, config):
  """What the network sees of a (h, w) image: scaled by data.input_scale, as the pipeline does."""
  return tuple(round(s * config.data.input_scale) for s in size)


def test_data_and_evaluation_settings_fit_the_frames():
  config = demo.get_config()
  frame = _frame_size(config)
  assert all(c <= f for c, f in zip(config.data.crop_size, frame))
  # The Eigen crop is defined on 480x640 NYU frames only; the demo scores whole frames.
  assert config.eval.crop == 'none'
  assert metrics.crop_mask(frame, config.eval.crop).all()
  with pytest.raises(ValueError, match='480x640'):
    metrics.crop_mask(frame, 'eigen')
  assert not config.data.crop_white_border


def test_parameter_count_and_shapes_at_train_and_eval_size():
  config = demo.get_config()
  model = nnx.eval_shape(lambda: models.build_model(config.model, rngs=nnx.Rngs(0)))
  assert models.count_params(model) == _expected_params(config.model) == DEMO_PARAMS
  graphdef, state = nnx.split(model)
  # The bins head must see between n_queries + 1 patches and pos_table_size at both sizes.
  for size in (config.data.crop_size, _frame_size(config)):
    h, w = _network_size(size, config)
    images = jax.ShapeDtypeStruct((2, h, w, 3), jnp.float32)
    edges, depth = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, images)
    assert edges.shape == (2, config.model.n_bins + 1)
    assert depth.shape == (2, (h + 1) // 2, (w + 1) // 2, 1)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_train_step_traces_at_the_training_crop():
  config = demo.get_config()
  total_steps = config.train.num_steps

  def build():
    model = models.build_model(config.model, rngs=nnx.Rngs(params=0, dropout=1))
    return model, nnx.Optimizer(model, optim.create_optimizer(config.optim, total_steps),
                                wrt=nnx.Param)

  graphdef, state = nnx.split(nnx.eval_shape(build))
  train_step = steps.make_train_step(
      config, graphdef, optim.learning_rate_schedule(config.optim, total_steps))
  n, (h, w) = config.train.batch_size, tuple(config.data.crop_size)
  # Ground truth stays at the crop size; the image is scaled by data.input_scale.
  batch = {'image': jax.ShapeDtypeStruct((n, *_network_size((h, w), config), 3), jnp.float32),
           'depth': jax.ShapeDtypeStruct((n, h, w, 1), jnp.float32)}
  new_state, scalars = jax.eval_shape(train_step, state, batch, jax.random.key(0))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert {k: v.shape for k, v in scalars.items()} == {
      'loss': (), 'silog': (), 'chamfer': (), 'grad_norm': (), 'learning_rate': (),
      'param_norm': ()}


@pytest.mark.slow  # Compiles the demo's train step: 20-50 s on a busy 2-core CPU.
def test_one_train_step_at_the_demo_sizes():
  config = demo.get_config()
  # Without weight decay a parameter moves only if the loss reaches it.
  config.optim.weight_decay = 0.0
  n, (h, w) = 2, tuple(config.data.crop_size)
  rng = np.random.default_rng(0)
  depth = rng.uniform(1.0, 6.0, (n, h, w, 1)).astype(np.float32)
  depth[:, :3] = 0.0  # invalid pixels, as the sensor-like holes of the data
  batch = {'image': rng.normal(size=(n, *_network_size((h, w), config), 3)).astype(np.float32),
           'depth': depth}
  model = models.build_model(config.model, rngs=nnx.Rngs(params=0, dropout=1))
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, 10), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  before = [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
  train_step = steps.make_train_step(config, graphdef,
                                     optim.learning_rate_schedule(config.optim, 10))
  state, scalars = train_step(state, batch, jax.random.key(0))
  model, _ = nnx.merge(graphdef, state)
  after = [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
  assert np.isfinite(float(scalars['loss'])) and float(scalars['grad_norm']) > 0
  assert all(np.all(np.isfinite(a)) for a in after)
  # Every parameter moves: nothing in the demo model is cut off from the loss.
  assert sum(not np.array_equal(a, b) for a, b in zip(after, before)) == len(before)
