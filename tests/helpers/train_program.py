"""The program test_train.py runs in a child process: train, get killed, resume, evaluate.

  python tests/helpers/train_program.py OUT    # with the repository and tests/ on PYTHONPATH

Runs the smoke model on the tiny synthetic_rooms split: an uninterrupted run; a run stopped by
a real SIGTERM, sent by the process to itself while the data pipeline hands out a given batch;
that checkpoint resumed on one device and on two; evaluation mode through main's entry point;
and a run that meets a NaN. It writes what happened to OUT/report.json and the final
parameters of each run to OUT/params.npz, for the test to check.
"""

import json
import os
import shutil
import signal
import sys
import time

from absl import flags
from flax import nnx
import jax
import numpy as np

from adabins_jax import checkpointing
from adabins_jax import errors
from adabins_jax import input_pipeline
from adabins_jax import main as main_lib
from adabins_jax import models
from adabins_jax import steps
from adabins_jax import train
from helpers.stand_ins import tiny_rooms_config

TOTAL_STEPS = 5
KILL_AT_STEP = 3
BAD_STEP = 3


class _Scenario:
  """The runs of one program, sharing the output folder and the patched data pipeline."""

  def __init__(self, out: str):
    self.out = out
    self.real_dataset = input_pipeline.create_train_dataset
    self.start_steps = {}
    self.report, self.params = {'train_step_traces': {}}, {}
    self.t0 = time.time()
    # The train step's traces per run: train.py traces it ahead, from the shapes of the state
    # and batch; a first call with other shapes or types would trace (and compile) it again.
    self.traces = 0
    train_step = steps._train_step  # pylint: disable=protected-access

    def traced(*args, **kwargs):
      self.traces += 1
      return train_step(*args, **kwargs)
    steps._train_step = traced  # pylint: disable=protected-access

  def count_traces(self, name):
    """Records how often the train step was traced since the last call."""
    self.report['train_step_traces'][name] = self.traces
    self.traces = 0

  def mark(self, what):
    print(f'TIMING {time.time() - self.t0:7.2f} s {what}', file=sys.stderr, flush=True)

  def config_for(self, num_devices):
    return tiny_rooms_config(self.out, TOTAL_STEPS, log_every_steps=2, num_devices=num_devices)

  def patch_dataset(self, name, kill_at=None, nan_at=None):
    """Records each run's start step; sends SIGTERM or puts a NaN in at a given step."""
    def dataset(data_config, batch_size, seed, start_step=0):
      self.start_steps[name] = start_step
      for step, batch in enumerate(self.real_dataset(data_config, batch_size, seed, start_step),
                                   start_step + 1):
        if step == kill_at:
          os.kill(os.getpid(), signal.SIGTERM)
        if step == nan_at:
          batch['image'][0, 0, 0, 0] = np.nan
        yield batch
    input_pipeline.create_train_dataset = dataset


def _final_params(config, workdir):
  model = models.build_model(config.model, rngs=nnx.Rngs(params=1, dropout=1))
  step = checkpointing.restore_model(workdir, model, 'latest')
  return step, [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def _steps_in(workdir):
  return sorted(checkpointing.create_manager(workdir, read_only=True).all_steps())


def _train_kill_and_resume(s: _Scenario) -> str:
  """Uninterrupted, killed, resumed on 1 and 2 devices; returns the last workdir."""
  config = s.config_for(1)
  s.patch_dataset('uninterrupted')
  workdir = os.path.join(s.out, 'uninterrupted')
  s.report['uninterrupted'] = train.train_and_evaluate(config, workdir)
  s.count_traces('uninterrupted')
  s.params['uninterrupted'] = _final_params(config, workdir)[1]
  s.mark('uninterrupted')

  workdir = os.path.join(s.out, 'devices1')
  s.patch_dataset('killed', kill_at=KILL_AT_STEP)
  try:
    train.train_and_evaluate(config, workdir)
    s.report['killed'] = 'returned'
  except errors.Interrupted as e:
    s.report['killed'] = {'signal': e.signum, 'step': e.step, 'exit_status': e.exit_status}
  s.count_traces('killed')
  s.report['after_kill'] = _steps_in(workdir)
  # The same checkpoint resumed twice: on one device, and on two.
  shutil.copytree(workdir, os.path.join(s.out, 'devices2'))
  s.mark('killed')
  for num_devices in (1, 2):
    workdir = os.path.join(s.out, f'devices{num_devices}')
    s.patch_dataset(f'resumed{num_devices}')
    s.report[f'resumed{num_devices}'] = train.train_and_evaluate(s.config_for(num_devices),
                                                                 workdir)
    s.count_traces(f'resumed{num_devices}')
    s.report[f'after_resume{num_devices}'] = _steps_in(workdir)
    s.params[f'resumed{num_devices}'] = _final_params(config, workdir)[1]
    s.report[f'pngs{num_devices}'] = sorted(p for p in os.listdir(workdir)
                                            if p.endswith('.png'))
    s.mark(f'resumed on {num_devices}')
  return workdir


def _evaluate_through_main(s: _Scenario, workdir: str) -> None:
  """Evaluation mode, through the command line's own entry point."""
  # config_flags reads overrides from sys.argv itself.
  sys.argv = ['main', '--config=configs/smoke.py', '--workdir=' + workdir, '--mode=eval',
              '--config.eval.crop=none', '--config.eval.batch_size=4',
              '--config.data.dataset=synthetic_rooms/tiny',
              '--config.data.crop_white_border=False', '--config.train.num_devices=2']
  argv = flags.FLAGS(sys.argv)
  flags.FLAGS.config.data.tfds_data_dir = os.path.join(s.out, 'tfds')
  main_lib.main(argv)
  s.mark('eval mode')
  with open(os.path.join(workdir, f'eval_test_step_{TOTAL_STEPS}.json')) as f:
    s.report['eval_json'] = json.load(f)


def _train_into_a_nan(s: _Scenario) -> None:
  """A NaN in the data: stop with an error naming the step, keep the checkpoints before it."""
  config = s.config_for(1)
  config.train.checkpoint_every_steps = 1
  workdir = os.path.join(s.out, 'nan')
  s.patch_dataset('nan', nan_at=BAD_STEP)
  try:
    train.train_and_evaluate(config, workdir)
    s.report['nan_error'] = None
  except FloatingPointError as e:
    s.report['nan_error'] = str(e)
  s.report['after_nan'] = _steps_in(workdir)
  s.mark('nan')


def main(out: str) -> None:
  # Before anything starts JAX's backends: the resumed run splits its batch over two devices.
  jax.config.update('jax_num_cpu_devices', 2)
  s = _Scenario(out)
  workdir = _train_kill_and_resume(s)
  _evaluate_through_main(s, workdir)
  _train_into_a_nan(s)
  s.report['start_steps'] = s.start_steps
  # Length from epochs: 2 passes over 16 training images in batches of 4.
  config = s.config_for(1)
  config.train.num_steps, config.train.num_epochs = 0, 2
  s.report['steps_for_2_epochs'] = train.total_train_steps(config)
  np.savez(os.path.join(out, 'params.npz'),
           **{f'{k}_{i}': v for k, leaves in s.params.items() for i, v in enumerate(leaves)})
  with open(os.path.join(out, 'report.json'), 'w') as f:
    json.dump(s.report, f)


if __name__ == '__main__':
  main(sys.argv[1])
