"""The in-memory API, ``adabins_jax.Predictor``: the same numbers as --mode=predict's files."""

import numpy as np
from PIL import Image
import pytest

import adabins_jax
from adabins_jax.inference import predict
from adabins_jax.configs import smoke

_SIZE = '64x80'


@pytest.fixture(scope='module')
def predictor(weights):
  return adabins_jax.Predictor('smoke', weights=weights, size=_SIZE, batch_size=2)


def _photo(seed, size=(40, 52)):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def test_equals_the_files_of_predict_mode(tmp_path, weights, predictor):
  photo = _photo(0)
  Image.fromarray(photo).save(tmp_path / 'p.png')
  options = predict.PredictOptions(str(tmp_path / 'p.png'), str(tmp_path / 'out'), size=_SIZE,
                                   batch_size=2, weights=weights)
  summary = predict.predict(smoke.get_config(), None, options)
  written = np.load(summary.written[str(tmp_path / 'p.png')][0])
  np.testing.assert_array_equal(predictor(photo), written)
  np.testing.assert_array_equal(predictor(str(tmp_path / 'p.png')), written)
  np.testing.assert_array_equal(predictor(Image.open(tmp_path / 'p.png')), written)


def test_any_image_form_gives_the_same_depth(predictor):
  photo = _photo(1)
  depth = predictor(photo)
  assert depth.shape == photo.shape[:2] and depth.dtype == np.float32
  np.testing.assert_array_equal(predictor(photo.astype(np.float32) / 255.0), depth)
  np.testing.assert_array_equal(predictor(Image.fromarray(photo)), depth)
  rgba = np.concatenate([photo, np.full((*photo.shape[:2], 1), 255, np.uint8)], axis=-1)
  np.testing.assert_array_equal(predictor(rgba), depth)


def test_a_batch_gives_the_numbers_of_one_at_a_time(predictor):
  photos = [_photo(i, size) for i, size in enumerate([(40, 52), (30, 70), (40, 52), (40, 52)])]
  batched = predictor(photos)
  assert [d.shape for d in batched] == [p.shape[:2] for p in photos]
  for photo, depth in zip(photos, batched):
    np.testing.assert_allclose(depth, predictor(photo), rtol=1e-5, atol=1e-6)


def test_prediction_has_bins_and_a_picture(predictor):
  result = predictor.predict(_photo(2))
  config = smoke.get_config()
  assert result.bin_centers.shape == (config.model.n_bins,)
  assert np.all(np.diff(result.bin_centers) > 0)
  assert config.model.min_depth_m <= result.bin_centers.min()
  assert result.bin_centers.max() <= config.model.max_depth_m
  assert result.colorized.shape == (40, 52, 3) and result.colorized.dtype == np.uint8


@pytest.mark.parametrize('bad, message', [
    (np.zeros((4, 4, 2), np.uint8), r'shape \(4, 4, 2\)'),
    (np.zeros((4, 4, 3), np.int32), 'int32'),
    (np.full((4, 4, 3), 2.0, np.float32), r'in \[0, 1\]'),
])
def test_bad_arrays_are_named(predictor, bad, message):
  with pytest.raises(ValueError, match=message):
    predictor(bad)


def test_missing_weights_are_named_as_keyword_arguments():
  with pytest.raises(ValueError, match=r"Predictor\('demo'\) needs trained weights: pass "
                                       r"workdir=.*or weights="):
    adabins_jax.Predictor('demo')
