"""Tests for adabins_jax.inference.photos: an image too large to decode is refused by name."""

import numpy as np
from PIL import Image
import pytest

from adabins_jax.inference import photos


def _image(path, seed=0, size=(40, 50)):
  rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)
  return path


def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
  # Pillow refuses images over twice MAX_IMAGE_PIXELS; a smaller limit makes a small bomb.
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
  _image(tmp_path / 'bomb.png', size=(100, 100))
  with pytest.raises(ValueError, match='bomb.png: not a readable image'):
    photos.read_image(tmp_path / 'bomb.png')
