"""Builds (prepares) one or more datasets into a TFDS data directory.

TFDS 4.9.10's own `tfds build` command imports apache_beam at start-up, which this project does
not depend on; this does the same for the datasets the pipeline reads::

  python -m adabins_jax.datasets.build synthetic_rooms/default --data_dir=~/tensorflow_datasets
  python -m adabins_jax.datasets.build nyu_depth_v2_bts --manual_dir=/data/nyu
"""

import time

from absl import app
from absl import flags
from absl import logging
import tensorflow_datasets as tfds

import adabins_jax.datasets  # noqa: F401  (registers the builders)

_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory (default: TFDS).')
_MANUAL_DIR = flags.DEFINE_string(
    'manual_dir', None, 'Folder with the manually downloaded data (NYU builders).')


def build(name: str, data_dir: str | None = None, manual_dir: str | None = None):
  """Prepares dataset `name` ('name' or 'name/config') and returns its builder."""
  builder = tfds.builder(name, data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('name the dataset(s) to build, e.g. synthetic_rooms/default')
  for name in argv[1:]:
    start = time.perf_counter()
    builder = build(name, _DATA_DIR.value, _MANUAL_DIR.value)
    logging.info('%s: %s in %.1f s at %s', name, dict(builder.info.splits),
                 time.perf_counter() - start, builder.data_dir)


if __name__ == '__main__':
  app.run(main)
