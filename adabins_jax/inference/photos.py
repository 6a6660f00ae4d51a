"""Users' images as the network's RGB: from a file, a PIL image or an array, upright, in [0, 1]."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PIL import ImageOps


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads any image Pillow can, upright (EXIF orientation applied), as RGB in [0, 1].

  Greyscale is repeated over the channels, alpha is dropped, palettes are expanded, and
  16-bit images keep their precision (divided by 65535).

  Returns:
    (H, W, 3) float32.

  Raises:
    ValueError: naming the file, if it cannot be read as an image.
  """
  try:
    with Image.open(path) as picture:
      picture.load()  # Truncated or corrupt data fails here, not later.
      picture = ImageOps.exif_transpose(picture)
      return _to_rgb(picture)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise ValueError(f'{os.fspath(path)}: not a readable image ({e}).') from e


def as_rgb(image) -> np.ndarray:
  """An image given as a path, a PIL image or an array, as (H, W, 3) float32 RGB in [0, 1].

  Arrays: (H, W, 3) or (H, W, 4) RGB(A) or (H, W) grey; uint8 (0-255), uint16 (0-65535) or
  float in [0, 1].

  Raises:
    ValueError: naming the shape, dtype or range that is not an image.
  """
  if isinstance(image, (str, os.PathLike)):
    return read_image(image)
  if isinstance(image, Image.Image):
    return _to_rgb(ImageOps.exif_transpose(image))
  array = np.asarray(image)
  if array.ndim == 2:
    array = array[..., None]
  if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
    raise ValueError(f'An image array must be (H, W), (H, W, 3) or (H, W, 4); got shape '
                     f'{array.shape}.')
  array = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
  if array.dtype == np.uint8:
    return array.astype(np.float32) / 255.0
  if array.dtype == np.uint16:
    return array.astype(np.float32) / 65535.0
  if not np.issubdtype(array.dtype, np.floating):
    raise ValueError(f'An image array must be uint8, uint16 or float in [0, 1]; got '
                     f'{array.dtype}.')
  if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
    raise ValueError(f'A float image must hold finite values in [0, 1]; got '
                     f'[{np.nanmin(array)}, {np.nanmax(array)}] (uint8 data? pass it as uint8).')
  return array.astype(np.float32)


def _to_rgb(picture: Image.Image) -> np.ndarray:
  if picture.mode.startswith('I;16') or picture.mode == 'I':
    grey = np.asarray(picture).astype(np.float32) / 65535.0  # 16-bit greyscale
  elif picture.mode == 'F':
    grey = np.asarray(picture, np.float32)
    grey = grey / max(float(np.nanmax(grey)), 1.0)  # Already [0, 1] unless it says otherwise.
  else:
    rgb = np.asarray(picture.convert('RGB'), np.float32) / 255.0
    return rgb
  grey = np.clip(np.nan_to_num(grey), 0.0, 1.0)
  return np.repeat(grey[..., None], 3, axis=-1)
