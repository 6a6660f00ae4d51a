"""Converts a released PyTorch AdaBins checkpoint into this project's Orbax checkpoint.

  python -m adabins_jax.torch_weights --config=effnet_b5_256 --weights=AdaBins_nyu.pt \\
      --workdir=runs/effnet_b5_256

The workdir then holds step 0: the released weights plus a fresh optimizer state, which
``--mode=eval`` and ``--mode=predict`` read, and from which ``--mode=train`` fine-tunes.
Accepts every format the release used. A file named for the release's KITTI weights
(``AdaBins_kitti.pt``, 80 m) needs a config of that range, ``--config=kitti_effnet_b5_256``,
and is refused by a 10 m one; see ``importer``.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from adabins_jax import configs
from adabins_jax.torch_weights import release as release_weights


def _define_flags():
  # Defined only when run as a program: adabins_jax.main owns the same names in-process.
  flags.DEFINE_string('weights', None, 'The released .pt file (as --weights of main).')
  flags.DEFINE_alias('checkpoint', 'weights')  # Its earlier name.
  flags.DEFINE_string('workdir', None, 'Folder to write the Orbax checkpoint to.')
  config_flags.DEFINE_config_file('config', None, 'Config whose model the weights are for.',
                                  lock_config=True)
  flags.mark_flags_as_required(['config', 'weights', 'workdir'])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  if not os.path.isfile(args.weights):  # Before PyTorch and JAX load.
    sys.exit(f'error: --weights={args.weights}: no such file.')
  # pylint: disable-next=g-import-not-at-top  # Here, not above: --help needs none of it.
  from adabins_jax.torch_weights import importer
  try:
    n = importer.import_checkpoint(args.config, args.weights, args.workdir)
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
