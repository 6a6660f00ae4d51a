"""Colour maps, comparison strips and PNG output."""

import numpy as np
import pytest
from PIL import Image

from adabins_jax import visualize


def test_colorize_endpoints_saturation_and_invalid_pixels():
  depth = np.array([[1.0, 9.0, 5.0, 0.5], [20.0, np.nan, 0.0, -3.0]])
  rgb = visualize.colorize_depth(depth[..., None], vmin=1.0, vmax=9.0)
  table = visualize.colormap('turbo')
  assert rgb.shape == (2, 4, 3) and rgb.dtype == np.uint8
  np.testing.assert_array_equal(rgb[0, 0], table[0])
  np.testing.assert_array_equal(rgb[0, 1], table[255])
  np.testing.assert_array_equal(rgb[0, 2], table[128])  # 127.5 rounds to even
  np.testing.assert_array_equal(rgb[0, 3], table[0])  # below vmin saturates
  np.testing.assert_array_equal(rgb[1, 0], table[255])  # above vmax saturates
  np.testing.assert_array_equal(rgb[1, 1:], 0)  # NaN, 0 and negative depths are black
  with pytest.raises(ValueError, match='vmax > vmin'):
    visualize.colorize_depth(depth, 2.0, 2.0)
  with pytest.raises(ValueError, match='Unknown colour map'):
    visualize.colorize_depth(depth, 1.0, 2.0, cmap='jet')


@pytest.mark.parametrize('name, first, last', [
    ('viridis', (68, 1, 84), (253, 231, 37)),  # matplotlib's own end colours
    ('magma', (0, 0, 4), (252, 253, 191)),
])
def test_polynomial_maps_end_near_matplotlib(name, first, last):
  table = visualize.colormap(name).astype(int)
  assert table.shape == (256, 3)
  # The fits' maximum error is about 2% of full scale.
  np.testing.assert_allclose(table[0], first, atol=6)
  np.testing.assert_allclose(table[-1], last, atol=6)
  # Both maps brighten monotonically; a wrong coefficient breaks that quickly.
  luma = table @ np.array([0.299, 0.587, 0.114])
  assert np.all(np.diff(luma) > -1.0)


def test_turbo_runs_blue_green_red():
  table = visualize.colormap('turbo').astype(int)
  blue_peak, green_peak, red_peak = table[:, 2].argmax(), table[:, 1].argmax(), table[:, 0].argmax()
  assert blue_peak < 64 < green_peak < 160 < red_peak < 200
  assert table[0].sum() < 100 and table[-1, 0] > 4 * table[-1, 2]  # dark ends, the last red
  assert table[128, 1] > 200  # bright green-yellow in the middle


def test_comparison_strip_layout():
  n, h, w = 2, 6, 8
  colour = np.array([0.5, 0.25, 1.0], np.float32)
  images = np.broadcast_to((colour - visualize.IMAGENET_MEAN) / visualize.IMAGENET_STD,
                           (n, h // 2, w // 2, 3))
  gt = np.full((n, h, w, 1), 4.0, np.float32)
  gt[:, 0, 0] = 0.0  # no ground truth here
  preds = np.full((n, h // 2, w // 2), 4.0, np.float32)  # perfect, at half resolution
  strip = visualize.comparison_strip(images, gt, preds, vmin=1.0, vmax=9.0)
  assert strip.shape == (n * h, 4 * w, 3) and strip.dtype == np.uint8
  np.testing.assert_array_equal(strip[:h, :w], np.broadcast_to([128, 64, 255], (h, w, 3)))
  depth_colour = visualize.colorize_depth(np.array([[4.0]]), 1.0, 9.0)[0, 0]
  np.testing.assert_array_equal(strip[h + 1, w + 1], depth_colour)  # gt panel, second row
  np.testing.assert_array_equal(strip[h + 1, 2 * w + 1], depth_colour)  # prediction panel
  error = strip[h:, 3 * w:]
  np.testing.assert_array_equal(error[0, 0], 0)  # no ground truth: black
  np.testing.assert_array_equal(error[1, 1], visualize.colormap('magma')[0])  # zero error


def test_png_round_trips(tmp_path):
  grey16 = np.array([[0, 1, 255], [256, 40000, 65535]], np.uint16)
  visualize.save_png(tmp_path / 'sub' / 'depth.png', grey16)
  back = np.asarray(Image.open(tmp_path / 'sub' / 'depth.png'))
  np.testing.assert_array_equal(back, grey16)
  rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
  visualize.save_png(tmp_path / 'rgb.png', rgb)
  picture = Image.open(tmp_path / 'rgb.png')
  assert picture.mode == 'RGB'
  np.testing.assert_array_equal(np.asarray(picture), rgb)
  with pytest.raises(ValueError, match='float32'):
    visualize.save_png(tmp_path / 'bad.png', np.zeros((2, 2), np.float32))


def test_depth_to_uint16():
  depth = np.array([0.0, 1.2345, np.nan, 70.0, -1.0])
  np.testing.assert_array_equal(visualize.depth_to_uint16(depth), [0, 1234, 0, 65535, 0])
