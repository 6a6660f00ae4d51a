"""Tiny NYU folders in both layouts, written on the fly (the real data is not needed)."""

import h5py
import numpy as np
from PIL import Image
import pytest


def nyu_frame(seed, height=480, width=640):
  """A smooth random image (compresses like a photo) and a depth map in metres."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:height, :width] / max(height, width)
  phase = rng.uniform(0, 6, size=3)
  image = 127 + 120 * np.sin(6 * xx[..., None] + 4 * yy[..., None] + phase)
  depth = 1.0 + 8.0 * xx + rng.uniform(0, 0.5)
  depth[:5, :5] = 0.0  # invalid pixels
  return image.astype(np.uint8), depth.astype(np.float32)


def _write_h5(path, seed, rgb_shape=(3, 480, 640)):
  image, depth = nyu_frame(seed, *rgb_shape[1:])
  path.parent.mkdir(parents=True, exist_ok=True)
  with h5py.File(path, 'w') as f:
    f['rgb'] = np.transpose(image, (2, 0, 1))
    f['depth'] = depth
  return image, depth


@pytest.fixture
def write_h5():
  """`write_h5(path, seed, rgb_shape)` writes one fast-depth .h5 frame."""
  return _write_h5


@pytest.fixture
def write_bts_pair():
  """`write_bts_pair(root, rgb_rel, depth_rel, seed, size)` writes one BTS frame pair."""
  return _write_bts_pair


@pytest.fixture
def h5_folder(tmp_path):
  """fast-depth layout: train 3 frames in 2 scenes, val 2 frames; returns (root, frames)."""
  root = tmp_path / 'nyudepthv2'
  frames = {}
  for i, rel in enumerate(['train/bedroom_0001/1.h5', 'train/bedroom_0001/2.h5',
                           'train/kitchen_0002/1.h5', 'val/office_0003/1.h5',
                           'val/office_0003/2.h5']):
    frames[rel] = _write_h5(root / rel, seed=i)
  return root, frames


def _write_bts_pair(root, rgb_rel, depth_rel, seed, size=(480, 640)):
  """One JPEG frame and its uint16 millimetre depth PNG; returns (jpeg bytes, depth mm)."""
  image, depth = nyu_frame(seed, *size)
  rgb_path, depth_path = root / rgb_rel.lstrip('/'), root / depth_rel.lstrip('/')
  rgb_path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(image).save(rgb_path, format='JPEG', quality=90)
  depth_mm = np.round(depth * 1000).astype(np.uint16)
  Image.fromarray(depth_mm).save(depth_path)
  return rgb_path.read_bytes(), depth_mm


@pytest.fixture
def bts_folder(tmp_path):
  """BTS layout with 3 training and 2 test frames; returns (root, {rgb path: depth mm})."""
  root = tmp_path / 'nyu'
  depths = {}
  train_lines, test_lines = [], []
  for i, scene in enumerate(['kitchen_0028b', 'kitchen_0028b', 'bedroom_0004']):
    rgb, dep = f'/{scene}/rgb_{i:05d}.jpg', f'/{scene}/sync_depth_{i:05d}.png'
    depths[rgb.lstrip('/')] = _write_bts_pair(root / 'sync', rgb, dep, seed=i)[1]
    train_lines.append(f'{rgb} {dep} 518.8579')
  for i, scene in enumerate(['kitchen', 'bathroom']):
    rgb, dep = f'{scene}/rgb_{i:05d}.jpg', f'{scene}/sync_depth_{i:05d}.png'
    depths[rgb] = _write_bts_pair(root / 'official_splits' / 'test', rgb, dep, seed=10 + i)[1]
    test_lines.append(f'{rgb} {dep} 518.8579')
  (root / 'nyudepthv2_train_files_with_gt.txt').write_text('\n'.join(train_lines) + '\n')
  (root / 'nyudepthv2_test_files_with_gt.txt').write_text('\n'.join(test_lines) + '\n')
  return root, depths
