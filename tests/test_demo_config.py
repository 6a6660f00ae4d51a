"""configs/demo.py: its data, model, train step and evaluation fit together.

The first tests trace without compiling (seconds); the last one compiles and runs a real train
step of the demo model on the tiny synthetic_rooms split.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from flax import nnx

from adabins_jax import input_pipeline
from adabins_jax import metrics
from adabins_jax import models
from adabins_jax import optim
from adabins_jax import steps
from configs import demo

# What the docstring of configs/demo.py states.
DEMO_PARAMS = 775_696


def _conv(i, o, k):
  return k * k * i * o + o


def _double_conv(i, o):
  return _conv(i, o, 3) + 2 * o + _conv(o, o, 3) + 2 * o  # each conv with a BatchNorm


def _expected_params(m):
  """Trainable parameters of a standard-conv U-Net AdaBins, counted by hand (SPEC 1)."""
  w = m.unet_widths
  unet = _double_conv(3, w[0]) + sum(_double_conv(w[i - 1], w[i]) for i in range(1, len(w)))
  unet += sum(_double_conv(w[i + 1] + w[i], w[i]) for i in range(1, len(w) - 1))  # up blocks
  unet += _conv(w[1], 128, 3)  # to the head's 128 channels
  e, f = m.embed_dim, m.ffn_dim
  layer = (e * 3 * e + 3 * e) + (e * e + e) + (e * f + f) + (f * e + e) + 2 * 2 * e
  head = (_conv(128, e, m.patch_size) + m.pos_table_size * e + m.num_layers * layer
          + _conv(128, e, 3) + (e * 256 + 256) + (256 * 256 + 256) + (256 * m.n_bins + m.n_bins))
  return unet + head + m.n_queries * m.n_bins + m.n_bins  # + the 1x1 conv over query maps


def _frame_size(config):
  name, builder_config = config.data.dataset.split('/')
  configs = {c.name: c for c in tfds.builder_cls(name).BUILDER_CONFIGS}
  assert builder_config in configs, f'{config.data.dataset} is not a builder config'
  return configs[builder_config].height, configs[builder_config].width


def test_data_and_evaluation_settings_fit_the_frames():
  config = demo.get_config()
  frame = _frame_size(config)
  assert tuple(config.data.crop_size) <= frame and min(frame) >= 1
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
  for h, w in (tuple(config.data.crop_size), _frame_size(config)):
    images = jax.ShapeDtypeStruct((2, h, w, 3), jnp.float32)
    edges, depth = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, images)
    assert edges.shape == (2, config.model.n_bins + 1)
    assert depth.shape == (2, (h + 1) // 2, (w + 1) // 2, 1)


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
  batch = {'image': jax.ShapeDtypeStruct((n, h, w, 3), jnp.float32),
           'depth': jax.ShapeDtypeStruct((n, h, w, 1), jnp.float32)}
  new_state, scalars = jax.eval_shape(train_step, state, batch, jax.random.key(0))
  assert jax.tree.structure(new_state) == jax.tree.structure(state)
  assert {k: v.shape for k, v in scalars.items()} == {
      'loss': (), 'silog': (), 'chamfer': (), 'grad_norm': (), 'learning_rate': ()}


@pytest.mark.slow  # Compiles the demo's train step: 20-50 s on a busy 2-core CPU.
def test_one_train_step_on_tiny_rooms(tmp_path):
  config = demo.get_config()
  config.data.dataset = 'synthetic_rooms/tiny'
  config.data.tfds_data_dir = str(tmp_path)
  config.data.crop_size = (64, 80)
  config.data.input_scale = 1.0  # 64x80 frames at half scale give too few patches.
  batch = next(input_pipeline.create_train_dataset(config.data, 2, seed=0))
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
  assert sum(not np.array_equal(a, b) for a, b in zip(after, before)) == len(before)
