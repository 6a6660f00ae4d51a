"""Joint augmentations: against PIL (what the release uses), eagerly and inside tf.data."""

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from adabins_jax import augment


def _frame(height=48, width=64, seed=0):
  """A smooth image in [0, 1] and a depth map whose values are all distinct."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:height, :width].astype(np.float32)
  image = 0.5 + 0.4 * np.sin(xx[..., None] / 5 + yy[..., None] / 7 + rng.uniform(0, 6, 3))
  depth = (1.0 + rng.permutation(height * width) / 1000.0).reshape(height, width, 1)
  return image.astype(np.float32), depth.astype(np.float32)


def _coords(height, width):
  """Maps whose values encode the pixel position: image rows, depth columns-and-rows."""
  yy, xx = np.mgrid[:height, :width].astype(np.float32)
  image = np.stack([yy, xx, yy + xx], -1) / 1000.0
  depth = (yy * 1000 + xx)[..., None]
  return image, depth


def _via_dataset(fn, *args):
  """Runs `fn(*args)` inside a tf.data map and returns the numpy result."""
  ds = tf.data.Dataset.from_tensors(tuple(tf.constant(a) for a in args)).map(fn)
  return next(iter(ds.as_numpy_iterator()))


def _per_seed(fn, num_seeds, salt):
  """`fn(seed)` for seeds [s, salt], eagerly and in one tf.data map; two lists of results."""
  seeds = np.stack([np.arange(num_seeds), np.full(num_seeds, salt)], -1)
  eager = [tuple(np.asarray(x) for x in fn(tf.constant(seed))) for seed in seeds]
  ds = tf.data.Dataset.from_tensor_slices(seeds).map(fn)
  return eager, list(ds.as_numpy_iterator())


def test_crop_nyu_border_is_the_release_box():
  image, depth = _coords(480, 640)
  out_image, out_depth = augment.crop_nyu_border(tf.constant(image), tf.constant(depth))
  np.testing.assert_array_equal(out_image, image[45:472, 43:608])
  np.testing.assert_array_equal(out_depth, depth[45:472, 43:608])
  image_ds, depth_ds = _via_dataset(augment.crop_nyu_border, image, depth)
  np.testing.assert_array_equal(image_ds, out_image)
  np.testing.assert_array_equal(depth_ds, out_depth)
  with pytest.raises(ValueError, match='480x640'):
    augment.crop_nyu_border(tf.zeros((240, 320, 3)), tf.zeros((240, 320, 1)))


@pytest.mark.parametrize('angle', [2.5, -1.7])
def test_rotation_matches_pil(angle):
  image, depth = _frame()
  rot_image, rot_depth = augment.rotate(tf.constant(image), tf.constant(depth), angle)
  rot_image, rot_depth = rot_image.numpy(), rot_depth.numpy()
  pil_image = np.stack([np.asarray(Image.fromarray(image[..., c], mode='F').rotate(
      angle, resample=Image.BILINEAR)) for c in range(3)], -1)
  pil_depth = np.asarray(Image.fromarray(depth[..., 0], mode='F').rotate(
      angle, resample=Image.NEAREST))[..., None]
  interior = (slice(4, -4), slice(4, -4))  # PIL and TF treat the filled border differently
  np.testing.assert_allclose(rot_image[interior], pil_image[interior], atol=2e-3)
  # Nearest neighbour may only disagree where a source coordinate sits on a half pixel.
  assert np.mean(rot_depth != pil_depth) < 0.01


def test_rotation_never_blends_depth():
  image, depth = _frame(seed=1)
  for angle in (2.5, -2.5, 1.3, 45.0):
    _, out = augment.rotate(tf.constant(image), tf.constant(depth), angle)
    values = set(np.unique(out.numpy()))
    assert values <= set(np.unique(depth)) | {0.0}
    assert 0.0 in values  # the corners are filled with invalid depth
  out_image, out_depth = augment.rotate(tf.constant(image), tf.constant(depth), 0.0)
  np.testing.assert_allclose(out_image, image, atol=1e-6)
  np.testing.assert_array_equal(out_depth, depth)


def test_random_rotate_in_dataset_equals_eager():
  image, depth = _frame(seed=2)
  seed = tf.constant([3, 4], tf.int64)
  fn = lambda i, d: augment.random_rotate(i, d, 2.5, seed)
  eager = fn(tf.constant(image), tf.constant(depth))
  in_ds = _via_dataset(fn, image, depth)
  np.testing.assert_array_equal(eager[0], in_ds[0])
  np.testing.assert_array_equal(eager[1], in_ds[1])
  assert not np.array_equal(eager[1], depth)


def test_random_crop_is_aligned_and_covers_the_range():
  image, depth = _coords(20, 30)
  fn = lambda seed: augment.random_crop(image, depth, (16, 24), seed)
  eager, in_ds = _per_seed(fn, 60, salt=7)
  tops, lefts = set(), set()
  for (out_image, out_depth), ds_out in zip(eager, in_ds):
    assert out_image.shape == (16, 24, 3) and out_depth.shape == (16, 24, 1)
    rows, cols = np.round(out_image[..., 0] * 1000), np.round(out_image[..., 1] * 1000)
    np.testing.assert_array_equal(rows * 1000 + cols, out_depth[..., 0])
    tops.add(rows[0, 0])
    lefts.add(cols[0, 0])
    np.testing.assert_array_equal(ds_out[0], out_image)
    np.testing.assert_array_equal(ds_out[1], out_depth)
  assert tops == set(range(5)) and lefts == set(range(7))  # both ends reachable
  with pytest.raises(ValueError, match='larger than the image'):
    augment.random_crop(tf.constant(image), tf.constant(depth), (21, 30), tf.constant([0, 0]))


def test_random_flip_flips_both_or_neither():
  image, depth = _coords(6, 8)
  eager, in_ds = _per_seed(lambda seed: augment.random_flip(image, depth, seed), 40, salt=1)
  outcomes = []
  for (out_image, out_depth), ds_out in zip(eager, in_ds):
    flipped = np.array_equal(out_image, image[:, ::-1])
    assert flipped or np.array_equal(out_image, image)
    np.testing.assert_array_equal(out_depth, depth[:, ::-1] if flipped else depth)
    np.testing.assert_array_equal(ds_out[0], out_image)
    np.testing.assert_array_equal(ds_out[1], out_depth)
    outcomes.append(flipped)
  assert 10 < sum(outcomes) < 30


def test_random_color_ranges():
  # Two grey levels per channel let gamma and the per-channel gains be solved for.
  image = np.full((2, 1, 3), 0.25, np.float32)
  image[1] = 0.5
  eager, in_ds = _per_seed(lambda seed: (augment.random_color(image, seed),), 60, salt=5)
  applied = 0
  for (out,), (ds_out,) in zip(eager, in_ds):
    # Graph mode may fuse pow and products differently: equal to float32 rounding.
    np.testing.assert_allclose(ds_out, out, rtol=1e-6)
    if np.array_equal(out, image):
      continue
    applied += 1
    gamma = np.log2(out[1, 0] / out[0, 0])
    np.testing.assert_allclose(gamma, gamma[0], rtol=1e-4)  # one gamma for all channels
    assert 0.9 - 1e-4 <= gamma[0] <= 1.1 + 1e-4
    gains = out[0, 0] / 0.25**gamma
    assert np.all((gains >= 0.75 * 0.9 - 1e-4) & (gains <= 1.25 * 1.1 + 1e-4))
    # Brightness is shared, so channels differ only by the colour factors.
    assert gains.max() / gains.min() <= 1.1 / 0.9 + 1e-4
  assert 15 < applied < 45
  bright = augment.random_color(tf.ones((2, 2, 3)), tf.constant([0, 0]))
  assert float(tf.reduce_max(bright)) <= 1.0


def test_train_augment_is_deterministic_by_seed():
  image, depth = _frame(480, 640, seed=3)
  fn = lambda i, d, s: augment.train_augment(i, d, s, crop_size=(416, 544))
  a = fn(tf.constant(image), tf.constant(depth), tf.constant([1, 2]))
  b = fn(tf.constant(image), tf.constant(depth), tf.constant([1, 2]))
  c = fn(tf.constant(image), tf.constant(depth), tf.constant([1, 3]))
  assert a[0].shape == (416, 544, 3) and a[1].shape == (416, 544, 1)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])
  in_ds = _via_dataset(fn, image, depth, np.array([1, 2]))
  np.testing.assert_allclose(in_ds[0], a[0], rtol=1e-6)
  np.testing.assert_array_equal(in_ds[1], a[1])
  assert set(np.unique(a[1])) <= set(np.unique(depth)) | {0.0}
