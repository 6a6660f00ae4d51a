"""The synthetic_rooms builder: registered, deterministic, NYU-like features."""

import numpy as np
import tensorflow_datasets as tfds

from adabins_jax.datasets import build  # noqa: F401  (registers the builders)
from adabins_jax.datasets.rooms import render as rooms_render


def test_tiny_config_builds_and_matches_the_renderer(tmp_path):
  builder = tfds.builder('synthetic_rooms/tiny', data_dir=tmp_path)
  builder.download_and_prepare()
  assert builder.info.splits['train'].num_examples == 16
  assert builder.info.splits['test'].num_examples == 8
  names = set()
  for split, split_id in [('train', 0), ('test', 1)]:
    for ex in tfds.as_numpy(builder.as_dataset(split)):
      name = ex['name'].decode()
      names.add(name)
      assert ex['image'].shape == (64, 80, 3) and ex['image'].dtype == np.uint8
      assert ex['depth'].shape == (64, 80) and ex['depth'].dtype == np.float16
      # Example i of a split is the rendering of seed (split, i): rebuilding gives the same.
      index = int(name.split('/')[1])
      image, depth, focal = rooms_render.render_example((split_id, index), 64, 80)
      np.testing.assert_array_equal(ex['image'], image)
      np.testing.assert_array_equal(ex['depth'], depth.astype(np.float16))
      assert ex['focal'] == np.float32(focal)
      assert ex['depth'].max() < 10.0
  assert len(names) == 24


def test_configs():
  configs = {c.name: c for c in tfds.builder_cls('synthetic_rooms').BUILDER_CONFIGS}
  assert (configs['default'].height, configs['default'].width) == (240, 320)
  assert (configs['default'].num_train, configs['default'].num_test) == (2000, 200)
  assert (configs['vga'].height, configs['vga'].width) == (480, 640)
