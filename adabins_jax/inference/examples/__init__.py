"""The web app's example photos: rooms rendered by this project, so no third party's pictures.

The JPEGs beside this file are rooms of the project's own renderer, the one behind the
``synthetic_rooms`` dataset (``adabins_jax/datasets/rooms``), drawn from seeds the dataset's
splits never use (its train and test rooms are ``(0, i)`` and ``(1, i)``), at 640x480 through
NYU's Kinect focal length, the camera an indoor model assumes for a photo without EXIF. Made
by the project, they ship under its licence. The app (``adabins_jax.inference.app``) offers
them as clickable examples; regenerate them, the same pixels every run, with::

  python -m adabins_jax.inference.examples              # rewrites the shipped files
  python -m adabins_jax.inference.examples --out=DIR    # or writes them into DIR

Imports no renderer, and so nothing of the datasets, until one is rendered.
"""

from __future__ import annotations

import math
import os
import pathlib

import numpy as np

# File stem -> the renderer's seed, (id, index): rooms picked by eye for furniture at several
# depths. Id 2 follows synthetic_rooms' split ids (train 0, test 1), so no model has seen them.
EXAMPLES = {
    'study': (2, 10),
    'dining_room': (2, 11),
    'tiled_room': (2, 7),
}
HEIGHT, WIDTH = 480, 640
# The three files take about 170 KB.
JPEG_QUALITY = 90
FOLDER = pathlib.Path(__file__).resolve().parent


def paths(folder: str | os.PathLike = FOLDER) -> list[str]:
  """The example files in ``folder`` (default: the shipped ones), in ``EXAMPLES``' order."""
  return [os.path.join(os.fspath(folder), f'{name}.jpg') for name in EXAMPLES]


def fov_deg() -> float:
  """The horizontal field of view of NYU's Kinect (518.86 px at 640 px), about 63.3 degrees."""
  from adabins_jax.datasets import nyu  # pylint: disable=g-import-not-at-top
  return math.degrees(2 * math.atan(nyu.FRAME_HW[1] / 2 / nyu.INTRINSICS[0]))


def render(name: str) -> np.ndarray:
  """The (480, 640, 3) uint8 picture of the example ``name`` (a key of ``EXAMPLES``)."""
  # pylint: disable-next=g-import-not-at-top
  from adabins_jax.datasets.rooms import render as rooms_render
  image, _, _ = rooms_render.render_example(EXAMPLES[name], HEIGHT, WIDTH, fov_deg())
  return image


def write(folder: str | os.PathLike = FOLDER) -> list[str]:
  """Renders every example into ``folder`` (created if missing) as JPEG; returns the paths."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(folder, exist_ok=True)
  written = paths(folder)
  for name, path in zip(EXAMPLES, written):
    Image.fromarray(render(name)).save(path, quality=JPEG_QUALITY, optimize=True)
  return written
