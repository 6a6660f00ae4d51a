"""Command line: parses flags and hands the config to training, evaluation or prediction.

  python -m adabins_jax.main --config=configs/unet128.py --workdir=runs/unet128
  python -m adabins_jax.main --config=configs/unet128.py --workdir=runs/unet128 --mode=eval
  python -m adabins_jax.main --config=configs/smoke.py --workdir=/tmp/smoke \\
      --config.train.num_steps=20
  python -m adabins_jax.main --mode=predict --config=demo --workdir=runs/demo \\
      --input='photos/*.jpg' --output=depth/

Any config field can be overridden as ``--config.<group>.<field>=<value>``. On a cluster
(SLURM ``srun`` or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID) every
process runs this same command; see launch.sh.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from adabins_jax import compilation_cache
from adabins_jax import configs
from adabins_jax import errors
from adabins_jax import host_memory
# Declares --input, --output, ... of --mode=predict without importing the prediction code.
from adabins_jax.inference import flags as predict_flags

_WORKDIR = flags.DEFINE_string(
    'workdir', None,
    'Folder for checkpoints, logs and outputs (predict: optional, with --weights).')
_MODE = flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'predict'],
                          'train (resumes if the workdir has checkpoints), eval or predict.')
config_flags.DEFINE_config_file(
    'config', None, 'A config file, or the name of a shipped one (unet128, demo, ...: see '
    'adabins_jax/configs).', lock_config=True)
_COMPILATION_CACHE = flags.DEFINE_string(
    'compilation_cache_dir', str(compilation_cache.default_directory()),
    "JAX's persistent compilation cache, so that a rerun does not compile again (one "
    "subfolder per kind of machine); '' turns it off.")
flags.mark_flags_as_required(['config'])
# --help lists them with main's own flags, not only under --helpfull.
flags.adopt_module_key_flags(predict_flags)

def _dispatch(mode: str):
  """The function for a mode, imported only when chosen (predict may pull in more)."""
  # pylint: disable=g-import-not-at-top
  if mode == 'train':
    from adabins_jax import train
    return train.train_and_evaluate
  if mode == 'eval':
    from adabins_jax import evaluate
    return evaluate.evaluate
  from adabins_jax.inference import predict
  return predict.predict


def _check_paths(mode: str) -> None:
  """Exits on --input or --weights of a prediction that name nothing, before JAX loads."""
  if mode != 'predict' or not predict_flags.OUTPUT.value or not (
      predict_flags.INPUT.value or predict_flags.INPUT_LIST.value):
    return  # The prediction options say what is missing.
  weights = predict_flags.WEIGHTS.value
  if weights and not os.path.isfile(os.path.expanduser(weights)):
    sys.exit(f'error: --weights={weights}: no such file.')
  # pylint: disable-next=g-import-not-at-top
  from adabins_jax.inference import input_files  # Pillow only.
  try:
    literal = (input_files.read_input_list(predict_flags.INPUT_LIST.value)
               if predict_flags.INPUT_LIST.value else ())
  except ValueError as e:
    sys.exit(f'predict: {e}')
  paths, problems = input_files.find_images(predict_flags.INPUT.value or [], literal=literal,
                                            output_dir=predict_flags.OUTPUT.value)
  if not paths:
    # The words of predict.predict, which checks again with the options it is given.
    sys.exit('predict: no image to read:' + ''.join(f'\n  {spec}: {why}' for spec, why in problems))


def _mode_arguments(mode: str) -> dict:
  """The mode's arguments from the flags; a usage error for flags of another mode."""
  if mode == 'predict':
    # pylint: disable-next=g-import-not-at-top
    from adabins_jax.inference import predict
    try:
      return {'options': predict.PredictOptions(**predict_flags.values())}
    except ValueError as e:
      raise app.UsageError(str(e), exitcode=2) from None
  # Evaluation can score a released .pt too, or an unverified step; the rest is prediction's.
  shared = ('--weights', '--allow_unverified_checkpoint')
  misplaced = [f for f in predict_flags.given() if f not in shared or mode == 'train']
  if misplaced:
    raise app.UsageError(f'{", ".join(misplaced)}: only for --mode=predict'
                         f'{" or eval" if set(misplaced) <= set(shared) else ""}.', exitcode=2)
  if mode != 'eval':
    return {}
  given = {'weights': predict_flags.WEIGHTS.value,
           'allow_unverified_checkpoint': predict_flags.ALLOW_UNVERIFIED_CHECKPOINT.value}
  return {k: v for k, v in given.items() if v}


# Errors whose message says all a user needs: printed as one line, exit status 1.
_EXPLAINED = (errors.CheckpointError, errors.WorkdirBusyError, errors.DivergedError,
              errors.NonFinitePredictionError)


def main(argv):
  """Runs the mode. Exit status: 0 done; 1 failed (the message says why); 2 bad command line
  or config; 128 + N stopped by signal N (143 SIGTERM, 130 SIGINT) after saving a checkpoint,
  so that a scheduler can requeue the run."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}', exitcode=2)
  # Prediction can read released PyTorch weights (--weights) instead of a workdir.
  if _WORKDIR.value is None and _MODE.value != 'predict':
    raise app.UsageError(f'--mode={_MODE.value} needs --workdir.', exitcode=2)
  _check_paths(_MODE.value)
  mode_kwargs = _mode_arguments(_MODE.value)
  if _MODE.value != 'predict':
    try:
      errors.require_tensorflow(f'--mode={_MODE.value}')
    except errors.MissingTensorFlowError as e:
      sys.exit(f'error: {e}')
    # pylint: disable-next=g-import-not-at-top
    from adabins_jax import input_pipeline  # Prediction runs without TensorFlow.
    input_pipeline.hide_gpus_from_tensorflow()
  # pylint: disable=g-import-not-at-top  # Here, not above: --help needs none of them.
  import jax
  from adabins_jax import parallel
  from adabins_jax.configs import validation as config_validation
  # pylint: enable=g-import-not-at-top
  problems = config_validation.problems(flags.FLAGS.config)
  if problems:
    print('Invalid config:\n  ' + '\n  '.join(problems), file=sys.stderr)
    sys.exit(2)
  parallel.maybe_initialize_distributed()
  compilation_cache.enable(_COMPILATION_CACHE.value)
  logging.info('Process %d of %d; devices: %s', jax.process_index(), jax.process_count(),
               jax.devices())
  try:
    _dispatch(_MODE.value)(flags.FLAGS.config, _WORKDIR.value, **mode_kwargs)
  except errors.Interrupted as e:
    print(e, file=sys.stderr)
    sys.exit(e.exit_status)
  except errors.ConfigMismatchError as e:
    # The checkpoint is fine; the command asked for another model: a usage error.
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  except _EXPLAINED as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(1)


def run() -> None:
  """The console command: with ``ADABINS_JAX_MALLOC=tuned``, sets glibc's malloc for XLA's
  buffers (``host_memory``, before any thread starts); parses the flags and runs ``main``."""
  host_memory.tune()
  configs.run_command(main, jax_flags=True)


if __name__ == '__main__':
  run()
