"""Users' images as the network's RGB: from a file, a PIL image or an array, upright, in [0, 1].

Files, PIL images and arrays follow one rule: 8-bit (0-255) and 16-bit (0-65535) integers,
or floats in [0, 1] (a float picture above 1 is scaled by its maximum). 32-bit integer
images (PIL mode 'I', int32 arrays) are refused: they state no range, and guessing 8-bit or
16-bit from the values makes the other case 257 times too bright or too dark without a
sign. Empty images and non-finite floats are refused too.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image
from PIL import ImageOps


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads any image Pillow can, upright (EXIF orientation applied), as RGB in [0, 1].

  Greyscale is repeated over the channels, alpha is dropped, palettes are expanded, and
  16-bit images keep their precision (divided by 65535); 32-bit integer and empty images, and
  float images holding NaN or inf, are refused (see the module docstring).

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
                     f'{array.dtype} (a 32-bit integer image states no range; convert it to '
                     '8-bit or 16-bit first).')
  if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
    raise ValueError(f'A float image must hold finite values in [0, 1]; got '
                     f'[{np.nanmin(array)}, {np.nanmax(array)}] (uint8 data? pass it as uint8).')
  return array.astype(np.float32)


def _to_rgb(picture: Image.Image) -> np.ndarray:
  if min(picture.size) < 1:
    raise ValueError(f'An image needs at least one pixel; got {picture.width}x'
                     f'{picture.height}.')
  if picture.mode.startswith('I;16'):
    grey = np.asarray(picture).astype(np.float32) / 65535.0  # 16-bit greyscale
  elif picture.mode.startswith('I'):
    raise ValueError(f'A 32-bit integer image (mode {picture.mode}) states no range; convert '
                     'it to 8-bit (0-255) or 16-bit (0-65535) first.')
  elif picture.mode == 'F':
    grey = np.asarray(picture, np.float32)
    if not np.isfinite(grey).all():
      raise ValueError(f'A float image (mode F) must hold finite values; this one holds '
                       f'{int((~np.isfinite(grey)).sum())} NaN or inf.')
    grey = grey / max(float(grey.max()), 1.0)  # Already [0, 1] unless it says otherwise.
  else:
    rgb = np.asarray(picture.convert('RGB'), np.float32) / 255.0
    return rgb
  grey = np.clip(grey, 0.0, 1.0)
  return np.repeat(grey[..., None], 3, axis=-1)
