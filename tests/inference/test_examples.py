"""The web app's example photos: shipped, small, and what the project's renderer draws."""

import os
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from adabins_jax.inference import examples


def _pixels(path) -> np.ndarray:
  with Image.open(path) as picture:
    return np.asarray(picture.convert('RGB'), np.int16)


def test_the_examples_are_small_jpegs_in_the_package():
  paths = examples.paths()
  assert [os.path.basename(p) for p in paths] == ['study.jpg', 'dining_room.jpg',
                                                  'tiled_room.jpg']
  for path in paths:
    with Image.open(path) as picture:
      assert picture.format == 'JPEG' and picture.size == (640, 480), path
  assert sum(os.path.getsize(p) for p in paths) < 300_000


def test_the_examples_are_the_renderers_rooms(tmp_path):
  # Rendered again from their seeds; the JPEG's rounding is all that differs.
  written = examples.write(tmp_path / 'new')
  for shipped, again in zip(examples.paths(), written):
    assert np.abs(_pixels(again) - _pixels(shipped)).mean() < 0.5, shipped
  picture = examples.render('study')
  assert picture.shape == (480, 640, 3) and picture.dtype == np.uint8
  assert np.abs(picture - _pixels(examples.paths()[0])).mean() < 3  # JPEG at quality 90
  assert examples.fov_deg() == pytest.approx(63.33, abs=0.01)  # NYU's Kinect


@pytest.mark.slow  # Subprocess: the documented command in a child process.
def test_the_command_writes_the_examples(tmp_path):
  done = subprocess.run([sys.executable, '-m', 'adabins_jax.inference.examples',
                         f'--out={tmp_path}'], capture_output=True, text=True, timeout=120,
                        check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert sorted(os.listdir(tmp_path)) == ['dining_room.jpg', 'study.jpg', 'tiled_room.jpg']
  assert done.stdout.split() == examples.paths(tmp_path)
