"""synthetic_rooms at fixed fields of view: demo's test rooms seen by other cameras."""

import math

import numpy as np
import tensorflow_datasets as tfds

from adabins_jax.datasets import build  # noqa: F401  (registers the builders)
from adabins_jax.datasets import synthetic_rooms
from adabins_jax.datasets.rooms import render as rooms_render


def test_the_variants_are_demos_test_frames_at_40_and_90_degrees():
  configs = {c.name: c for c in tfds.builder_cls('synthetic_rooms').BUILDER_CONFIGS}
  demo = configs['demo']
  for name, fov in [('demo_fov40', 40.0), ('demo_fov90', 90.0)]:
    variant = configs[name]
    assert (variant.height, variant.width, variant.fov_deg) == (demo.height, demo.width, fov)
    assert (variant.num_train, variant.num_test) == (0, demo.num_test)
  assert demo.fov_deg is None


def test_a_tiny_variant_builds_the_same_rooms_with_the_fixed_focal_length(tmp_path):
  config = synthetic_rooms.SyntheticRoomsConfig(
      name='fov90_tiny', height=32, width=40, num_train=0, num_test=2, fov_deg=90.0)
  builder = tfds.builder('synthetic_rooms', config=config, data_dir=tmp_path)
  builder.download_and_prepare()
  assert list(builder.info.splits) == ['test']
  fx = 0.5 * 40 / math.tan(math.radians(45.0))
  for ex in tfds.as_numpy(builder.as_dataset('test')):
    index = int(ex['name'].decode().split('/')[1])
    assert ex['focal'] == np.float32(fx)
    image, depth, focal = rooms_render.render_example((1, index), 32, 40, 90.0)
    np.testing.assert_array_equal(ex['image'], image)
    np.testing.assert_array_equal(ex['depth'], depth.astype(np.float16))
    # The Kinect-like camera of the same seed looks at the same room from the same place: a
    # narrower view, so different pixels.
    kinect_image, _, kinect_focal = rooms_render.render_example((1, index), 32, 40)
    assert kinect_focal != focal and not np.array_equal(kinect_image, image)
