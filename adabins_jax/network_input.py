"""What the network is fed: ImageNet-normalised RGB at the scale the model learned.

Every network input is normalised with ImageNet's per-channel statistics (``normalize``), as
the encoders were pretrained and the release kept for depth: the input pipeline, prediction and
export all normalise here; pictures of network inputs undo it with ``denormalize``. Both take
numpy arrays, jax arrays or TensorFlow tensors of RGB in [0, 1] (channels last).

A model learns depth at one scale: the dataset's frames (``data.frame_size``) resized by
``data.input_scale``, which is also what evaluation feeds it. A photo is therefore brought to
about that many pixels at its own aspect ratio (``network_size``), first to the frame's
scale with antialiasing, then by ``input_scale`` with the input pipeline's own bilinear resize
(``network_image``). A photo shaped like the frames gets exactly evaluation's input, so its
depth is evaluation's depth.
"""

from __future__ import annotations

from collections.abc import Sequence
import math

import numpy as np

from PIL import Image


MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

# Aspect ratios beyond this are treated as this (a panorama still gets a usable input).
_MAX_ASPECT = 8.0
# EfficientNet encoders reach stride 32 in five stride-2 stages (models/__init__.py).
_EFFICIENTNET_STRIDE = 32
# network_size's search for an input the bins head accepts: per try, the area is multiplied by
# _AREA_SHRINK when the patches overflow the positional table and by _AREA_GROW when they are
# too few for the queries (each side moves by about 5%), for at most _MAX_SIZE_TRIES tries,
# enough to scale the area by 0.9**100 (about 1/38,000) or 1.1**100 (about 14,000).
_AREA_SHRINK, _AREA_GROW = 0.9, 1.1
_MAX_SIZE_TRIES = 100


def parse_size(size: str | Sequence[int] | None, what: str = 'size') -> tuple[int, int] | None:
  """A size given as 'HxW' or (h, w), checked; None stays None.

  Args:
    size: 'HxW' (e.g. '480x640') or a pair of ints.
    what: Names the setting in the error message (e.g. '--size').

  Raises:
    ValueError: Not two positive integers.
  """
  if size is None:
    return None
  text = size
  if isinstance(size, str):
    try:
      size = tuple(int(s) for s in size.lower().split('x'))
    except ValueError:
      size = ()
  size = tuple(size)
  if len(size) != 2:
    raise ValueError(f'{what} {text!r} must look like 480x640 (height x width).')
  if min(size) < 1:
    raise ValueError(f'{what} {size} must be positive.')
  return size


def frame_size(config) -> tuple[int, int]:
  """The (height, width) of the frames the config's model learns and is evaluated on.

  ``config.data.frame_size``.
  """
  size = config.data.frame_size
  ok = (isinstance(size, (tuple, list)) and len(size) == 2
        and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size))
  if not ok:
    raise ValueError(f'data.frame_size={size!r} must be (height, width), two positive integers.')
  return int(size[0]), int(size[1])


def scaled_size(hw: Sequence[int], scale: float) -> tuple[int, int]:
  """``hw`` x ``data.input_scale``, rounded as the input pipeline resizes images to it."""
  return round(hw[0] * scale), round(hw[1] * scale)


def trained_input_size(config) -> tuple[int, int]:
  """The network input of one frame: ``frame_size`` x ``input_scale`` (``scaled_size``)."""
  return scaled_size(frame_size(config), config.data.input_scale)


def size_multiple(model_config) -> int:
  """Input sides that are multiples of this pass the encoder without padding and leave a decoder
  map (half the input) of whole bins-head patches.

  Any size runs (pooling pads, patches drop the remainder); this only picks clean ones.
  """
  if model_config.name == 'unet':
    stride = 2 ** (len(model_config.unet_widths) - 1)  # One 2x2 pool per level below the top.
  else:
    stride = _EFFICIENTNET_STRIDE
  return math.lcm(stride, 2 * model_config.patch_size)


def _round_to(x: float, multiple: int) -> int:
  return max(multiple, multiple * round(x / multiple))


def _patch_excess(hw: tuple[int, int], model_config) -> int:
  """Patches of the bins head beyond its table (> 0) or short of its queries (< 0), else 0."""
  p = model_config.patch_size
  n = (math.ceil(hw[0] / 2) // p) * (math.ceil(hw[1] / 2) // p)
  if n > model_config.pos_table_size:
    return n - model_config.pos_table_size
  return min(0, n - (model_config.n_queries + 1))


def network_size(image_hw: Sequence[int], config) -> tuple[int, int]:
  """The network input (h, w) for an image: the trained input's area at the image's aspect.

  An image shaped like the frames gets ``trained_input_size`` itself (480x640 photos run at
  480x640 for NYU models, 360x480 at input_scale 0.75; 120x160 ones at 48x64 for the demo).
  Other aspects get sides rounded to ``size_multiple``. The area shrinks or grows until the
  bins head gets between ``n_queries + 1`` and ``pos_table_size`` patches.

  Args:
    image_hw: The image's (height, width).
    config: The full config (uses data.frame_size, data.input_scale and model).

  Raises:
    ValueError: if the image is empty, or no size fits the bins head (pass an explicit size
      then).
  """
  h0, w0 = image_hw
  if min(h0, w0) < 1:
    raise ValueError(f'An image of {h0}x{w0} pixels has no network input size: it is empty.')
  model_config = config.model
  trained = trained_input_size(config)
  aspect = min(max(w0 / h0, 1 / _MAX_ASPECT), _MAX_ASPECT)
  area = float(trained[0] * trained[1])
  # The trained size need not be a clean multiple of the model's (60x80 at input_scale 0.5 for
  # the demo's frames); the model knows it.
  whole = (round(math.sqrt(area / aspect)), round(math.sqrt(area * aspect)))
  if whole == trained and not _patch_excess(trained, model_config):
    return trained
  multiple = size_multiple(model_config)
  for _ in range(_MAX_SIZE_TRIES):
    hw = (_round_to(math.sqrt(area / aspect), multiple),
          _round_to(math.sqrt(area * aspect), multiple))
    excess = _patch_excess(hw, model_config)
    if not excess:
      return hw
    area *= _AREA_SHRINK if excess > 0 else _AREA_GROW
  raise ValueError(f'No network input size fits an image of {h0}x{w0} with patch_size='
                   f'{model_config.patch_size}, n_queries={model_config.n_queries} and '
                   f'pos_table_size={model_config.pos_table_size}; pass --size=HxW.')


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Source rows and weights of a half-pixel bilinear resize along one axis, in float32 as
  TensorFlow's ResizeBilinear computes them (float64 coordinates differ by 1e-5 at 480 px)."""
  scale = np.float32(n_in) / np.float32(n_out)
  src = (np.arange(n_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
  floor = np.floor(src)
  low = np.clip(floor.astype(np.int64), 0, n_in - 1)
  high = np.clip(np.ceil(src).astype(np.int64), 0, n_in - 1)
  return low, high, (src - floor).astype(np.float32)


def resize_as_pipeline(rgb: np.ndarray, hw: Sequence[int]) -> np.ndarray:
  """The input pipeline's ``tf.image.resize(method='bilinear')`` (half-pixel centres, no
  antialiasing) of an (H, W, C) float32 image, without TensorFlow."""
  x = np.asarray(rgb, np.float32)
  low, high, t = _bilinear_taps(x.shape[0], int(hw[0]))
  x = x[low] + (x[high] - x[low]) * t[:, None, None]
  low, high, t = _bilinear_taps(x.shape[1], int(hw[1]))
  return x[:, low] + (x[:, high] - x[:, low]) * t[None, :, None]


def network_image(rgb: np.ndarray, hw: Sequence[int], input_scale: float) -> np.ndarray:
  """An (H, W, 3) [0, 1] image resized to the network input ``hw`` as training resized frames.

  The image is first brought to the frame scale (``hw / input_scale``; bilinear, antialiased as
  photos need), then scaled by ``input_scale`` as the input pipeline does: the model learned on
  that resampling's pixels, and a frame-sized image then gets evaluation's input exactly.
  """
  hw = (int(hw[0]), int(hw[1]))
  if input_scale == 1.0:
    return resize_image(rgb, hw)
  frame_hw = (max(1, round(hw[0] / input_scale)), max(1, round(hw[1] / input_scale)))
  return resize_as_pipeline(resize_image(rgb, frame_hw), hw)


def normalize(rgb):
  """RGB in [0, 1] -> the network's input: zero mean and unit variance per ImageNet channel."""
  return (rgb - MEAN) / STD


def denormalize(image):
  """A network input -> RGB in [0, 1] (unclipped); the inverse of ``normalize``."""
  return image * STD + MEAN


def resize_image(rgb: np.ndarray, hw: Sequence[int]) -> np.ndarray:
  """Bilinear resize of an (H, W, 3) float image (antialiased when shrinking, as photos need)."""
  h, w = (int(s) for s in hw)
  if rgb.shape[:2] == (h, w):
    return rgb
  # A 2-D float32 array is a mode 'F' picture, which Pillow resizes in float precision.
  channels = [np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c], np.float32))
                         .resize((w, h), Image.Resampling.BILINEAR)) for c in range(3)]
  return np.stack(channels, axis=-1)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
  return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)
