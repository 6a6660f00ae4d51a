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

from __future__ import annotations

import time

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags
import tensorflow_datasets as tfds

from adabins_jax import configs
from adabins_jax.datasets import rgbd_folder
# Importing a builder registers it with TFDS.
from adabins_jax.datasets.kitti_eigen import KittiEigen  # pylint: disable=unused-import
from adabins_jax.datasets.nyu_depth_v2_bts import NyuDepthV2Bts  # pylint: disable=unused-import
from adabins_jax.datasets.nyu_depth_v2_h5 import NyuDepthV2H5  # pylint: disable=unused-import
from adabins_jax.datasets.sun_rgbd import SunRgbd  # pylint: disable=unused-import
from adabins_jax.datasets.synthetic_rooms import SyntheticRooms  # pylint: disable=unused-import


def prepare(data_config) -> tfds.core.DatasetBuilder:
  """Prepares (on first use) the dataset a config's ``data`` section reads; returns its builder.

  ``data.dataset`` in ``data.tfds_data_dir``, from ``data.manual_dir`` for the builders that
  need one; ``rgbd_folder``'s builder config is made from ``data.rgbd`` (a user's folder).
  """
  kwargs = ({'config': rgbd_folder.builder_config(data_config)}
            if data_config.dataset.split('/')[0] == rgbd_folder.NAME else {})
  return prepare_named(data_config.dataset, data_config.tfds_data_dir, data_config.manual_dir,
                       **kwargs)


def prepare_named(name: str, data_dir: str | None = None, manual_dir: str | None = None,
                  **builder_kwargs) -> tfds.core.DatasetBuilder:
  """Prepares dataset ``name`` ('name' or 'name/config') (on first use); returns its builder."""
  builder = tfds.builder(name, data_dir=data_dir, **builder_kwargs)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def _define_flags() -> None:
  """The command's flags; defined by ``run``, so that importing this module defines none."""
  flags.DEFINE_string('data_dir', None, 'TFDS data directory (default: TFDS).')
  flags.DEFINE_string('manual_dir', None,
                      'Folder with the manually downloaded data (NYU, KITTI, SUN RGB-D).')
  config_flags.DEFINE_config_file(
      'config', None, 'A training config: builds its config.data dataset (no names needed).',
      lock_config=True)


def main(argv):
  config, data_dir, manual_dir = flags.FLAGS.config, flags.FLAGS.data_dir, flags.FLAGS.manual_dir
  if config is not None:
    if len(argv) > 1 or data_dir or manual_dir:
      raise app.UsageError('--config names the dataset and its folders (config.data); give '
                           'no dataset names, --data_dir or --manual_dir with it')
    jobs = [(config.data.dataset, lambda: prepare(config.data))]
  elif len(argv) < 2:
    raise app.UsageError('name the dataset(s) to build, e.g. synthetic_rooms/default, or give '
                         '--config=<training config>')
  else:
    jobs = [(name, lambda name=name: prepare_named(name, data_dir, manual_dir))
            for name in argv[1:]]
  for name, make in jobs:
    start = time.perf_counter()
    builder = make()
    logging.info('%s: %s in %.1f s at %s', name, dict(builder.info.splits),
                 time.perf_counter() - start, builder.data_dir)


def run() -> None:
  """The console command: parses the flags and runs ``main``."""
  _define_flags()
  configs.run_command(main)


if __name__ == '__main__':
  run()
