"""nyu_depth_v2_h5 on a tiny fast-depth folder written by conftest.h5_folder."""

import re

import h5py
import numpy as np
import pytest
import tensorflow_datasets as tfds

from adabins_jax.datasets import build  # noqa: F401  (registers the builders)
from adabins_jax.datasets import nyu_depth_v2_h5


def _build(data_dir, manual_dir):
  builder = tfds.builder('nyu_depth_v2_h5', data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def test_builds_both_splits_with_exact_content(h5_folder, tmp_path):
  root, frames = h5_folder
  # The folder holding the extracted `nyudepthv2` works as the manual dir too.
  builder = _build(tmp_path / 'tfds', root.parent)
  assert builder.info.splits['train'].num_examples == 3
  assert builder.info.splits['test'].num_examples == 2
  for split, prefix in [('train', 'train/'), ('test', 'val/')]:
    for ex in tfds.as_numpy(builder.as_dataset(split)):
      name = ex['name'].decode()
      image, depth = frames[prefix + name]
      np.testing.assert_array_equal(ex['image'], image)  # PNG storage is lossless
      assert ex['depth'].dtype == np.float16
      np.testing.assert_array_equal(ex['depth'], depth.astype(np.float16))
      assert ex['focal'] == np.float32(518.8579)


def test_missing_split_folder_is_named(h5_folder, tmp_path):
  root, _ = h5_folder
  for f in (root / 'val').glob('*/*.h5'):
    f.unlink()
  (root / 'val' / 'office_0003').rmdir()
  (root / 'val').rmdir()
  with pytest.raises(FileNotFoundError, match=re.escape(str(root / 'val'))):
    _build(tmp_path / 'tfds', root)


def test_undecodable_file_is_named(h5_folder, tmp_path):
  root, _ = h5_folder
  bad = root / 'train' / 'kitchen_0002' / '1.h5'
  bad.write_bytes(b'not an hdf5 file')
  with pytest.raises(ValueError, match=re.escape(str(bad)) + '.*not a readable HDF5'):
    _build(tmp_path / 'tfds', root)


def test_wrong_size_is_named(tmp_path, write_h5):
  path = tmp_path / 'scene' / '7.h5'
  write_h5(path, seed=0, rgb_shape=(3, 240, 320))
  with pytest.raises(ValueError, match=re.escape(str(path)) + r'.*\(3, 480, 640\)'):
    nyu_depth_v2_h5.read_h5(path)


def test_missing_dataset_and_bad_depth_are_named(tmp_path):
  path = tmp_path / 'only_rgb.h5'
  with h5py.File(path, 'w') as f:
    f['rgb'] = np.zeros((3, 480, 640), np.uint8)
  with pytest.raises(ValueError, match=re.escape(str(path)) + r".*missing dataset\(s\) \['depth'\]"):
    nyu_depth_v2_h5.read_h5(path)
  path = tmp_path / 'nan_depth.h5'
  with h5py.File(path, 'w') as f:
    f['rgb'] = np.zeros((3, 480, 640), np.uint8)
    f['depth'] = np.full((480, 640), np.nan, np.float32)
  with pytest.raises(ValueError, match=re.escape(str(path)) + '.*non-finite'):
    nyu_depth_v2_h5.read_h5(path)
