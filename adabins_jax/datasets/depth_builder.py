"""The base of the project's TFDS builders, the features they yield and the checks that guard
them.

The features match TFDS's own `nyu_depth_v2` (`image` uint8 (H, W, 3), `depth` float16 (H, W) in
metres, 0 = invalid) plus the focal length in pixels and a readable example name, so the input
pipeline reads every dataset the same way.
"""

from collections.abc import Mapping
import inspect
import io
import math

from etils import epath
import numpy as np
from PIL import Image
import tensorflow_datasets as tfds


def depth_features(height: int, width: int, image_format: str = 'png',
                   extra: Mapping[str, tfds.features.FeatureConnector] | None = None):
  """Features of a depth example at a fixed size.

  Args:
    height: image and depth rows.
    width: image and depth columns.
    image_format: 'png' (images given as arrays are encoded losslessly) or 'jpeg' (JPEG files
      are stored as they are, without re-encoding).
    extra: further features of one dataset (e.g. kitti_eigen's 'source_frame'), beside the
      common four.

  Returns:
    A `tfds.features.FeaturesDict`.
  """
  features = {
      'image': tfds.features.Image(shape=(height, width, 3), encoding_format=image_format),
      'depth': tfds.features.Tensor(shape=(height, width), dtype=np.float16),
      'focal': tfds.features.Scalar(dtype=np.float32, doc='Focal length in pixels.'),
      'name': tfds.features.Text(doc='Where the example comes from.'),
  }
  clash = sorted(set(features) & set(extra or {}))
  if clash:
    raise ValueError(f'extra features {clash} would replace common ones')
  return tfds.features.FeaturesDict({**features, **(extra or {})})


def read_file_list(path, *, default_focal: float | None = None, keep_absolute: bool = False,
                   line_numbers: bool = False) -> list[tuple]:
  """Parses a file list of "<rgb path> <depth path> <focal>" lines into (rgb, depth, focal).

  This is the one parser of the BTS / AdaBins lists (nyu_depth_v2_bts, kitti_eigen) and of a
  user's own lists (rgbd_folder). Blank lines and lines starting with '#' are skipped. KITTI's
  lists write 'None' as the depth path of frames without ground truth; it is returned as it is.

  Args:
    path: the list file.
    default_focal: None if every line must give its focal; otherwise the focal of lines with
      only "<rgb path> <depth path>".
    keep_absolute: return paths as written; by default a leading '/' is dropped, making every
      path relative to the dataset's root.
    line_numbers: prefix each entry with its line number in the file (1-based), so that a
      caller's own checks can name the line.

  Returns:
    (rgb path, depth path, focal) per frame, or (line number, rgb path, depth path, focal) with
    `line_numbers`, in file order.

  Raises:
    FileNotFoundError: the list is missing.
    ValueError: naming the file and line, for a line of the wrong form or a focal length that
      is not a positive finite number; or the list names no frame.
  """
  path = epath.Path(path)
  if not path.exists():
    raise FileNotFoundError(f'{path}: file list missing; see MANUAL_DOWNLOAD_INSTRUCTIONS')
  sizes = (3,) if default_focal is None else (2, 3)
  form = 'rgb_path depth_path focal' if default_focal is None else 'rgb_path depth_path [focal]'
  entries = []
  for number, line in enumerate(path.read_text().splitlines(), start=1):
    fields = line.split()
    if not fields or fields[0].startswith('#'):
      continue
    try:
      if len(fields) not in sizes:
        raise ValueError
      focal = float(fields[2]) if len(fields) == 3 else default_focal
    except ValueError:
      raise ValueError(f'{path}:{number}: expected "{form}", got {len(fields)} fields: '
                       f'{line!r}') from None
    # float() takes 'nan', 'inf' and negatives, which would scale every depth into nonsense.
    if len(fields) == 3 and not (math.isfinite(focal) and focal > 0):
      raise ValueError(f'{path}:{number}: the focal length {fields[2]!r} must be a positive '
                       'number of pixels')
    rgb, depth = fields[:2] if keep_absolute else (f.lstrip('/') for f in fields[:2])
    entries.append((number, rgb, depth, focal) if line_numbers else (rgb, depth, focal))
  if not entries:
    raise ValueError(f'{path}: the file list names no frame')
  return entries


def check_image(image: np.ndarray, shape: tuple[int, int], source) -> None:
  """Raises ValueError naming `source` unless `image` is uint8 of `shape` + (3,)."""
  if image.dtype != np.uint8 or image.shape != (*shape, 3):
    raise ValueError(f'{source}: expected a uint8 RGB image of shape {(*shape, 3)}, got '
                     f'{image.dtype} {image.shape}')


def open_image(path) -> tuple[Image.Image, bytes]:
  """Decodes an image file fully, so that a missing or corrupt file fails here with its name.

  Returns:
    The decoded PIL image and the file's bytes.

  Raises:
    FileNotFoundError: the file is missing.
    ValueError: the file does not decode as an image.
  """
  path = epath.Path(path)
  if not path.exists():
    raise FileNotFoundError(f'{path}: missing')
  data = path.read_bytes()
  try:
    image = Image.open(io.BytesIO(data))
    image.load()
  except Exception as e:  # PIL raises several types for corrupt files
    raise ValueError(f'{path}: cannot be decoded as an image ({e})') from e
  return image, data


def depth_to_float16(depth: np.ndarray, shape: tuple[int, int], source) -> np.ndarray:
  """Checks a depth map in metres and returns it as float16.

  Args:
    depth: (H, W) depth in metres, 0 where invalid.
    shape: the expected (H, W).
    source: names the file in error messages.

  Returns:
    The depth as float16.

  Raises:
    ValueError: the shape differs, or a value is negative, non-finite or beyond float16.
  """
  if depth.shape != shape:
    raise ValueError(f'{source}: expected a depth map of shape {shape}, got {depth.shape}')
  depth = np.asarray(depth, np.float32)
  bad = ~np.isfinite(depth) | (depth < 0) | (depth > np.finfo(np.float16).max)
  if bad.any():
    raise ValueError(f'{source}: {int(bad.sum())} depth values are negative, non-finite or '
                     f'too large for float16 (first: {depth[bad][0]})')
  return depth.astype(np.float16)


class DepthBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
  """Base of the project's builders.

  TFDS 4.9.10 finds a builder's source file through `importlib_resources`, a package it only
  declares for Python < 3.9, so on newer Pythons without it every non-TFDS builder fails in
  `download_and_prepare`. The file the class is defined in is all it needs.
  """

  @tfds.core.utils.classproperty
  @classmethod
  def code_path(cls) -> epath.Path:
    return epath.Path(inspect.getfile(cls))
