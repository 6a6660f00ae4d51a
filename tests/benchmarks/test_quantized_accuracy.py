"""benchmarks/quantized_accuracy.py: its table, and its float32 file scoring as JAX does."""

import numpy as np
import pytest

pytest.importorskip('tensorflow')
pytest.importorskip('ai_edge_litert')

# pylint: disable=g-import-not-at-top,wrong-import-position
from helpers import stand_ins
from adabins_jax import network_input
from adabins_jax.configs import smoke
from adabins_jax import models
from helpers import benchmark_scripts
# pylint: enable=g-import-not-at-top,wrong-import-position


@pytest.fixture(scope='module')
def run(tmp_path_factory):
  """A smoke-model training run with one checkpoint (random weights: nothing is trained)."""
  model = models.random_model(smoke.get_config().model, seed=1)
  return stand_ins.save_run(tmp_path_factory.mktemp('run'), model)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_table_has_every_format_and_float32_tflite_scores_as_jax(run, tmp_path, capsys):
  script = benchmark_scripts.load('quantized_accuracy')
  rows = script.main(['--config=smoke', f'--workdir={run}', f'--tfds_data_dir={tmp_path}',
                      '--calibration=2', '--limit=3', f'--output={tmp_path / "files"}'])
  table = capsys.readouterr().out
  names = ['jax float32', 'tflite float32', 'tflite float16', 'tflite int8']
  assert list(rows) == names
  lines = [line for line in table.splitlines() if line.startswith('|')]
  assert lines[0].startswith('| format | file MB | d1 | abs_rel | rmse |')
  assert [line.split('|')[1].strip() for line in lines[2:]] == names
  assert all(rows[name]['num_images'] == 3 for name in names)
  # The uint8 rounding of a 3-image input moves d1 by far less than the built-in check allows.
  assert abs(rows['tflite float32']['d1'] - rows['jax float32']['d1']) < script.D1_TOLERANCE
  assert rows['tflite float32']['abs_rel'] == pytest.approx(rows['jax float32']['abs_rel'],
                                                             rel=1e-2)
  # Int8 convolution weights; the bins head's dense layers, much of this tiny model, stay float.
  assert rows['tflite int8']['size_mb'] < 0.8 * rows['tflite float32']['size_mb']
  assert (tmp_path / 'files' / 'tflite_int8.tflite').exists()


def test_limit_masks_the_images_past_it(tmp_path):
  script = benchmark_scripts.load('quantized_accuracy')
  config = smoke.get_config()
  config.data.tfds_data_dir = str(tmp_path)
  batches = script.eval_batches(config, limit=3)
  # synthetic_rooms/tiny's 8 test frames in batches of 2: two batches reach the third image.
  assert [b['example_mask'].tolist() for b in batches] == [[True, True], [True, False]]


def test_uint8_input_is_the_pipelines_image_rounded():
  script = benchmark_scripts.load('quantized_accuracy')
  rgb = np.random.default_rng(0).uniform(0, 1, (1, 4, 5, 3)).astype(np.float32)
  got = script.as_uint8(network_input.normalize(rgb))
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(got, np.round(rgb * 255).astype(np.uint8))
