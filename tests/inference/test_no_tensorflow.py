"""Prediction never imports TensorFlow: it costs seconds at start-up and is only for training data.

Checked in fresh processes, whose ``python -X importtime`` lists every module they import.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from adabins_jax import models
from adabins_jax.configs import smoke
from helpers import stand_ins

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _imports(*args: str, cwd) -> list[str]:
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(_REPO), os.environ.get('PYTHONPATH', '')]))
  result = subprocess.run([sys.executable, '-X', 'importtime', *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  return [line.rsplit('|', 1)[-1].strip() for line in result.stderr.splitlines()
          if line.startswith('import time:')]


def _tensorflow(modules: list[str]) -> list[str]:
  return [m for m in modules if m.split('.')[0] in ('tensorflow', 'tensorflow_datasets')]


def test_the_prediction_modules_import_no_tensorflow(tmp_path):
  modules = _imports('-c', 'import adabins_jax.main, adabins_jax.inference.predict, '
                     'adabins_jax.inference.predictor, adabins_jax.configs.validation',
                     cwd=tmp_path)
  assert 'adabins_jax.inference.predict' in modules
  assert not _tensorflow(modules)


@pytest.fixture(scope='module')
def run_and_photo(tmp_path_factory):
  folder = tmp_path_factory.mktemp('no_tf')
  stand_ins.save_run(folder / 'run', models.random_model(smoke.get_config().model, seed=1))
  photo = np.random.default_rng(0).integers(0, 256, (40, 52, 3), np.uint8)
  Image.fromarray(photo).save(folder / 'photo.png')
  return folder


@pytest.mark.slow  # Two fresh processes, each compiling the smoke model.
def test_predict_mode_and_predictor_import_no_tensorflow(run_and_photo):
  folder = run_and_photo
  modules = _imports('-m', 'adabins_jax.main', '--config=smoke', '--mode=predict',
                     f'--workdir={folder / "run"}', f'--input={folder / "photo.png"}',
                     f'--output={folder / "out"}', '--size=64x80', cwd=folder)
  assert (folder / 'out' / 'photo_depth.npy').exists()
  assert 'adabins_jax.inference.predict' in modules and not _tensorflow(modules)
  modules = _imports('-c', 'import sys; from adabins_jax import Predictor; '
                     f'depth = Predictor("smoke", workdir={str(folder / "run")!r}, '
                     f'size="64x80")({str(folder / "photo.png")!r}); '
                     'assert depth.shape == (40, 52), depth.shape', cwd=folder)
  assert 'adabins_jax.inference.predictor' in modules and not _tensorflow(modules)
