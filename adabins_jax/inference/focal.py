"""A photo's focal length, and the canonical camera transform it brings to predicted depth.

A network trained on one camera's frames (NYU's Kinect, KITTI's P_rect_02) learns depth from
how large things look in its input's pixels. A photo taken with another focal length shows
them larger or smaller, so its depth comes out scaled by the focal lengths' ratio. With the
photo's focal length known, the prediction is multiplied by ``f_photo / f_train``, both in
pixels of the network input (``depth_scale``): the photo's fx scaled from its width to the
input's width, the training camera's from its frames to the input the model was trained on
(``camera.training_focal_px``).

Where the photo's focal length comes from, first found first (``photo_focal``): an explicit fx
in pixels, a horizontal field of view, the file's EXIF (FocalLengthIn35mmFilm, then FocalLength
with the sensor's FocalPlaneXResolution). None of these: no rescale, the training camera is
assumed and depth is exactly what the network gives.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

from absl import logging
from PIL import Image

# Where a focal length came from, as written in the outputs.
EXPLICIT, FOV, EXIF_35MM, EXIF_FOCAL_PLANE, TRAINING = (
    'explicit fx', 'field of view', 'EXIF FocalLengthIn35mmFilm', 'EXIF FocalLength',
    'training camera')

# A 35 mm frame is 36 mm wide: the 35 mm-equivalent focal length is relative to that width.
_FILM_WIDTH_MM = 36.0
# EXIF tags: the Exif sub-IFD, and the tags read from it or from IFD0.
_EXIF_IFD, _ORIENTATION = 0x8769, 0x0112
_FOCAL_35MM, _FOCAL_MM = 0xA405, 0x920A
_PLANE_X_RES, _PLANE_UNIT, _PIXEL_X_DIM = 0xA20E, 0xA210, 0xA002
# FocalPlaneResolutionUnit: millimetres per unit (EXIF 2 inch, 3 cm; 4 mm and 5 um in the wild).
_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}
# EXIF orientations 5-8 store the picture turned by 90 degrees.
_TRANSPOSED = frozenset({5, 6, 7, 8})
# Horizontal fields of view (degrees) an EXIF focal length may give; beyond them the tag is
# taken for corrupt (fisheye and telescope lenses aside, no photo is outside).
_PLAUSIBLE_FOV_DEG = (2.0, 170.0)


class FocalLengthError(ValueError):
  """A focal length or field of view that no camera has (not positive, not finite)."""


@dataclasses.dataclass(frozen=True)
class PhotoFocal:
  """A photo's horizontal focal length and where it came from.

  Attributes:
    fx_px: Pixels of the upright photo at its own width; None: unknown (the training camera's
      is assumed).
    source: EXPLICIT, FOV, EXIF_35MM, EXIF_FOCAL_PLANE or TRAINING.
    exif_fx_px: What the file's EXIF gave, when it was read (for display), else None.
  """
  fx_px: float | None
  source: str
  exif_fx_px: float | None = None


def check_fx(fx: Any, what: str = 'fx') -> float:
  """``fx`` as a float, or FocalLengthError if it is not a positive finite number."""
  try:
    value = float(fx)
  except (TypeError, ValueError):
    raise FocalLengthError(f'{what}={fx!r} must be a number of pixels.') from None
  if not (math.isfinite(value) and value > 0):
    raise FocalLengthError(f'{what}={fx!r} must be a positive, finite focal length in pixels.')
  return value


def check_fov(fov_deg: Any) -> float:
  """A horizontal field of view in degrees, or FocalLengthError outside (0, 180)."""
  try:
    value = float(fov_deg)
  except (TypeError, ValueError):
    raise FocalLengthError(f'fov_deg={fov_deg!r} must be a number of degrees.') from None
  if not (math.isfinite(value) and 0.0 < value < 180.0):
    raise FocalLengthError(f'fov_deg={fov_deg!r} must be a horizontal field of view in '
                           'degrees, strictly between 0 and 180.')
  return value


def fx_from_fov(fov_deg: float, width_px: int) -> float:
  """The focal length in pixels of a ``width_px``-wide pinhole image seeing ``fov_deg``."""
  return 0.5 * width_px / math.tan(math.radians(check_fov(fov_deg)) / 2.0)


def fov_from_fx(fx_px: float, width_px: int) -> float:
  """The horizontal field of view in degrees of focal length ``fx_px`` over ``width_px``."""
  return math.degrees(2.0 * math.atan(0.5 * width_px / fx_px))


def _positive(value) -> float | None:
  try:
    number = float(value)
  except (TypeError, ValueError, ZeroDivisionError):
    return None
  return number if math.isfinite(number) and number > 0 else None


def _plausible(fx_px: float | None, width_px: int) -> bool:
  return fx_px is not None and (
      _PLAUSIBLE_FOV_DEG[0] <= fov_from_fx(fx_px, width_px) <= _PLAUSIBLE_FOV_DEG[1])


def exif_focal(picture: Image.Image, name: str = 'image') -> tuple[float | None, str | None]:
  """(fx over the upright picture's width, its EXIF source), or (None, None).

  The focal length as a fraction of the width holds for the picture at any size, so a photo
  downscaled after reading keeps it.

  Read from the picture as stored, before ``ImageOps.exif_transpose``: an orientation of 5-8
  makes the upright width the stored height. FocalLengthIn35mmFilm gives
  ``f35 * upright width / 36`` (the 35 mm equivalent taken over the upright picture's width,
  the width the network's fx is measured along, whichever way the camera was held); failing
  that, FocalLength (mm) times the sensor's FocalPlaneXResolution (pixels per unit) gives fx in
  the sensor's pixels, scaled by the picture's width over PixelXDimension when the picture was
  resized. Values that are missing give (None, None) silently; values that are unreadable,
  not positive or give a field of view outside 2-170 degrees are logged as a warning and
  skipped, never raised.
  """
  try:
    exif = picture.getexif()
    sub = exif.get_ifd(_EXIF_IFD)
    orientation = exif.get(_ORIENTATION, 1)
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('%s: unreadable EXIF (%s); assuming the training camera.', name, e)
    return None, None
  stored_w, stored_h = picture.size
  width = stored_h if orientation in _TRANSPOSED else stored_w
  candidates = []
  if _FOCAL_35MM in sub:
    f35 = _positive(sub.get(_FOCAL_35MM))
    candidates.append((EXIF_35MM, None if f35 is None else f35 * width / _FILM_WIDTH_MM,
                       sub.get(_FOCAL_35MM)))
  if _FOCAL_MM in sub and _PLANE_X_RES in sub:
    f_mm, x_res = _positive(sub.get(_FOCAL_MM)), _positive(sub.get(_PLANE_X_RES))
    unit_mm = _UNIT_MM.get(sub.get(_PLANE_UNIT, 2))
    fx = None
    if f_mm and x_res and unit_mm:
      fx = f_mm * x_res / unit_mm  # Pixels of the sensor's full-resolution frame.
      full_w = _positive(sub.get(_PIXEL_X_DIM))
      if full_w:
        fx *= stored_w / full_w
    candidates.append((EXIF_FOCAL_PLANE, fx, sub.get(_FOCAL_MM)))
  for source, fx, raw in candidates:
    if _plausible(fx, width):
      return fx / width, source
    logging.warning('%s: %s=%r gives no plausible focal length for a %d px wide photo; '
                    'ignored.', name, source, raw, width)
  if candidates:
    logging.warning('%s: no usable EXIF focal length; assuming the training camera.', name)
  return None, None


def read_exif_focal(path: str | os.PathLike) -> tuple[float | None, str | None]:
  """``exif_focal`` of an image file; (None, None), with a warning, if it cannot be opened."""
  try:
    with Image.open(path) as picture:
      return exif_focal(picture, os.fspath(path))
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    logging.warning('%s: EXIF not read (%s); assuming the training camera.', os.fspath(path), e)
    return None, None


def photo_focal(image: Any, width_px: int, *, fx: float | None = None,
                fov_deg: float | None = None) -> PhotoFocal:
  """The focal length a photo is predicted with: ``fx``, else ``fov_deg``, else its EXIF.

  Args:
    image: The photo as given to prediction: a path or a PIL image (EXIF read), or an array
      (no EXIF).
    width_px: The upright photo's width as predicted (EXIF focal lengths are scaled to it).
    fx: Focal length in pixels of the photo at its own size.
    fov_deg: Horizontal field of view in degrees.

  Raises:
    FocalLengthError: ``fx`` or ``fov_deg`` given but not valid.
  """
  given = None
  if fx is not None:
    fx, given = check_fx(fx), EXPLICIT
  elif fov_deg is not None:
    fx, given = fx_from_fov(fov_deg, width_px), FOV
  # Read even when given a focal length: the outputs show what the file says beside it.
  relative, source = None, None
  if isinstance(image, (str, os.PathLike)):
    relative, source = read_exif_focal(image)
  elif isinstance(image, Image.Image):
    relative, source = exif_focal(image)
  exif_fx = None if relative is None else relative * width_px
  if given is not None:
    return PhotoFocal(fx, given, exif_fx)
  if exif_fx is None:
    return PhotoFocal(None, TRAINING)
  return PhotoFocal(exif_fx, source, exif_fx)


def depth_scale(fx_px: float | None, image_width: int, input_width: int,
                train_fx_input_px: float) -> float:
  """``f_photo / f_train`` at the network input's resolution; 1.0 for an unknown ``fx_px``.

  Args:
    fx_px: The photo's focal length in pixels of the photo (``image_width`` wide), or None.
    image_width: The photo's width in pixels.
    input_width: The network input's width in pixels.
    train_fx_input_px: The training camera's focal length in pixels of the input the model
      was trained on (``camera.training_focal_px``).
  """
  if fx_px is None:
    return 1.0
  return (fx_px * input_width / image_width) / train_fx_input_px


def describe(focal: PhotoFocal, camera_name: str, scale: float) -> dict:
  """The facts a prediction records about its camera (the JSON sidecar, the log line)."""
  return {
      'training_camera': camera_name,
      'focal_source': focal.source,
      'fx_px': focal.fx_px,
      'exif_fx_px': focal.exif_fx_px,
      'depth_scale': scale,
  }


def note(focal: PhotoFocal, camera_name: str, scale: float) -> str:
  """One sentence for a person: the focal length used, the EXIF value found, the depth scale."""
  exif = ('no EXIF focal length' if focal.exif_fx_px is None
          else f'EXIF focal length {focal.exif_fx_px:.0f} px')
  if focal.fx_px is None:
    return f'Camera: {camera_name} assumed ({exif}; give the field of view to rescale).'
  return (f'Camera: focal length {focal.fx_px:.0f} px from the {focal.source} ({exif}); depth '
          f'x{scale:.3f} from the {camera_name} camera.')
