"""`nyu_depth_v2_h5`: NYU Depth V2 from a local copy of the fast-depth HDF5 files.

The same data as TFDS's own `nyu_depth_v2`, read from a folder you already have instead of
downloaded (32 GB). Build with::

  python -m adabins_jax.datasets.build nyu_depth_v2_h5 --manual_dir=/data/nyudepthv2
"""

import os

import h5py
import numpy as np
import tensorflow_datasets as tfds

from adabins_jax.datasets import nyu
from adabins_jax.datasets import depth_builder



class NyuDepthV2H5(depth_builder.DepthBuilder):
  """NYU Depth V2 (fast-depth HDF5 layout) from a local folder."""

  name = 'nyu_depth_v2_h5'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download http://datasets.lids.mit.edu/fastdepth/data/nyudepthv2.tar.gz (the archive TFDS's
  `nyu_depth_v2` uses, 32 GB), extract it and pass the extracted `nyudepthv2` folder (or the
  folder holding it) as the manual dir. Expected layout:

    <manual_dir>/train/<scene>/<n>.h5   -> split 'train'
    <manual_dir>/val/<scene>/<n>.h5     -> split 'test'

  Each .h5 file holds `rgb` uint8 (3, 480, 640) and `depth` float32 (480, 640) in metres.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='NYU Depth V2 frames and depth maps from the fast-depth HDF5 files.',
        features=depth_builder.depth_features(*nyu.FRAME_HW, image_format='png'),
        supervised_keys=('image', 'depth'),
        homepage='https://cs.nyu.edu/~silberman/datasets/nyu_depth_v2.html',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = dl_manager.manual_dir
    if not (root / 'train').exists() and (root / 'nyudepthv2').exists():
      root = root / 'nyudepthv2'  # the folder the archive extracts to
    return {
        'train': self._generate_examples(_split_dir(root, 'train')),
        'test': self._generate_examples(_split_dir(root, 'val')),
    }

  def _generate_examples(self, folder):
    for path in _h5_files(folder):
      scene, stem = path.parent.name, path.stem
      image, depth = read_h5(path)
      yield f'{scene}/{stem}', {
          'image': image,
          'depth': depth,
          'focal': nyu.FOCAL_PX,
          'name': f'{scene}/{path.name}',
      }


def _split_dir(root, name):
  folder = root / name
  if not folder.is_dir():
    raise FileNotFoundError(
        f'{folder}: missing. nyu_depth_v2_h5 expects <manual_dir>/train/<scene>/<n>.h5 and '
        f'<manual_dir>/val/<scene>/<n>.h5 (see MANUAL_DOWNLOAD_INSTRUCTIONS).')
  return folder


def _h5_files(folder):
  """All `<scene>/<n>.h5` files under `folder`, scenes and frames in numeric-aware order."""
  natural = lambda p: (p.parent.name, int(p.stem) if p.stem.isdigit() else -1, p.stem)
  paths = sorted((p for p in folder.glob('*/*.h5')), key=natural)
  if not paths:
    raise FileNotFoundError(f'{folder}: no <scene>/<n>.h5 files found')
  return paths


def read_h5(path) -> tuple[np.ndarray, np.ndarray]:
  """Reads one fast-depth frame.

  Args:
    path: an .h5 file with `rgb` uint8 (3, 480, 640) and `depth` float32 (480, 640) metres.

  Returns:
    The image, uint8 (480, 640, 3), and the depth, float16 (480, 640).

  Raises:
    ValueError: naming the file when it cannot be read or its arrays are not as above.
  """
  try:
    with h5py.File(os.fspath(path), 'r') as f:
      missing = {'rgb', 'depth'} - set(f.keys())
      if missing:
        raise ValueError(f'{path}: missing dataset(s) {sorted(missing)}; has {sorted(f.keys())}')
      rgb, depth = np.asarray(f['rgb']), np.asarray(f['depth'])
  except OSError as e:
    raise ValueError(f'{path}: not a readable HDF5 file ({e})') from e
  if rgb.shape != (3, *nyu.FRAME_HW):
    raise ValueError(f'{path}: expected rgb of shape {(3, *nyu.FRAME_HW)}, got {rgb.shape}')
  image = np.ascontiguousarray(np.transpose(rgb, (1, 2, 0)))
  depth_builder.check_image(image, nyu.FRAME_HW, path)
  return image, depth_builder.depth_to_float16(depth, nyu.FRAME_HW, path)
