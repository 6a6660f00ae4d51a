"""A tiny KITTI Eigen-split folder in the BTS / AdaBins layout, written on the fly.

Frames of two of KITTI's sizes, sparse depth (most pixels 0, some beyond 80 m), a test-list line
whose ground truth is 'None' and one whose depth PNG is missing, and one drive's depth under
data_depth_annotated/train/ as the archive unpacks it.
"""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
from PIL import Image

TRAIN_LIST = 'kitti_eigen_train_files_with_gt.txt'
TEST_LIST = 'kitti_eigen_test_files_with_gt.txt'
FOCAL = 721.5377


@dataclasses.dataclass
class Frame:
  rgb: str
  depth: str
  image: np.ndarray  # uint8 (H, W, 3), the original frame
  depth_png: np.ndarray  # uint16 (H, W), metres x 256


@dataclasses.dataclass
class KittiFolder:
  root: pathlib.Path
  train: list[Frame]
  test: list[Frame]  # The test frames with ground truth, in list order.


def frame(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
  """A smooth image and sparse uint16 depth (metres x 256): about 5% of pixels measured."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:height, :width] / width
  image = 127 + 120 * np.sin(9 * xx[..., None] + 5 * yy[..., None] + rng.uniform(0, 6, 3))
  depth_m = 2.0 + 90.0 * xx * (1.0 - yy)  # Some of it beyond 80 m.
  measured = rng.uniform(size=(height, width)) < 0.05
  depth_png = np.where(measured, np.round(depth_m * 256), 0).astype(np.uint16)
  return image.astype(np.uint8), depth_png


def _write(root: pathlib.Path, date: str, drive: int, index: int, size, seed: int,
           depth_subfolder: str = '') -> Frame:
  name = f'{date}_drive_{drive:04d}_sync'
  rgb = f'{date}/{name}/image_02/data/{index:010d}.png'
  depth = f'{name}/proj_depth/groundtruth/image_02/{index:010d}.png'
  image, depth_png = frame(seed, *size)
  for path, array in ((root / 'raw' / rgb, image),
                      (root / 'data_depth_annotated' / depth_subfolder / depth, depth_png)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
  return Frame(rgb, depth, image, depth_png)


def write_kitti_folder(root: pathlib.Path) -> KittiFolder:
  """Train: three frames (375x1242 and 370x1224); test: two with ground truth, one 'None' and
  one whose depth PNG is missing."""
  train = [_write(root, '2011_09_26', 1, 5, (375, 1242), seed=0),
           _write(root, '2011_09_26', 1, 6, (375, 1242), seed=1),
           _write(root, '2011_09_30', 18, 7, (370, 1224), seed=2, depth_subfolder='train')]
  test = [_write(root, '2011_09_26', 2, 69, (375, 1242), seed=3),
          _write(root, '2011_09_30', 16, 12, (370, 1224), seed=4)]
  missing = 'raw/2011_09_26/2011_09_26_drive_0009_sync/image_02/data/0000000386.png'
  (root / missing).parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(frame(5, 375, 1242)[0]).save(root / missing)
  lines = [f'{f.rgb} {f.depth} {FOCAL}' for f in test]
  lines.insert(1, f'{missing[4:]} None {FOCAL}')
  lines.append(f'{missing[4:]} 2011_09_26_drive_0009_sync/proj_depth/groundtruth/image_02/'
               f'0000000386.png {FOCAL}')
  (root / TRAIN_LIST).write_text(''.join(f'{f.rgb} {f.depth} {FOCAL}\n' for f in train))
  (root / TEST_LIST).write_text('\n'.join(lines) + '\n')
  return KittiFolder(root, train, test)
