"""`sun_rgbd`: SUN RGB-D's test frames, for scoring NYU models zero-shot on four other sensors.

SUN RGB-D (Song et al., CVPR 2015) holds indoor frames of four sensors (Kinect v1 and v2,
RealSense, Xtion) of different sizes and focal lengths. Only the official test split is built:
the models shipped here train on NYU and are evaluated on it without fine-tuning
(configs/sun_rgbd_effnet_b5_256.py). Build with::

  python -m adabins_jax.datasets.build sun_rgbd --manual_dir=/data/sunrgbd

Frames share one size, so that the evaluation batches them: each is centre-cropped to the
frame's 3:4 aspect ratio (a crop keeps the focal length in pixels) and resized to 480x640
(which scales it), image bilinear with antialiasing, depth nearest-neighbour (no blending
across depth edges). ``focal`` is the resized frame's fx, for the camera transform
(``eval.camera_transform``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from adabins_jax.datasets import depth_builder
from adabins_jax.datasets import nyu

TEST_LIST = 'sunrgbd_test_frames.txt'
# The release's folder, under the manual folder; the toolbox's split lists name frames by
# absolute paths that run through it.
ROOT = 'SUNRGBD'
# Depth PNGs hold millimetres with their bits rotated by 3 (the SUN RGB-D toolbox's
# read3dPoints / SUN3D's depthRead: bitor(bitshift(d, -3), bitshift(d, 16 - 3)) / 1000).
_DEPTH_SCALE = 1000.0
# Folders of depth maps, best first: 'depth_bfx' is the release's refined (hole-filled) depth.
DEPTH_FOLDERS = ('depth_bfx', 'depth')


def decode_depth(png: np.ndarray) -> np.ndarray:
  """Metres from a SUN RGB-D depth PNG's uint16 values (0 stays 0, invalid)."""
  raw = np.asarray(png).astype(np.uint16)
  return ((raw >> 3) | (raw << 13)).astype(np.float32) / _DEPTH_SCALE


def read_intrinsics(path) -> tuple[float, float, float, float]:
  """(fx, fy, cx, cy) from a frame's intrinsics.txt: the 3x3 matrix K, row-major."""
  values = [float(v) for v in path.read_text().split()]
  if len(values) != 9 or not (values[0] > 0 and values[4] > 0):
    raise ValueError(f'{path}: expected a 3x3 camera matrix with positive focal lengths, got '
                     f'{values}')
  return values[0], values[4], values[2], values[5]


def frame_folder(line: str) -> str:
  """A split list's entry as a folder under ``ROOT``: the toolbox's absolute paths are cut."""
  path = line.strip().rstrip('/')
  marker = f'{ROOT}/'
  return path[path.index(marker) + len(marker):] if marker in path else path.lstrip('/')


def _only_file(folder, suffix: str):
  found = sorted(folder.glob(f'*{suffix}')) if folder.is_dir() else []
  if not found:
    raise FileNotFoundError(f'{folder}: no *{suffix} file; see the sun_rgbd '
                            'MANUAL_DOWNLOAD_INSTRUCTIONS for the expected layout')
  return found[0]


def _crop_box(width: int, height: int) -> tuple[int, int, int, int]:
  """The centred (left, top, right, bottom) box of the frame's 3:4 aspect ratio."""
  frame_h, frame_w = nyu.FRAME_HW
  if width * frame_h > height * frame_w:
    w = round(height * frame_w / frame_h)
    return (width - w) // 2, 0, (width - w) // 2 + w, height
  h = round(width * frame_h / frame_w)
  return 0, (height - h) // 2, width, (height - h) // 2 + h


def read_frame(folder) -> tuple[np.ndarray, np.ndarray, float]:
  """(uint8 image, metres depth, fx) of one frame folder, cropped and resized to 480x640."""
  image, _ = depth_builder.open_image(_only_file(folder / 'image', '.jpg'))
  depth_dir = next((folder / d for d in DEPTH_FOLDERS if (folder / d).is_dir()), None)
  if depth_dir is None:
    raise FileNotFoundError(f'{folder}: no {" or ".join(DEPTH_FOLDERS)} folder')
  depth_png, _ = depth_builder.open_image(_only_file(depth_dir, '.png'))
  if depth_png.size != image.size:
    raise ValueError(f'{depth_dir}: depth of {depth_png.size} for an image of {image.size}')
  fx = read_intrinsics(folder / 'intrinsics.txt')[0]
  box = _crop_box(*image.size)
  size = nyu.FRAME_HW[::-1]
  rgb = np.asarray(image.convert('RGB').crop(box).resize(size, Image.BILINEAR, reducing_gap=None))
  metres = Image.fromarray(decode_depth(np.asarray(depth_png)).astype(np.float32), mode='F')
  depth = np.asarray(metres.crop(box).resize(size, Image.NEAREST))
  return rgb, depth, fx * size[0] / (box[2] - box[0])


class SunRgbd(depth_builder.DepthBuilder):
  """SUN RGB-D's official test split, from a local copy of the release."""

  name = 'sun_rgbd'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Download SUNRGBD.zip from https://rgbd.cs.princeton.edu/ and unpack it, and write the
  official test split (the toolbox's SUNRGBDtoolbox/traintestSUNRGBD/allsplit.mat, `alltest`)
  as a text file of frame folders, one per line. Expected layout:

    <manual_dir>/{TEST_LIST}
    <manual_dir>/{ROOT}/<sensor>/.../<frame>/image/<name>.jpg
    <manual_dir>/{ROOT}/<sensor>/.../<frame>/depth_bfx/<name>.png   (or depth/<name>.png)
    <manual_dir>/{ROOT}/<sensor>/.../<frame>/intrinsics.txt

  A list line is a frame folder relative to {ROOT}/ (e.g. "kv2/kinect2data/000002_..."), or
  the toolbox's absolute path through "{ROOT}/", which is cut there.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description="SUN RGB-D's official test split, cropped to 3:4 and resized to 480x640.",
        features=depth_builder.depth_features(*nyu.FRAME_HW, image_format='png'),
        supervised_keys=('image', 'depth'),
        homepage='https://rgbd.cs.princeton.edu/',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = dl_manager.manual_dir
    return {'test': self._generate_examples(root / TEST_LIST, root / ROOT)}

  def _generate_examples(self, list_path, data_root):
    if not list_path.exists():
      raise FileNotFoundError(f'{list_path}: test split list missing; see the sun_rgbd '
                              'MANUAL_DOWNLOAD_INSTRUCTIONS')
    lines = [line for line in list_path.read_text().splitlines()
             if line.strip() and not line.startswith('#')]
    if not lines:
      raise ValueError(f'{list_path}: the split list names no frame')
    for number, line in enumerate(lines, start=1):
      name = frame_folder(line)
      rgb, depth, fx = read_frame(data_root / name)
      yield f'{number:06d}:{name}', {
          'image': rgb,
          'depth': depth_builder.depth_to_float16(depth, nyu.FRAME_HW, data_root / name),
          'focal': fx,
          'name': name,
      }
