"""Tests for adabins_jax.inference.input_files: output names never collide; literal names
stay literal (docs/training.md, "What happens when things go wrong").
"""

import pathlib

import numpy as np
from PIL import Image

from adabins_jax.inference import input_files


def _image(path, seed=0, size=(40, 50)):
  rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)
  return path


def test_output_names_are_unique_for_every_input():
  names = input_files.output_names([pathlib.Path(p) for p in (
      'in/x.png', 'in/x.jpg', 'in/a/x.png', 'in/b/x.png', 'in/a_x.png', 'in/Y.png', 'in/y.jpg',
      'in/kitchen.jpg')])
  assert len({n.casefold() for n in names}) == len(names), names
  assert names[-1] == 'kitchen'  # Short where nothing collides.
  assert names[:2] == ['x_png', 'x_jpg']
  assert names[3] == 'b_x'


def test_an_existing_name_is_literal_and_lists_take_any_name(tmp_path):
  literal = _image(tmp_path / 'img[1].jpg')
  _image(tmp_path / 'img1.jpg', 1)
  paths, problems = input_files.find_images(str(literal))
  assert paths == [literal] and not problems
  comma = _image(tmp_path / 'a,b.png', 2)
  paths, _ = input_files.find_images([str(comma)])
  assert paths == [comma]
  listing = tmp_path / 'list.txt'
  listing.write_text(f'# my photos\n{comma}\n\n{literal}\n')
  paths, problems = input_files.find_images(
      [], literal=input_files.read_input_list(listing))
  assert paths == [comma, literal] and not problems
