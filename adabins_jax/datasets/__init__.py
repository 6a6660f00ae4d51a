"""TFDS builders the project ships; importing this package registers them with TFDS.

  kitti_eigen       KITTI's Eigen split in the BTS/AdaBins layout, KB-cropped
  nyu_depth_v2_h5   NYU Depth V2 from a local copy of the fast-depth .h5 files
  nyu_depth_v2_bts  NYU Depth V2 in the BTS/AdaBins layout (sync train, official test)
  synthetic_rooms   procedurally rendered rooms with exact depth (no download)
  rgbd_folder       a user's own RGB-D frames from a folder (built from config.data.rgbd)
"""

import tensorflow_datasets as tfds

from adabins_jax.datasets import rgbd_folder
from adabins_jax.datasets.kitti_eigen import KittiEigen
from adabins_jax.datasets.nyu_depth_v2_bts import NyuDepthV2Bts
from adabins_jax.datasets.nyu_depth_v2_h5 import NyuDepthV2H5
from adabins_jax.datasets.rgbd_folder import RgbdFolder
from adabins_jax.datasets.synthetic_rooms import SyntheticRooms
from adabins_jax.datasets.synthetic_rooms import SyntheticRoomsConfig

__all__ = ['KittiEigen', 'NyuDepthV2Bts', 'NyuDepthV2H5', 'RgbdFolder', 'SyntheticRooms',
           'SyntheticRoomsConfig', 'prepare', 'prepare_named']


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
