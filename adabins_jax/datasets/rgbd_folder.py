"""`rgbd_folder`: a user's own RGB-D frames, read from a folder into a TFDS dataset.

Two layouts, both under `config.data.rgbd.folder` (docs/data.md, "Your own RGB-D frames"):

  lists:    `data.rgbd.train_list` and `data.rgbd.test_list`, lines `rgb_path depth_path [focal]`
            with paths relative to the list's own folder, or absolute;
  folders:  `train/rgb/`, `train/depth/`, `test/rgb/`, `test/depth/` with matching file stems.

Images are any 8-bit colour or grey PNG or JPEG. Depth is a 16-bit PNG, an `.npy`, a TIFF or an
OpenEXR file: integer values are divided by `data.rgbd.depth_scale` (1000 for millimetres, 256
for KITTI-style PNGs), float values are metres. `data.rgbd.invalid_depth` (as stored, before
scaling) and non-finite floats become 0, the project's "no depth". Every frame must have
`data.frame_size` pixels. `input_pipeline.get_builder` builds the dataset on first use from
`builder_config(config.data)`, whose name carries a hash of every setting and of the frames'
file names, so a changed folder, list, scale or size prepares a new copy instead of reusing one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from typing import NamedTuple

from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from adabins_jax import datasets
from adabins_jax.datasets import depth_builder

NAME = datasets.RGBD_FOLDER
SPLITS = ('train', 'test')
IMAGE_SUFFIXES = ('.png', '.jpg', '.jpeg')
DEPTH_SUFFIXES = ('.png', '.npy', '.tif', '.tiff', '.exr')
# Image modes that hold 8-bit colour or grey (converted to RGB).
_IMAGE_MODES = ('RGB', 'RGBA', 'L', 'LA', 'P')
# Part of the cache key: bump when the same files would be read into different examples.
_FORMAT = 1


@dataclasses.dataclass
class RgbdFolderConfig(tfds.core.BuilderConfig):
  """Where the frames are and how their depth is stored; see `builder_config`."""
  folder: str = ''
  # Absolute (train, test) list files, or () for the rgb/ + depth/ folders layout.
  lists: tuple[str, ...] = ()
  frame_hw: tuple[int, int] = (480, 640)
  depth_scale: float = 1000.0
  invalid_depth: float | None = 0.0
  focal_px: float = 0.0


class Frame(NamedTuple):
  """One example's files, focal length in pixels and name."""
  rgb: epath.Path
  depth: epath.Path
  focal: float
  name: str


class RgbdFolder(depth_builder.DepthBuilder):
  """A user's RGB-D frames from a local folder; the config comes from `builder_config`."""

  name = NAME
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}

  def _info(self) -> tfds.core.DatasetInfo:
    if not isinstance(self.builder_config, RgbdFolderConfig):
      raise ValueError(f'{NAME} is built from config.data.rgbd (set data.dataset={NAME!r} and '
                       'data.rgbd.folder, see docs/data.md), not by name alone')
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.splitlines()[0],
        features=depth_builder.depth_features(*self.builder_config.frame_hw, image_format='png'),
        supervised_keys=('image', 'depth'),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # The frames are local; builder_config says where.
    return {split: self._generate_examples(split) for split in SPLITS}

  def _generate_examples(self, split: str):
    config = self.builder_config
    for index, frame in enumerate(split_frames(config, split)):
      yield f'{index:06d}', {
          'image': read_image(frame.rgb, config.frame_hw),
          'depth': read_depth(frame.depth, config),
          'focal': frame.focal,
          'name': frame.name,
      }


def _absolute(path: str, base: str) -> str:
  path = os.path.expanduser(path)
  return os.path.normpath(path if os.path.isabs(path) else os.path.join(base, path))


def builder_config(data_config) -> RgbdFolderConfig:
  """The builder config `config.data` asks for, named by a hash of its settings and frames.

  Relative paths are taken from the working directory (the folder) and from the folder (the
  lists). The hash covers the absolute paths, `frame_size`, the depth settings and the frames'
  file names (the lists' text, or the folders' listings), so any change to them prepares a new
  dataset; a frame edited in place under the same name is not noticed.

  Raises:
    ValueError: data.rgbd.folder is unset.
    FileNotFoundError: the folder, a list or a layout folder is missing.
  """
  rgbd = data_config.rgbd
  if not rgbd.folder:
    raise ValueError(f'data.dataset={NAME!r} needs data.rgbd.folder (see docs/data.md)')
  folder = _absolute(rgbd.folder, os.getcwd())
  if not os.path.isdir(folder):
    raise FileNotFoundError(f'{folder}: data.rgbd.folder={rgbd.folder!r} is not a folder')
  lists = tuple(_absolute(p, folder) for p in (rgbd.train_list, rgbd.test_list) if p)
  config = RgbdFolderConfig(
      name='pending', folder=folder, lists=lists,
      frame_hw=tuple(int(s) for s in data_config.frame_size),
      depth_scale=float(rgbd.depth_scale),
      invalid_depth=None if rgbd.invalid_depth is None else float(rgbd.invalid_depth),
      focal_px=float(rgbd.focal_px))
  settings = {'folder': folder, 'lists': lists, 'frame_hw': config.frame_hw,
              'depth_scale': config.depth_scale, 'invalid_depth': config.invalid_depth,
              'focal_px': config.focal_px}
  digest = hashlib.sha256(json.dumps([_FORMAT, settings]).encode())
  for split in SPLITS:
    digest.update(_listing(config, split))
  slug = re.sub(r'[^a-z0-9]+', '_', os.path.basename(folder).lower()).strip('_') or 'frames'
  return dataclasses.replace(
      config, name=f'{slug[:40]}_{digest.hexdigest()[:12]}',
      description=f'{NAME} of {folder}: {json.dumps(settings)}')


def _listing(config: RgbdFolderConfig, split: str) -> bytes:
  """What names a split's frames: its list's text, or its folders' sorted file names."""
  if config.lists:
    return _existing(epath.Path(config.lists[SPLITS.index(split)]), 'list').read_bytes()
  names = [sorted(os.listdir(_layout_folder(config, split, kind))) for kind in ('rgb', 'depth')]
  return json.dumps(names).encode()


def _existing(path: epath.Path, what: str) -> epath.Path:
  if not path.exists():
    raise FileNotFoundError(f'{path}: {what} missing')
  return path


def _layout_folder(config: RgbdFolderConfig, split: str, kind: str) -> epath.Path:
  path = epath.Path(config.folder) / split / kind
  if not path.is_dir():
    raise FileNotFoundError(
        f'{path}: folder missing; data.rgbd.folder needs {split}/rgb/ and {split}/depth/ with '
        'matching file names, unless data.rgbd.train_list and test_list name list files')
  return path


def split_frames(config: RgbdFolderConfig, split: str) -> list[Frame]:
  """The frames of `split` ('train' or 'test'), in list or file-name order."""
  if config.lists:
    return read_file_list(epath.Path(config.lists[SPLITS.index(split)]), config.focal_px)
  return _paired_files(config, split)


def read_file_list(path: epath.Path, default_focal: float) -> list[Frame]:
  """Reads a list of `rgb_path depth_path [focal]` lines into frames.

  `depth_builder.read_file_list` parses the lines (blank and '#' lines are skipped); relative
  paths are then taken from the list's folder, and every file must exist.

  Raises:
    FileNotFoundError: the list, or a file it names, is missing.
    ValueError: naming the list and line, for a line of the wrong form, a focal length that is
      not a positive number, or an image listed twice; or the list names no frame.
  """
  entries = depth_builder.read_file_list(_existing(path, 'list'), default_focal=default_focal,
                                         keep_absolute=True, line_numbers=True)
  frames, first_line = [], {}
  for number, rgb_name, depth_name, focal in entries:
    rgb, depth = (epath.Path(_absolute(f, str(path.parent))) for f in (rgb_name, depth_name))
    # A frame listed twice weighs double in training, or counts twice in the test metrics.
    if os.fspath(rgb) in first_line:
      raise ValueError(f'{path}:{number}: {rgb_name} is listed again (first at line '
                       f'{first_line[os.fspath(rgb)]})')
    first_line[os.fspath(rgb)] = number
    for file in (rgb, depth):
      if not file.exists():
        raise FileNotFoundError(f'{file}: listed in {path}:{number} but missing')
    frames.append(Frame(rgb, depth, focal, rgb_name))
  return frames


def _by_stem(folder: epath.Path, suffixes: tuple[str, ...]) -> dict[str, epath.Path]:
  files = {}
  for path in sorted(folder.iterdir()):
    if path.name.startswith('.'):
      continue
    if path.suffix.lower() not in suffixes:
      raise ValueError(f'{path}: not one of the accepted kinds {suffixes}')
    if path.stem in files:
      raise ValueError(f'{path} and {files[path.stem]}: two files for frame {path.stem!r}')
    files[path.stem] = path
  return files


def _paired_files(config: RgbdFolderConfig, split: str) -> list[Frame]:
  """rgb/<stem>.* with depth/<stem>.*: every stem must be in both folders."""
  rgb_folder = _layout_folder(config, split, 'rgb')
  depth_folder = _layout_folder(config, split, 'depth')
  images = _by_stem(rgb_folder, IMAGE_SUFFIXES)
  depths = _by_stem(depth_folder, DEPTH_SUFFIXES)
  for stem in sorted(images.keys() ^ depths.keys()):
    have, lack = ((images, depth_folder) if stem in images else (depths, rgb_folder))
    raise FileNotFoundError(f'{have[stem]}: no file named {stem}.* in {lack}')
  if not images:
    raise ValueError(f'{rgb_folder}: no frame in the folder')
  return [Frame(images[s], depths[s], config.focal_px, f'{split}/{images[s].name}')
          for s in sorted(images)]


def _check_size(path, shape: tuple[int, ...], frame_hw: tuple[int, int]) -> None:
  if tuple(shape[:2]) != tuple(frame_hw):
    raise ValueError(f'{path}: {shape[0]}x{shape[1]} pixels, but data.frame_size is '
                     f'{frame_hw[0]}x{frame_hw[1]} (every frame must have that size)')


def read_image(path: epath.Path, frame_hw: tuple[int, int]) -> np.ndarray:
  """An 8-bit colour or grey image as uint8 RGB (H, W, 3) of `frame_hw` pixels."""
  image, _ = depth_builder.open_image(path)
  if image.mode not in _IMAGE_MODES:
    raise ValueError(f'{path}: expected an 8-bit colour or grey image, got mode {image.mode}')
  _check_size(path, (image.height, image.width), frame_hw)
  return np.asarray(image.convert('RGB'))


def _read_exr(path: epath.Path) -> np.ndarray:
  """The depth channel of an OpenEXR file: Z, Y, R or the only one."""
  try:
    import OpenEXR  # pylint: disable=g-import-not-at-top
    OpenEXR.File  # pylint: disable=pointless-statement  (3.3's reader)
  except (ImportError, AttributeError):
    raise ValueError(f'{path}: no installed library reads OpenEXR files; `pip install OpenEXR` '
                     '(3.3 or later), or store depth as a float32 TIFF or .npy') from None
  try:
    with OpenEXR.File(str(path)) as exr:
      channels = {name: np.asarray(c.pixels) for name, c in exr.channels().items()}
  except Exception as e:  # OpenEXR raises several types for bad files
    raise ValueError(f'{path}: cannot be read as OpenEXR ({e})') from e
  for name in ('Z', 'Y', 'R', 'depth'):
    if name in channels:
      return channels[name]
  if len(channels) == 1:
    return next(iter(channels.values()))
  raise ValueError(f'{path}: no depth channel (Z, Y, R, depth) among {sorted(channels)}')


def _depth_array(path: epath.Path) -> np.ndarray:
  suffix = path.suffix.lower()
  if suffix == '.npy':
    try:
      return np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises several types for bad files
      raise ValueError(f'{path}: cannot be read as a .npy array ({e})') from e
  if suffix == '.exr':
    return _read_exr(path)
  image, _ = depth_builder.open_image(path)
  if image.mode in ('1', 'L', 'P', 'LA', 'RGB', 'RGBA'):  # 8-bit: a picture of depth, not depth.
    raise ValueError(f'{path}: expected 16-bit integer or float depth, got an 8-bit image '
                     f'(mode {image.mode})')
  return np.asarray(image)


def read_depth(path: epath.Path, config: RgbdFolderConfig) -> np.ndarray:
  """A depth file as float16 metres of `config.frame_hw`, 0 where invalid.

  Integer values are divided by `depth_scale`; float values are metres. Stored values equal to
  `invalid_depth`, and NaN or infinite ones, become 0.
  """
  raw = _depth_array(path)
  if raw.ndim == 3 and raw.shape[-1] == 1:
    raw = raw[..., 0]
  if raw.ndim != 2 or not (np.issubdtype(raw.dtype, np.integer)
                           or np.issubdtype(raw.dtype, np.floating)):
    raise ValueError(f'{path}: expected one depth value per pixel, (height, width), got '
                     f'{raw.dtype} {raw.shape}')
  _check_size(path, raw.shape, config.frame_hw)
  invalid = ~np.isfinite(raw) if np.issubdtype(raw.dtype, np.floating) else np.zeros(raw.shape,
                                                                                     bool)
  if config.invalid_depth is not None:
    invalid |= raw == config.invalid_depth
  if np.issubdtype(raw.dtype, np.floating):
    metres = raw.astype(np.float32)
  else:
    metres = (raw / config.depth_scale).astype(np.float32)
  metres[invalid] = 0.0
  return depth_builder.depth_to_float16(metres, tuple(config.frame_hw), path)

