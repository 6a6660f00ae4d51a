"""The base of the project's TFDS builders, the features they yield and the checks that guard
them.

The features match TFDS's own `nyu_depth_v2` (`image` uint8 (H, W, 3), `depth` float16 (H, W) in
metres, 0 = invalid) plus the focal length in pixels and a readable example name, so the input
pipeline reads every dataset the same way.
"""

from collections.abc import Mapping
import inspect
import io

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


def read_file_list(path) -> list[tuple[str, str, float]]:
  """Parses a BTS / AdaBins file list into (rgb path, depth path, focal), paths made relative.

  Lines are "<rgb path> <depth path> <focal>"; a leading '/' of a path is dropped. KITTI's lists
  write 'None' as the depth path of frames without ground truth; it is returned as it is.

  Raises:
    FileNotFoundError: the list is missing.
    ValueError: naming the file and line, for a line that is not "<rgb> <depth> <focal>".
  """
  path = epath.Path(path)
  if not path.exists():
    raise FileNotFoundError(f'{path}: file list missing; see MANUAL_DOWNLOAD_INSTRUCTIONS')
  entries = []
  for number, line in enumerate(path.read_text().splitlines(), start=1):
    if not line.strip():
      continue
    fields = line.split()
    try:
      if len(fields) != 3:
        raise ValueError
      entries.append((fields[0].lstrip('/'), fields[1].lstrip('/'), float(fields[2])))
    except ValueError:
      raise ValueError(f'{path}:{number}: expected "<rgb path> <depth path> <focal>", '
                       f'got {line!r}') from None
  if not entries:
    raise ValueError(f'{path}: the file list is empty')
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
