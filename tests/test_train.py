"""End-to-end smoke test of training: train, get killed, resume, evaluate; on 1 and 2 devices.

Everything runs in one child process (``_SCENARIO``) on the smoke config and the tiny
synthetic_rooms split, and the test checks what it reports. One process because the
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
import textwrap

import numpy as np
import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TOTAL_STEPS = 5
_KILL_AT_STEP = 3
_BAD_STEP = 3

_SCENARIO = textwrap.dedent('''
    import json, os, shutil, signal, sys
    import jax
    jax.config.update('jax_num_cpu_devices', 2)
    import numpy as np
    from flax import nnx
    from absl import flags
    from adabins_jax import checkpointing, errors, evaluate, input_pipeline, main, models, train
    from stand_ins import tiny_rooms_config

    out = sys.argv[1]
    real_dataset = input_pipeline.create_train_dataset
    start_steps = {}

    def config_for(num_devices):
      return tiny_rooms_config(out, %(total)d, log_every_steps=2, num_devices=num_devices)

    def patch_dataset(name, kill_at=None, nan_at=None):
      def dataset(data_config, batch_size, seed, start_step=0):
        start_steps[name] = start_step
        for step, batch in enumerate(real_dataset(data_config, batch_size, seed, start_step),
                                     start_step + 1):
          if step == kill_at:
            os.kill(os.getpid(), signal.SIGTERM)
          if step == nan_at:
            batch['image'][0, 0, 0, 0] = np.nan
          yield batch
      input_pipeline.create_train_dataset = dataset

    def final_params(config, workdir):
      model = models.build_model(config.model, rngs=nnx.Rngs(params=1, dropout=1))
      step = checkpointing.restore_model(workdir, model, 'latest')
      return step, [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]

    def steps_in(workdir):
      return sorted(checkpointing.create_manager(workdir, read_only=True).all_steps())

    report = {}
    params = {}
    import time
    t0 = time.time()
    def mark(what):
      print(f'TIMING {time.time() - t0:7.2f} s {what}', file=sys.stderr, flush=True)
    config = config_for(1)
    patch_dataset('uninterrupted')
    workdir = os.path.join(out, 'uninterrupted')
    report['uninterrupted'] = train.train_and_evaluate(config, workdir)
    params['uninterrupted'] = final_params(config, workdir)[1]
    mark('uninterrupted')

    workdir = os.path.join(out, 'devices1')
    patch_dataset('killed', kill_at=%(kill)d)
    try:
      train.train_and_evaluate(config, workdir)
      report['killed'] = 'returned'
    except errors.Interrupted as e:
      report['killed'] = {'signal': e.signum, 'step': e.step, 'exit_status': e.exit_status}
    report['after_kill'] = steps_in(workdir)
    # The same checkpoint resumed twice: on one device, and on two.
    shutil.copytree(workdir, os.path.join(out, 'devices2'))
    mark('killed')
    for num_devices in (1, 2):
      workdir = os.path.join(out, f'devices{num_devices}')
      patch_dataset(f'resumed{num_devices}')
      report[f'resumed{num_devices}'] = train.train_and_evaluate(config_for(num_devices), workdir)
      report[f'after_resume{num_devices}'] = steps_in(workdir)
      params[f'resumed{num_devices}'] = final_params(config, workdir)[1]
      report[f'pngs{num_devices}'] = sorted(p for p in os.listdir(workdir) if p.endswith('.png'))
      mark(f'resumed on {num_devices}')

    # Evaluation mode, through the command line's own entry point.
    # config_flags reads overrides from sys.argv itself.
    sys.argv = ['main', '--config=configs/smoke.py', '--workdir=' + workdir, '--mode=eval',
                '--config.eval.crop=none', '--config.eval.batch_size=4',
                '--config.data.dataset=synthetic_rooms/tiny',
                '--config.data.crop_white_border=False', '--config.train.num_devices=2']
    argv = flags.FLAGS(sys.argv)
    flags.FLAGS.config.data.tfds_data_dir = os.path.join(out, 'tfds')
    main.main(argv)
    mark('eval mode')
    report['eval_json'] = json.load(open(os.path.join(workdir, 'eval_test_step_%(total)d.json')))

    # A NaN in the data: stop with an error naming the step, keep the checkpoints before it.
    config = config_for(1)
    config.train.checkpoint_every_steps = 1
    workdir = os.path.join(out, 'nan')
    patch_dataset('nan', nan_at=%(bad)d)
    try:
      train.train_and_evaluate(config, workdir)
      report['nan_error'] = None
    except FloatingPointError as e:
      report['nan_error'] = str(e)
    report['after_nan'] = steps_in(workdir)
    mark('nan')
    report['start_steps'] = start_steps
    # Length from epochs: 2 passes over 16 training images in batches of 4.
    config = config_for(1)
    config.train.num_steps, config.train.num_epochs = 0, 2
    report['steps_for_2_epochs'] = train.total_train_steps(config)
    np.savez(os.path.join(out, 'params.npz'),
             **{f'{k}_{i}': v for k, leaves in params.items() for i, v in enumerate(leaves)})
    json.dump(report, open(os.path.join(out, 'report.json'), 'w'))
''') % {'total': _TOTAL_STEPS, 'kill': _KILL_AT_STEP, 'bad': _BAD_STEP}


def _run_scenario(out):
  env = dict(os.environ,
             PYTHONPATH=os.pathsep.join([str(_REPO), str(_REPO / 'tests')]),
             JAX_COMPILATION_CACHE_DIR=str(out / 'jax_cache'),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0',
             XLA_FLAGS='--xla_backend_optimization_level=0',
             TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run([sys.executable, '-c', _SCENARIO, str(out)], cwd=_REPO, env=env,
                          capture_output=True, text=True, timeout=600)
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
  _check_eval_mode_reproduces_the_last_training_evaluation(report, stdout)
  _check_non_finite_loss_stops_and_keeps_earlier_checkpoints(report)
  # Length from epochs: 2 passes over 16 training images in batches of 4.
  assert report['steps_for_2_epochs'] == 2 * 16 // 4
