"""Converts a released PyTorch AdaBins checkpoint into this project's Orbax checkpoint.

  python -m adabins_jax.torch_weights --config=effnet_b5_256 --weights=AdaBins_nyu.pt \\
      --workdir=runs/effnet_b5_256

The workdir then holds step 0: the released weights plus a fresh optimizer state, which
``--mode=eval`` and ``--mode=predict`` read, and from which ``--mode=train`` fine-tunes.
Accepts every format the release used (see ``torch_mapping.normalise_state_dict``). The weights
hold no depth range: a file named for the release's KITTI weights (``AdaBins_kitti.pt``, 80 m)
needs a config of that range, ``--config=kitti_effnet_b5_256``, and is refused by a 10 m one
(``release_weights.check_file_range``); the checkpoint records the config's range.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from flax import nnx
from ml_collections import config_flags

from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax import models
from adabins_jax import optim
from adabins_jax.torch_weights import release as release_weights
from adabins_jax.torch_weights import mapping as torch_mapping


def _define_flags():
  # Defined only when run as a program: adabins_jax.main owns the same names in-process.
  flags.DEFINE_string('weights', None, 'The released .pt file (as --weights of main).')
  flags.DEFINE_alias('checkpoint', 'weights')  # Its earlier name.
  flags.DEFINE_string('workdir', None, 'Folder to write the Orbax checkpoint to.')
  config_flags.DEFINE_config_file('config', None, 'Config whose model the weights are for.',
                                  lock_config=True)
  flags.mark_flags_as_required(['config', 'weights', 'workdir'])


def import_checkpoint(config, checkpoint: str | os.PathLike, workdir: str | os.PathLike) -> int:
  """Loads ``checkpoint`` into ``config``'s model and saves it as step 0 of ``workdir``.

  Returns:
    The number of parameters imported.

  Raises:
    FileExistsError: the workdir already holds checkpoints (nothing is overwritten).
    release_weights.DepthRangeError: the file's name says another depth range than the
      config's model, and ``config.model.allow_range_mismatch`` is off.
    ValueError: the checkpoint does not fit the model; the message names every bad key.
  """
  existing = checkpointing.checkpoint_dir(workdir)
  if existing.exists() and any(existing.iterdir()):
    raise FileExistsError(f'{existing} already holds checkpoints; import into an empty '
                          'workdir.')
  # Read and check the weights first: a file that fails leaves no checkpoints/ folder behind.
  model = models.build_abstract_model(config.model, seed=config.seed)
  torch_mapping.load_torch_checkpoint(
      model, checkpoint, allow_range_mismatch=config.model.allow_range_mismatch)
  manager = checkpointing.create_manager(workdir, keep_latest=1, keep_best=1)
  # Adam's state does not depend on the schedule's length; training rebuilds the schedule.
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, total_steps=1),
                            wrt=nnx.Param)
  checkpointing.save(manager, 0, model, optimizer, force=True, model_config=config.model)
  checkpointing.finish(manager)
  manager.close()
  return models.count_params(model)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  try:
    n = import_checkpoint(args.config, args.weights, args.workdir)
  except release_weights.DepthRangeError as e:
    sys.exit(f'error: {e}')  # The message says what to change.
  logging.info('Imported %d parameters from %s into %s.', n, args.weights, args.workdir)
  print(f'Imported {n:,} parameters from {args.weights} into {args.workdir} (step 0).')


def run() -> None:
  """The console command: parses the flags and runs ``main``."""
  _define_flags()
  configs.run_command(main)


if __name__ == '__main__':
  run()
