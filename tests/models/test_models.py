"""Every config's model: exact parameter counts, output shapes at two sizes, input errors."""

import importlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from adabins_jax.models import build_model, count_params

# Exact trainable-parameter counts (BatchNorm statistics excluded).
PARAM_COUNTS = {
    'effnet_b5_256': 78_257_328,
    'effnet_b0_256': 27_164_188,
    'unet256': 10_376_472,
    'unet128': 10_327_064,
    'unet128_dws': 6_401_792,
    'unet128_dws_75': 4_566_784,
    'smoke': 182_264,
}
# Two network input sizes per config (after input scaling): the training crop and the full
# NYU frame, or for the smoke model two small odd-ratio sizes.
INPUT_SIZES = {
    'effnet_b5_256': [(416, 544), (480, 640)],
    'effnet_b0_256': [(416, 544), (480, 640)],
    'unet256': [(416, 544), (480, 640)],
    'unet128': [(416, 544), (480, 640)],
    'unet128_dws': [(416, 544), (480, 640)],
    'unet128_dws_75': [(312, 408), (360, 480)],
    'smoke': [(64, 80), (70, 90)],
}


def _config(name):
  return importlib.import_module(f'configs.{name}').get_config()


@nnx.jit
def _forward(model, images):
  return model(images)


def _abstract_model(model_config):
  return nnx.eval_shape(lambda: build_model(model_config, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize('name', sorted(PARAM_COUNTS))
def test_param_count_and_shapes(name):
  config = _config(name)
  model = _abstract_model(config.model)
  assert count_params(model) == PARAM_COUNTS[name]
  graphdef, state = nnx.split(model)
  for h, w in INPUT_SIZES[name]:
    images = jax.ShapeDtypeStruct((2, h, w, 3), jnp.float32)
    edges, depth = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state, images)
    assert edges.shape == (2, config.model.n_bins + 1)
    assert depth.shape == (2, (h + 1) // 2, (w + 1) // 2, 1)
    assert depth.dtype == jnp.float32


@pytest.mark.parametrize('name', ['effnet_b0_256', 'unet128_dws'])
def test_graphdef_is_hashable_for_static_jit_arguments(name):
  graphdef, _ = nnx.split(_abstract_model(_config(name).model))
  hash(graphdef)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_smoke_model_outputs_are_valid_depths():
  config = _config('smoke')
  model = build_model(config.model, rngs=nnx.Rngs(0))
  model.eval()
  images = jax.random.normal(jax.random.key(0), (2, 64, 80, 3))
  edges, depth = _forward(model, images)
  edges, depth = np.asarray(edges), np.asarray(depth)
  np.testing.assert_allclose(edges[:, 0], config.model.min_depth_m, rtol=1e-6)
  np.testing.assert_allclose(edges[:, -1], config.model.max_depth_m, rtol=1e-5)
  assert np.all(np.diff(edges, axis=1) > 0)
  assert np.all((depth > edges[:, :1, None, None]) & (depth < edges[:, -1:, None, None]))


@pytest.mark.parametrize('bin_norm', ['linear', 'softmax', 'sigmoid'])
def test_bin_norms_give_widths_summing_to_range(bin_norm):
  config = _config('smoke')
  config.model.bin_norm = bin_norm
  model = build_model(config.model, rngs=nnx.Rngs(1))
  model.eval()
  edges, _ = _forward(model, jnp.ones((1, 64, 80, 3)))
  assert float(edges[0, -1] - edges[0, 0]) == pytest.approx(
      config.model.max_depth_m - config.model.min_depth_m, rel=1e-5)


def test_train_mode_is_stochastic_and_eval_mode_deterministic():
  config = _config('smoke')
  model = build_model(config.model, rngs=nnx.Rngs(params=0, dropout=1))
  images = jax.random.normal(jax.random.key(0), (2, 64, 80, 3))
  model.train()
  first, second = _forward(model, images)[1], _forward(model, images)[1]
  assert not np.allclose(first, second)  # Dropout draws new masks each call.
  model.eval()
  np.testing.assert_array_equal(_forward(model, images)[1], _forward(model, images)[1])


def test_drop_path_drops_whole_examples_in_training_only():
  from adabins_jax.models import efficientnet  # pylint: disable=g-import-not-at-top
  block = efficientnet.MBConv(8, 8, 3, 1, 6, 0.5, dtype=None, param_dtype=jnp.float32,
                              rngs=nnx.Rngs(params=0, dropout=0))
  x = jax.random.normal(jax.random.key(1), (16, 5, 5, 8))
  block.eval()
  np.testing.assert_array_equal(_forward(block, x), _forward(block, x))
  block.train()
  out = _forward(block, x) - x
  kept = [bool(np.any(np.abs(np.asarray(out[i])) > 1e-6)) for i in range(16)]
  assert 0 < sum(kept) < 16  # Some examples lose the branch entirely, others keep it.


@pytest.mark.parametrize('hw,channels,match', [
    ((24, 32), 3, 'at least n_queries'),
    ((64, 80), 1, r'\(N, H, W, 3\)'),
    ((2, 80), 3, 'too small'),
    ((200, 200), 3, 'positional table'),
])
def test_bad_inputs_raise_clear_errors(hw, channels, match):
  config = _config('smoke')
  model = build_model(config.model, rngs=nnx.Rngs(0))
  model.eval()
  with pytest.raises(ValueError, match=match):
    _forward(model, jnp.zeros((1, *hw, channels)))


def test_paper_model_rejects_images_beyond_the_positional_table():
  model = _abstract_model(_config('effnet_b5_256').model)
  graphdef, state = nnx.split(model)
  with pytest.raises(ValueError, match='500 rows'):
    jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x), state,
                   jax.ShapeDtypeStruct((1, 768, 1024, 3), jnp.float32))


def test_unknown_model_name():
  config = _config('smoke')
  config.model.name = 'resnet'
  with pytest.raises(ValueError, match="Unknown model.name 'resnet'"):
    build_model(config.model, rngs=nnx.Rngs(0))
