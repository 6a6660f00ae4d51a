"""Colour maps, comparison strips (titles, colour bars) and PNG output."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

from adabins_jax import annotate
from adabins_jax import network_input
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
  images = np.broadcast_to(network_input.normalize(colour), (n, h // 2, w // 2, 3))
  gt = np.full((n, h, w, 1), 4.0, np.float32)
  gt[:, 0, 0] = 0.0  # no ground truth here
  preds = np.full((n, h // 2, w // 2), 4.0, np.float32)  # perfect, at half resolution
  strip = visualize.comparison_strip(images, gt, preds, vmin=1.0, vmax=9.0, labels=False)
  assert strip.shape == (n * h, 4 * w, 3) and strip.dtype == np.uint8
  np.testing.assert_array_equal(strip[:h, :w], np.broadcast_to([128, 64, 255], (h, w, 3)))
  depth_colour = visualize.colorize_depth(np.array([[4.0]]), 1.0, 9.0)[0, 0]
  np.testing.assert_array_equal(strip[h + 1, w + 1], depth_colour)  # gt panel, second row
  np.testing.assert_array_equal(strip[h + 1, 2 * w + 1], depth_colour)  # prediction panel
  error = strip[h:, 3 * w:]
  np.testing.assert_array_equal(error[0, 0], 0)  # no ground truth: black
  np.testing.assert_array_equal(error[1, 1], visualize.colormap('magma')[0])  # zero error


def _panel_rows(labelled, bare):
  """The first row at which ``bare`` sits, unchanged and full width, inside ``labelled``."""
  assert labelled.shape[1] == bare.shape[1] and labelled.shape[0] > bare.shape[0]
  for top in range(labelled.shape[0] - bare.shape[0] + 1):
    if np.array_equal(labelled[top:top + len(bare)], bare):
      return top
  raise AssertionError('the unlabelled panels are not found in the labelled picture')


def _bar_indices(band, columns, cmap):
  """Colour-table indices along the centre line of the colour bar in ``band[:, columns]``."""
  table = visualize.colormap(cmap)
  band = band[:, columns[0]:columns[1]]
  in_table = (band[:, :, None, :] == table[None, None]).all(-1)  # (rows, cols, 256)
  bar_rows = np.flatnonzero(in_table.any(-1).mean(1) > 0.5)
  assert len(bar_rows) >= 3 and np.all(np.diff(bar_rows) == 1), bar_rows
  centre = in_table[bar_rows[len(bar_rows) // 2]]
  on_bar = np.flatnonzero(centre.any(-1))
  assert np.all(np.diff(on_bar) == 1)  # one unbroken run of table colours
  return centre[on_bar].argmax(-1)  # the first entry of that colour


def _assert_runs_through(indices):
  assert indices[0] == 0 and indices[-1] == 255
  assert np.all(np.diff(indices) >= 0)  # vmin to vmax, never back


def _has_text(band):
  return band.min() < 100 and band.max() > 200  # dark ink on the light background


def test_comparison_strip_titles_bars_and_unchanged_panels():
  n, h, w = 2, 30, 64
  rng = np.random.default_rng(0)
  images = rng.normal(size=(n, h, w, 3)).astype(np.float32)
  gt = rng.uniform(0.5, 10.0, (n, h, w)).astype(np.float32)
  preds = rng.uniform(0.5, 10.0, (n, h // 2, w // 2)).astype(np.float32)
  bare = visualize.comparison_strip(images, gt, preds, 0.0, 10.0, labels=False)
  strip = visualize.comparison_strip(images, gt, preds, 0.0, 10.0)
  top = _panel_rows(strip, bare)
  header, band = strip[:top], strip[top + n * h:]
  assert top >= 8 and len(band) >= 8 and strip.dtype == np.uint8
  for column in range(4):  # every column has its title
    assert _has_text(header[:, column * w:(column + 1) * w])
  _assert_runs_through(_bar_indices(band, (w, 3 * w), 'turbo'))  # under both depth columns
  _assert_runs_through(_bar_indices(band, (3 * w, 4 * w), visualize.ERROR_CMAP))
  assert _has_text(band[:, w:3 * w]) and _has_text(band[:, 3 * w:])  # ticks and captions
  assert not _has_text(band[:, :w])  # nothing under the input


def test_prediction_strip_titles_bar_and_unchanged_panels():
  h, w = 40, 52
  rgb = np.random.default_rng(1).integers(0, 256, (h, w, 3), np.uint8)
  colour = visualize.colorize_depth(np.linspace(1.0, 3.0, h * w).reshape(h, w), 1.2, 2.9,
                                    'viridis')
  strip = visualize.prediction_strip(rgb, colour, 1.2, 2.9, cmap='viridis')
  top = _panel_rows(strip, np.concatenate([rgb, colour], axis=1))
  assert _has_text(strip[:top, :w]) and _has_text(strip[:top, w:])
  band = strip[top + h:]
  _assert_runs_through(_bar_indices(band, (w, 2 * w), 'viridis'))
  with pytest.raises(ValueError, match='differ in shape'):
    visualize.prediction_strip(rgb, colour[:, 1:], 1.2, 2.9)


def test_labels_survive_panels_too_small_for_text():
  images = np.zeros((1, 4, 4, 3), np.float32)
  gt = np.full((1, 6, 8), 4.0, np.float32)
  strip = visualize.comparison_strip(images, gt, gt[:, ::2, ::2], 1.0, 9.0)
  bare = visualize.comparison_strip(images, gt, gt[:, ::2, ::2], 1.0, 9.0, labels=False)
  assert _panel_rows(strip, bare) > 0


@pytest.mark.parametrize('vmin, vmax, labels', [
    (0.0, 10.0, ['0', '2.5', '5', '7.5', '10']),
    (1e-3, 10.0, ['0', '2.5', '5', '7.5', '10']),  # 1 mm is labelled 0
    (0.0, 0.5, ['0', '0.25', '0.5']),  # reaching both ends wins over 0, 0.2, 0.4
    (1.234, 3.567, ['1.5', '2', '2.5', '3', '3.5']),
    (0.5, 80.0, ['20', '40', '60', '80']),
])
def test_tick_labels(vmin, vmax, labels):
  best = annotate.tick_options(vmin, vmax)[0]
  assert [annotate.format_tick(t) for t in best] == labels


def test_nearly_flat_range_falls_back_to_distinct_end_labels():
  # What write_outputs' per-image range gives a flat map.
  assert annotate.tick_options(2.0, 2.0 * (1 + 1e-6) + 1e-6) == [[2.0]]
  assert annotate.tick_options(2.0, 2.01)[-1] == [2.0, 2.01]


def test_label_panels_checks_its_arguments():
  panels = np.zeros((4, 9, 3), np.uint8)
  bar = annotate.ColourBar((0, 0), visualize.colormap('turbo'), 0.0, 1.0, 'm')
  with pytest.raises(ValueError, match='2 titles for a width of 9'):
    annotate.label_panels(panels, ['a', 'b'])
  with pytest.raises(ValueError, match='outside 0..2'):
    annotate.label_panels(panels, ['a', 'b', 'c'], [dataclasses.replace(bar, columns=(1, 3))])
  with pytest.raises(ValueError, match='vmax > vmin'):
    annotate.label_panels(panels, ['a', 'b', 'c'], [dataclasses.replace(bar, vmin=1.0)])
  assert annotate.label_panels(panels, ['a', 'b', 'c']).shape[0] > 4  # titles only


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
