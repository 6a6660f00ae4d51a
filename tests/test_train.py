"""End-to-end smoke test of training: train, get killed, resume, evaluate; on 1 and 2 devices.

Everything runs in one child process (tests/helpers/train_program.py) on the smoke config and the
tiny synthetic_rooms split, and the test checks what it reports. One process because the
costly part is compiling: the child enables JAX's persistent compilation cache, so the
programs of later runs with the same shapes and devices load in a fraction of a second, and
compiles at XLA's lowest optimisation level. The interruption is a real SIGTERM, sent by the
process to itself while the data pipeline hands out a given batch, so it lands at a known step.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from helpers import train_program

# Subprocess end-to-end: the whole module is one child process that trains, is killed,
# resumes and evaluates, minutes on 2 cores.
pytestmark = pytest.mark.slow

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TOTAL_STEPS = train_program.TOTAL_STEPS
_KILL_AT_STEP = train_program.KILL_AT_STEP
_BAD_STEP = train_program.BAD_STEP


def _run_scenario(out):
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([str(_REPO), str(_REPO / 'tests')]),
             JAX_COMPILATION_CACHE_DIR=str(out / 'jax_cache'),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0',
             XLA_FLAGS='--xla_backend_optimization_level=0',
             TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([sys.executable, train_program.__file__, str(out)], cwd=_REPO,
                          env=env, capture_output=True, text=True, timeout=600)
  if result.returncode:
    pytest.fail(f'scenario failed ({result.returncode}):\n{result.stderr[-6000:]}')
  report = json.loads((out / 'report.json').read_text())
  with np.load(out / 'params.npz') as npz:
    params = {k: npz[k] for k in npz.files}
  return report, params, result.stdout


def _check_sigterm_saves_a_checkpoint_and_stops(report):
  # Not a normal return: the caller (main) exits 143 so that a scheduler requeues the run.
  assert report['killed'] == {'signal': 15, 'step': _KILL_AT_STEP, 'exit_status': 143}
  # Checkpoints every 2 steps, and at the step the signal arrived; no evaluation yet.
  assert report['after_kill'] == [2, _KILL_AT_STEP]
  assert report['start_steps']['killed'] == 0


def _check_resume_continues_at_the_saved_step(report, num_devices):
  assert report['start_steps'][f'resumed{num_devices}'] == _KILL_AT_STEP, num_devices
  # The newest three are kept: the one of step 2 is gone.
  assert report[f'after_resume{num_devices}'] == [_KILL_AT_STEP, 4, _TOTAL_STEPS], num_devices
  assert report[f'pngs{num_devices}'] == [f'eval_predictions_{_TOTAL_STEPS:08d}.png']
  assert report[f'resumed{num_devices}']['num_images'] == 8


def _check_the_first_step_runs_the_program_traced_ahead(report):
  # One trace of the train step per run: the one made from the shapes of the state and batch
  # while the model was built or restored. A second would be a recompile at the first step.
  assert report['train_step_traces'] == {'uninterrupted': 1, 'killed': 1, 'resumed1': 1,
                                         'resumed2': 1}


def _check_resumed_run_equals_uninterrupted_run(report, params):
  names = sorted({k.rsplit('_', 1)[0] for k in params})
  assert names == ['resumed1', 'resumed2', 'uninterrupted']
  num_leaves = sum(k.startswith('uninterrupted_') for k in params)
  for i in range(num_leaves):
    reference = params[f'uninterrupted_{i}']
    # Same device count: the same computation, bit for bit.
    np.testing.assert_array_equal(params[f'resumed1_{i}'], reference)
    # Steps 4 and 5 with the batch split over two devices: rounding differences only.
    np.testing.assert_allclose(params[f'resumed2_{i}'], reference, rtol=1e-3, atol=2e-4)
  for key in ('abs_rel', 'd1', 'rmse'):
    np.testing.assert_allclose(report['resumed2'][key], report['uninterrupted'][key],
                               rtol=1e-4, err_msg=key)


def _check_eval_mode_reproduces_the_last_training_evaluation(report, stdout):
  evaluated, trained = report['eval_json'], report['resumed2']
  assert evaluated['step'] == _TOTAL_STEPS
  for key, value in trained.items():
    np.testing.assert_allclose(evaluated[key], value, rtol=1e-5, err_msg=key)
  assert 'abs_rel' in stdout and f'Evaluation of step {_TOTAL_STEPS}' in stdout


def _check_non_finite_loss_stops_and_keeps_earlier_checkpoints(report):
  assert report['nan_error'] is not None
  assert f'at step {_BAD_STEP}' in report['nan_error']
  assert report['after_nan'] == list(range(1, _BAD_STEP))


# One test, not several sharing a fixture: under pytest-xdist each worker would run the
# minute-long scenario again.
def test_train_kill_resume_evaluate(tmp_path):
  report, params, stdout = _run_scenario(tmp_path)
  _check_sigterm_saves_a_checkpoint_and_stops(report)
  for num_devices in (1, 2):
    _check_resume_continues_at_the_saved_step(report, num_devices)
  _check_resumed_run_equals_uninterrupted_run(report, params)
  _check_the_first_step_runs_the_program_traced_ahead(report)
  _check_eval_mode_reproduces_the_last_training_evaluation(report, stdout)
  _check_non_finite_loss_stops_and_keeps_earlier_checkpoints(report)
  # Length from epochs: 2 passes over 16 training images in batches of 4.
  assert report['steps_for_2_epochs'] == 2 * 16 // 4


def test_a_huge_learning_rate_stops_the_command_and_saves_nothing(tmp_path):
  # Finite loss and gradient, but the first update sends the weights to inf: the run must end
  # with a named error and a non-zero status instead of saving them.
  workdir = tmp_path / 'run'
  env = dict(os.environ, XLA_FLAGS='--xla_backend_optimization_level=0',
             TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.main', '--config=smoke', f'--workdir={workdir}',
       f'--config.data.tfds_data_dir={tmp_path / "tfds"}', '--config.train.num_steps=1',
       '--config.optim.learning_rate=1e30'],
      cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
  assert result.returncode == 1, result.stderr[-3000:]
  last_line = result.stderr.strip().splitlines()[-1]
  assert last_line.startswith('error: Training diverged at step 1: param_norm not finite'), (
      last_line)
  checkpoints = workdir / 'checkpoints'
  assert not checkpoints.exists() or not any(p.name.isdigit() for p in checkpoints.iterdir())
