"""Joint image + depth augmentations of the AdaBins training recipe (the release's), in TensorFlow.

Every op takes `image` float32 (H, W, 3) in [0, 1] and `depth` float32 (H, W, 1) in metres, and
every random op takes a `seed` tensor of shape (2,) and uses stateless random ops only, so the
same seed gives the same result eagerly, inside `tf.data` and after a restart. The order and
ranges follow the release's NYU data loader: white-border crop, rotation, random crop,
horizontal flip, then (with p=0.5) gamma, brightness and per-channel colour.
"""

import math

import tensorflow as tf

from adabins_jax.datasets import nyu


def _as_seed(seed) -> tf.Tensor:
  """Seeds as int64: `stateless_split` gives different streams for int32 and int64 seeds."""
  return tf.cast(seed, tf.int64)


def crop_nyu_border(image: tf.Tensor, depth: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """Cuts NYU's white border from both maps; the input must be 480x640."""
  image, depth = tf.convert_to_tensor(image), tf.convert_to_tensor(depth)
  shape = image.shape[:2]
  if shape.is_fully_defined() and tuple(shape) != nyu.FRAME_HW:
    raise ValueError(f'the NYU border crop needs 480x640 frames, got {tuple(shape)}; turn '
                     'data.crop_white_border off for other data')
  tf.debugging.assert_equal(tf.shape(image)[:2], nyu.FRAME_HW,
                            message='the NYU border crop needs 480x640 frames')
  left, top, right, bottom = nyu.BORDER_BOX
  return image[top:bottom, left:right], depth[top:bottom, left:right]


def rotation_transform(angle_rad: tf.Tensor, height: int, width: int) -> tf.Tensor:
  """Projective transform (1, 8) rotating an image counter-clockwise about its centre.

  It maps output pixel coordinates to input ones (the convention of
  ImageProjectiveTransformV3), with the centre at ((W-1)/2, (H-1)/2) in pixel-index
  coordinates, as PIL's `Image.rotate` (used by the release) has it.
  """
  cos, sin = tf.cos(angle_rad), tf.sin(angle_rad)
  w, h = tf.cast(width - 1, tf.float32), tf.cast(height - 1, tf.float32)
  x_offset = (w - (cos * w - sin * h)) / 2.0
  y_offset = (h - (sin * w + cos * h)) / 2.0
  zero = tf.zeros_like(cos)
  return tf.reshape(tf.stack([cos, -sin, x_offset, sin, cos, y_offset, zero, zero]), (1, 8))


def _transform(x: tf.Tensor, transform: tf.Tensor, interpolation: str) -> tf.Tensor:
  """Applies a projective transform to one (H, W, C) map, filling with zeros."""
  out = tf.raw_ops.ImageProjectiveTransformV3(
      images=x[None], transforms=transform, output_shape=tf.shape(x)[:2],
      fill_value=tf.constant(0.0, tf.float32), interpolation=interpolation, fill_mode='CONSTANT')
  return tf.ensure_shape(out[0], x.shape)


def rotate(image: tf.Tensor, depth: tf.Tensor, angle_deg) -> tuple[tf.Tensor, tf.Tensor]:
  """Rotates both maps counter-clockwise by `angle_deg`; corners become 0.

  The image is interpolated bilinearly; depth takes the nearest value, because a blend of a
  near and a far depth is a depth that exists nowhere in the scene.
  """
  image, depth = tf.convert_to_tensor(image), tf.convert_to_tensor(depth)
  angle = tf.cast(angle_deg, tf.float32) * (math.pi / 180.0)
  shape = tf.shape(image)
  transform = rotation_transform(angle, shape[0], shape[1])
  return _transform(image, transform, 'BILINEAR'), _transform(depth, transform, 'NEAREST')


def random_rotate(image, depth, max_deg: float, seed):
  """Rotates both maps by an angle drawn uniformly from [-max_deg, max_deg]."""
  angle = tf.random.stateless_uniform([], _as_seed(seed), -max_deg, max_deg)
  return rotate(image, depth, angle)


def random_crop(image, depth, size: tuple[int, int], seed):
  """Crops the same random `size` (h, w) window from both maps."""
  image, depth = tf.convert_to_tensor(image), tf.convert_to_tensor(depth)
  h, w = size
  shape = tf.shape(image)
  static = image.shape[:2]
  if static.is_fully_defined() and (static[0] < h or static[1] < w):
    raise ValueError(f'crop {size} is larger than the image {tuple(static)}')
  tf.debugging.assert_greater_equal(shape[:2], [h, w], message=f'crop {size} exceeds image')
  seeds = tf.random.experimental.stateless_split(_as_seed(seed), 2)
  # The release's random.randint(0, H - h) includes both ends, hence maxval + 1.
  top = tf.random.stateless_uniform([], seeds[0], 0, shape[0] - h + 1, dtype=tf.int32)
  left = tf.random.stateless_uniform([], seeds[1], 0, shape[1] - w + 1, dtype=tf.int32)
  image = tf.ensure_shape(image[top:top + h, left:left + w], (h, w, image.shape[-1]))
  depth = tf.ensure_shape(depth[top:top + h, left:left + w], (h, w, depth.shape[-1]))
  return image, depth


def random_flip(image, depth, seed):
  """Mirrors both maps left-right with probability 0.5."""
  image, depth = tf.convert_to_tensor(image), tf.convert_to_tensor(depth)
  flip = tf.random.stateless_uniform([], _as_seed(seed)) > 0.5
  # tf.cond rather than tf.where: only the branch taken is computed.
  return tf.cond(flip, lambda: (tf.reverse(image, [1]), tf.reverse(depth, [1])),
                 lambda: (image, depth))


def random_color(image, seed, brightness_range=(0.75, 1.25)):
  """With probability 0.5: gamma U[0.9, 1.1], brightness, colour U[0.9, 1.1] per channel.

  Args:
    image: float32 (H, W, 3) in [0, 1].
    seed: (2,) stateless seed.
    brightness_range: NYU's (0.75, 1.25) by default; the release uses (0.9, 1.1) for KITTI.

  Returns:
    The image, clipped to [0, 1] when augmented.
  """
  seeds = tf.random.experimental.stateless_split(_as_seed(seed), 4)
  apply = tf.random.stateless_uniform([], seeds[0]) > 0.5
  gamma = tf.random.stateless_uniform([], seeds[1], 0.9, 1.1)
  brightness = tf.random.stateless_uniform([], seeds[2], *brightness_range)
  colors = tf.random.stateless_uniform([3], seeds[3], 0.9, 1.1)
  return tf.cond(apply, lambda: tf.clip_by_value(image**gamma * brightness * colors, 0.0, 1.0),
                 lambda: tf.convert_to_tensor(image))


def train_augment(image, depth, seed, *, crop_size, rotation_deg=2.5, crop_border=True,
                  brightness_range=(0.75, 1.25)):
  """The release's full training augmentation, in its order.

  Args:
    image: float32 (H, W, 3) in [0, 1].
    depth: float32 (H, W, 1) in metres, 0 where invalid.
    seed: (2,) integer tensor; one per example.
    crop_size: (h, w) of the random crop.
    rotation_deg: maximum rotation; 0 turns rotation off.
    crop_border: cut NYU's white border first (480x640 NYU frames only).
    brightness_range: range of the brightness factor.

  Returns:
    image (h, w, 3) and depth (h, w, 1).
  """
  seeds = tf.random.experimental.stateless_split(_as_seed(seed), 4)
  if crop_border:
    image, depth = crop_nyu_border(image, depth)
  if rotation_deg:
    image, depth = random_rotate(image, depth, rotation_deg, seeds[0])
  image, depth = random_crop(image, depth, crop_size, seeds[1])
  image, depth = random_flip(image, depth, seeds[2])
  return random_color(image, seeds[3], brightness_range), depth
