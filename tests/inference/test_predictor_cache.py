"""Predictor keeps its compiled network in JAX's persistent cache, so a new session skips the
compile; ``compilation_cache_dir=''`` turns that off."""

import os
import pathlib
import subprocess
import sys

import pytest

from adabins_jax import models
from adabins_jax.configs import smoke
from helpers import stand_ins

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _predict_in_a_new_process(run, cache) -> None:
  code = ('import numpy as np; from adabins_jax import Predictor; '
          f'p = Predictor("smoke", workdir={str(run)!r}, size="64x80", '
          f'compilation_cache_dir={str(cache)!r}); '
          'p(np.zeros((40, 52, 3), np.uint8))')
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([str(_REPO), os.environ.get('PYTHONPATH', '')]))
  result = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow  # Two fresh processes, each building the smoke model.
def test_a_predictor_fills_the_persistent_cache_unless_turned_off(tmp_path):
  run = stand_ins.save_run(tmp_path / 'run', models.random_model(smoke.get_config().model, seed=1))
  _predict_in_a_new_process(run, tmp_path / 'cache')
  cached = [p for p in (tmp_path / 'cache').rglob('*') if p.is_file()]
  assert cached, 'nothing was written to the compilation cache'
  # Turned off: the run succeeds and the cache stays as it was.
  before = sorted(cached)
  _predict_in_a_new_process(run, '')
  assert sorted(p for p in (tmp_path / 'cache').rglob('*') if p.is_file()) == before
