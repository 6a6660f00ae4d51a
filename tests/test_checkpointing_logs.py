"""Orbax's per-save INFO lines stay out of a run's log unless --verbosity asks for them, and a
training run and a prediction print no Orbax, TPU, read-only or fork line at the default one."""

import json
import logging as std_logging
import os
import pathlib
import re
import subprocess
import sys

from absl import logging
from flax import nnx
import numpy as np
import optax
from PIL import Image
import pytest

from adabins_jax import checkpointing
from helpers.stand_ins import TinyDepthModel

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _orbax_records(caplog, tmp_path) -> list[std_logging.LogRecord]:
  model = TinyDepthModel(rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  manager = checkpointing.create_manager(tmp_path)
  with caplog.at_level(std_logging.DEBUG):
    for step in (1, 2):
      checkpointing.save(manager, step, model, optimizer, force=True)
    checkpointing.finish(manager)
    checkpointing.restore_model(tmp_path, TinyDepthModel(rngs=nnx.Rngs(1)), 'latest')
  manager.close()
  return [r for r in caplog.records if '/orbax/' in r.pathname]


def test_two_saves_and_a_restore_log_no_orbax_info_or_read_only_warning(caplog, tmp_path):
  previous = logging.get_verbosity()
  logging.set_verbosity(logging.INFO)
  try:
    records = _orbax_records(caplog, tmp_path)
  finally:
    logging.set_verbosity(previous)
  # Not one Orbax line: neither its INFO nor the warnings of a read-only manager ('Given
  # directory is read only', 'CheckpointManagerOptions.read_only=True, setting ...').
  assert not [r.getMessage() for r in records]
  # Our own lines still show.
  assert any('Saving checkpoint at step 2' in r.getMessage() for r in caplog.records)


def test_verbosity_1_shows_orbax_again(caplog, tmp_path):
  previous = logging.get_verbosity()
  logging.set_verbosity(1)
  try:
    records = _orbax_records(caplog, tmp_path)
  finally:
    logging.set_verbosity(previous)
  assert [r for r in records if r.levelno <= std_logging.INFO]


# Runs adabins_jax.main as `python -m` does, with a handler beside absl's on the root logger
# that notes where each record it prints comes from (absl's lines name only the file).
_LOGGED_MAIN = """
import json, logging, runpy, sys

class Note(logging.Handler):
  def emit(self, record):
    with open(NOTES, 'a', encoding='utf-8') as f:
      f.write(json.dumps([record.levelname, record.pathname, record.getMessage()]) + '\\n')

NOTES = sys.argv.pop(1)
logging.getLogger().addHandler(Note())
runpy.run_module('adabins_jax.main', run_name='__main__', alter_sys=True)
"""
# What must not be printed: JAX's TPU probing, Orbax's read-only-manager warnings, JAX's warning
# that os.fork() was called (imageio-ffmpeg's preexec_fn), Orbax by name.
_NOISE = re.compile(r'\bTPU\b|read[ _-]?only|\bfork\b|\borbax\b', re.IGNORECASE)


def _main_at_default_verbosity(tmp_path, name, *args):
  """Runs ``python -m adabins_jax.main *args``; returns its stdout and stderr and the records
  it logged as [level, pathname, message]."""
  notes = tmp_path / f'{name}.jsonl'
  # The child sets up imageio-ffmpeg itself, as a user's shell would not have done.
  env = {k: v for k, v in os.environ.items() if k != 'IMAGEIO_FFMPEG_NO_PREVENT_SIGINT'}
  env['XLA_FLAGS'] = '--xla_backend_optimization_level=0'  # Faster compiles; the same logs.
  result = subprocess.run([sys.executable, '-c', _LOGGED_MAIN, str(notes), *args], cwd=tmp_path,
                          env=dict(env, PYTHONPATH=str(_REPO)), capture_output=True, text=True,
                          timeout=600, check=False)
  assert result.returncode == 0, f'{name}:\n{result.stderr[-4000:]}'
  records = [json.loads(line) for line in notes.read_text().splitlines()]
  return result.stdout + result.stderr, records


# Two subprocess runs: 4 training steps (the tiny dataset built first), then a prediction.
@pytest.mark.slow
def test_training_and_prediction_print_no_orbax_tpu_read_only_or_fork_line(tmp_path):
  pytest.importorskip('imageio.v2')
  pytest.importorskip('imageio_ffmpeg')
  # pylint: disable-next=g-import-not-at-top
  from adabins_jax.inference import video as predict_video
  iio = predict_video._imageio()  # pylint: disable=protected-access
  workdir, inputs = tmp_path / 'run', tmp_path / 'in'
  inputs.mkdir()
  Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(inputs / 'room.png')
  with iio.get_writer(inputs / 'walk.mp4', format='FFMPEG', fps=10, codec='libx264',
                      macro_block_size=16, ffmpeg_log_level='error') as writer:
    for i in range(4):
      writer.append_data(np.full((48, 64, 3), 40 * i, np.uint8))
  runs = {
      'train': _main_at_default_verbosity(
          tmp_path, 'train', '--config=smoke', f'--workdir={workdir}',
          f'--config.data.tfds_data_dir={tmp_path / "tfds"}', '--config.train.num_steps=4'),
      # From the run's checkpoint (a read-only Orbax manager); a photo and a clip, whose
      # reader and two writers (--strip) are each an ffmpeg process.
      'predict': _main_at_default_verbosity(
          tmp_path, 'predict', '--mode=predict', '--config=smoke', f'--workdir={workdir}',
          f'--input={inputs}', f'--output={tmp_path / "out"}', '--strip'),
  }
  for name, (output, records) in runs.items():
    assert not [line for line in output.splitlines() if _NOISE.search(line)], (name, output)
    orbax = [r for r in records if f'{os.sep}orbax{os.sep}' in r[1]]
    assert not orbax, (name, orbax)
    # Our own lines are there: the notes see what is printed.
    assert any(r[1].endswith(os.path.join('adabins_jax', 'checkpointing.py')) for r in records)
  assert (tmp_path / 'out' / 'walk_strip.mp4').exists()
  assert (tmp_path / 'out' / 'room_strip.png').exists()
