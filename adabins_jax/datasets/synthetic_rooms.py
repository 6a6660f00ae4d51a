"""`synthetic_rooms`: procedurally rendered indoor scenes with exact depth, no download.

Rooms with furniture-like boxes, cylinders and spheres, procedural textures and a ceiling light,
ray cast with NumPy (see rooms/scene.py and rooms/render.py). Depth is z-depth in metres below
10 m like NYU, with a few sensor-like invalid (0) pixels. Example `i` of a split is rendered from
the seed (split, i), so every build gives the same data. Build with::

  python -m adabins_jax.datasets.build synthetic_rooms/default
"""

import dataclasses
import multiprocessing
import os

import tensorflow_datasets as tfds

from adabins_jax.datasets import depth_builder
from adabins_jax.datasets.rooms import render as rooms_render

# Seeds of the splits' scenes: (split id, example index).
_SPLIT_IDS = {'train': 0, 'test': 1}
# Below this many examples a process pool costs more (start-up) than it saves.
_MIN_EXAMPLES_FOR_POOL = 200


@dataclasses.dataclass
class SyntheticRoomsConfig(tfds.core.BuilderConfig):
  """Image size in pixels, examples per split (0: no such split) and the camera.

  ``fov_deg``: a fixed horizontal field of view; None: a Kinect-like focal length drawn per
  room, 480-560 px at 640 px wide (NYU's Kinect has 518.86), which is 56-67 degrees.
  """
  height: int = 240
  width: int = 320
  num_train: int = 2000
  num_test: int = 200
  fov_deg: float | None = None


class SyntheticRooms(depth_builder.DepthBuilder):
  """Procedural indoor scenes with image and exact depth."""

  name = 'synthetic_rooms'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  BUILDER_CONFIGS = [
      SyntheticRoomsConfig(name='default', description='240x320, 2000 train / 200 test.'),
      SyntheticRoomsConfig(name='vga', height=480, width=640, num_train=500, num_test=100,
                           description='NYU-sized 480x640, 500 train / 100 test.'),
      # configs/demo.py: small enough to build and train on on a 2-core CPU in minutes.
      SyntheticRoomsConfig(name='demo', height=120, width=160, num_train=2000, num_test=200,
                           description='120x160, 2000 train / 200 test, for configs/demo.py.'),
      SyntheticRoomsConfig(name='tiny', height=64, width=80, num_train=16, num_test=8,
                           description='64x80, 16 train / 8 test, for tests.'),
      # demo's test rooms, seen by cameras narrower and wider than its training camera (the
      # same seeds: the same rooms and poses), for the camera transform's benchmark.
      SyntheticRoomsConfig(name='demo_fov40', height=120, width=160, num_train=0, num_test=200,
                           fov_deg=40.0, description="demo's 200 test rooms at 40 degrees."),
      SyntheticRoomsConfig(name='demo_fov90', height=120, width=160, num_train=0, num_test=200,
                           fov_deg=90.0, description="demo's 200 test rooms at 90 degrees."),
  ]
  DEFAULT_CONFIG_NAME = 'default'

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__.splitlines()[0],
        features=depth_builder.depth_features(config.height, config.width, image_format='png'),
        supervised_keys=('image', 'depth'),
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # everything is generated
    config = self.builder_config
    counts = {'train': config.num_train, 'test': config.num_test}
    return {split: self._generate_examples(split, n) for split, n in counts.items() if n}

  def _generate_examples(self, split: str, num_examples: int):
    config = self.builder_config
    jobs = [((_SPLIT_IDS[split], i), config.height, config.width, config.fov_deg)
            for i in range(num_examples)]
    if num_examples < _MIN_EXAMPLES_FOR_POOL or (os.cpu_count() or 1) == 1:
      results = map(_render, jobs)
      yield from _examples(split, results)
      return
    # 'spawn': the parent holds TensorFlow's threads, which fork() does not copy safely.
    with multiprocessing.get_context('spawn').Pool(os.cpu_count()) as pool:
      yield from _examples(split, pool.imap(_render, jobs, chunksize=8))


def _render(job):
  return rooms_render.render_example(*job)


def _examples(split, results):
  for index, (image, depth, focal) in enumerate(results):
    yield index, {
        'image': image,
        'depth': depth.astype('float16'),
        'focal': focal,
        'name': f'{split}/{index:06d}',
    }
