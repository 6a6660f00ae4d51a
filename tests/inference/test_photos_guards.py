"""Tests that photos.py applies one rule to files, PIL images and arrays alike."""

import numpy as np
from PIL import Image
import pytest

from adabins_jax import network_input
from adabins_jax.configs import smoke
from adabins_jax.inference import photos


def test_an_empty_pil_image_is_refused_by_name():
  with pytest.raises(ValueError, match='at least one pixel; got 0x5'):
    photos.as_rgb(Image.new('RGB', (0, 5)))


def test_network_size_of_an_empty_image_is_a_named_error():
  with pytest.raises(ValueError, match='it is empty'):
    network_input.network_size((0, 7), smoke.get_config())


@pytest.mark.parametrize('image', [
    Image.fromarray(np.full((4, 4), 200, np.int32), mode='I'),
    np.full((4, 4), 200, np.int32)], ids=['pil', 'array'])
def test_32_bit_integer_images_are_refused_alike(image):
  with pytest.raises(ValueError, match='32-bit integer image'):
    photos.as_rgb(image)


def test_a_32_bit_integer_file_is_refused(tmp_path):
  Image.fromarray(np.full((4, 4), 200, np.int32), mode='I').save(tmp_path / 'i.tif')
  with pytest.raises(ValueError, match='i.tif: not a readable image.*32-bit integer'):
    photos.read_image(tmp_path / 'i.tif')


@pytest.mark.parametrize('image', [
    Image.fromarray(np.array([[0.5, np.nan]], np.float32), mode='F'),
    np.array([[0.5, np.nan]], np.float32)], ids=['pil', 'array'])
def test_nan_images_are_refused_alike(image):
  with pytest.raises(ValueError, match='finite'):
    photos.as_rgb(image)


def test_16_bit_and_float_pictures_still_read():
  grey16 = Image.fromarray(np.array([[0, 65535]], np.uint16))
  np.testing.assert_allclose(photos.as_rgb(grey16)[0, :, 0], [0.0, 1.0])
  floats = Image.fromarray(np.array([[0.25, 0.5]], np.float32), mode='F')
  np.testing.assert_allclose(photos.as_rgb(floats)[0, :, 0], [0.25, 0.5])
