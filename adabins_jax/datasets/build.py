"""Builds (prepares) one or more datasets into a TFDS data directory.

TFDS 4.9.10's own `tfds build` command imports apache_beam at start-up, which this project does
not depend on; this does the same for the datasets the pipeline reads::

  python -m adabins_jax.datasets.build synthetic_rooms/default --data_dir=~/tensorflow_datasets
  python -m adabins_jax.datasets.build nyu_depth_v2_bts --manual_dir=/data/nyu
  python -m adabins_jax.datasets.build --config=my_rgbd.py   # what that config trains on

With ``--config``, the dataset is the one the config's training run reads (``config.data``:
its dataset, TFDS data and manual folders, and for ``rgbd_folder`` the builder config made
from ``data.rgbd``), prepared where the run will look for it.
"""

import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

import adabins_jax.datasets  # Registers the builders.

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory (default: TFDS).')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Folder with the manually downloaded data (NYU builders).')
_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'A training config: builds its config.data dataset (no names needed).',
    lock_config=True)


def main(argv):
  if _CONFIG.value is not None:
    if len(argv) > 1 or _DATA_DIR.value or _MANUAL_DIR.value:
      raise app.UsageError('--config names the dataset and its folders (config.data); give '
                           'no dataset names, --data_dir or --manual_dir with it')
    jobs = [(_CONFIG.value.data.dataset,
             lambda: adabins_jax.datasets.prepare(_CONFIG.value.data))]
  elif len(argv) < 2:
    raise app.UsageError('name the dataset(s) to build, e.g. synthetic_rooms/default, or give '
                         '--config=<training config>')
  else:
    jobs = [(name, lambda name=name: adabins_jax.datasets.prepare_named(
        name, _DATA_DIR.value, _MANUAL_DIR.value)) for name in argv[1:]]
  for name, prepare in jobs:
    start = time.perf_counter()
    builder = prepare()
    logging.info('%s: %s in %.1f s at %s', name, dict(builder.info.splits),
                 time.perf_counter() - start, builder.data_dir)


if __name__ == '__main__':
  app.run(main)
