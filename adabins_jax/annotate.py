"""Titles and colour bars around a row of picture panels, drawn with Pillow's default font.

``label_panels`` adds a header band of column titles above the panels and a band of colour
bars below them. The panels' pixels are copied unchanged, so a picture read back can still be
compared with the numbers it shows. No font file and no matplotlib: ``ImageFont.load_default``
scales (Pillow >= 10.1 with FreeType) or falls back to its one bitmap size.
"""

from __future__ import annotations

from collections.abc import Sequence
import dataclasses
import functools
import math

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)
# Text size in pixels: the square root of a panel's width (13 for 160, 25 for 640), so that
# small panels keep legible text and large ones are not dwarfed by it; within these bounds.
_MIN_FONT_PX, _MAX_FONT_PX = 9, 48
# Smallest size a title or caption shrinks to before it is clipped instead.
_SMALLEST_FONT_PX = 7
# Tick spacings tried, as multiples of a power of ten.
_NICE_STEPS = (1.0, 2.0, 2.5, 5.0)


@dataclasses.dataclass(frozen=True)
class ColourBar:
  """A horizontal colour bar in the band under panel columns ``columns[0]`` .. ``columns[1]``.

  Attributes:
    columns: first and last panel column (inclusive) the bar spans.
    table: (256, 3) uint8 colour table: entry 0 shows ``vmin``, entry 255 ``vmax``.
    vmin: value of the first colour.
    vmax: value of the last colour.
    caption: what the values are, with their unit, written under the tick labels.
  """
  columns: tuple[int, int]
  table: np.ndarray
  vmin: float
  vmax: float
  caption: str


@functools.cache
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
  """Pillow's default font at ``size`` pixels, or its bitmap font where it cannot scale."""
  try:
    return ImageFont.load_default(size)
  except TypeError:  # Pillow < 10.1 has one bitmap size only.
    return ImageFont.load_default()


def _width(text: str, size: int) -> int:
  left, _, right, _ = font(size).getbbox(text)
  return right - left


def _line_height(size: int) -> int:
  # Down to the descenders' bottom, measured from where the text is drawn.
  return font(size).getbbox('Hgy0|')[3]


def _fitting_size(texts: Sequence[str], width: int, size: int) -> int:
  """The largest size up to ``size`` at which every text fits ``width``."""
  while size > _SMALLEST_FONT_PX and any(_width(t, size) > width for t in texts):
    size -= 1
  return size


def _draw_centred(picture: Image.Image, text: str, box: tuple[int, int, int, int],
                  size: int) -> None:
  """Draws ``text`` centred in ``box`` (left, top, right, bottom), clipped to it."""
  left, top, right, bottom = box
  cell = Image.new('RGB', (right - left, bottom - top), BACKGROUND)
  f = font(size)
  bbox_left, _, bbox_right, _ = f.getbbox(text)
  x = ((right - left) - (bbox_right - bbox_left)) / 2 - bbox_left
  y = ((bottom - top) - _line_height(size)) / 2
  ImageDraw.Draw(cell).text((round(x), round(y)), text, font=f, fill=_INK)
  picture.paste(cell, (left, top))


def format_tick(value: float) -> str:
  """A tick label: at most three significant digits, no trailing zeros ('0', '2.5', '0.25')."""
  return np.format_float_positional(float(value) + 0.0, precision=3, unique=True,
                                    fractional=False, trim='-')


def tick_options(vmin: float, vmax: float) -> list[list[float]]:
  """Evenly spaced round values in [vmin, vmax], best first: the lists to try as ticks.

  Lists of 3 to 5 values, more values first and, among equals, those that reach both ends;
  last, the two ends themselves (one where they read the same) for a bar too short for any.
  A tick may lie a thousandth of the range outside, so that a range from 1 mm is labelled
  from 0.
  """
  span = vmax - vmin
  tolerance = 1e-3 * span
  options = []
  exponent = math.floor(math.log10(span)) - 1
  for e in (exponent, exponent + 1):
    for multiple in _NICE_STEPS:
      step = multiple * 10.0 ** e
      first = math.ceil((vmin - tolerance) / step)
      last = math.floor((vmax + tolerance) / step)
      ticks = [k * step for k in range(first, last + 1)]
      # Three significant digits cannot tell apart the ticks of a nearly flat range.
      if 3 <= len(ticks) <= 5 and len({format_tick(t) for t in ticks}) == len(ticks):
        reached = (abs(ticks[0] - vmin) <= tolerance) + (abs(ticks[-1] - vmax) <= tolerance)
        options.append((-len(ticks), -reached, ticks))
  options.sort(key=lambda o: o[:2])
  ends = [vmin, vmax] if format_tick(vmin) != format_tick(vmax) else [vmin]
  return [ticks for _, _, ticks in options] + [ends]


@dataclasses.dataclass(frozen=True)
class _BandLayout:
  """Vertical positions in the colour-bar band, in pixels from its top."""
  size: int  # font size of the tick labels

  @property
  def pad(self) -> int:
    return max(2, self.size // 3)

  @property
  def bar(self) -> tuple[int, int]:
    return self.pad, self.pad + max(6, self.size)

  @property
  def labels_top(self) -> int:
    return self.bar[1] + max(2, self.size // 3)  # below the tick marks

  @property
  def caption_top(self) -> int:
    return self.labels_top + _line_height(self.size) + self.pad // 2

  @property
  def height(self) -> int:
    return self.caption_top + _line_height(self.size) + self.pad


def _bar_extent(bar: ColourBar, panel_width: int, size: int) -> tuple[int, int, int, int]:
  """(span left, span right, bar left, bar length) in pixels."""
  span_left, span_right = bar.columns[0] * panel_width, (bar.columns[1] + 1) * panel_width
  margin = min(max(3, size // 2), (span_right - span_left) // 8)
  return span_left, span_right, span_left + margin, span_right - span_left - 2 * margin


def _tick_labels(bar: ColourBar, extent, size: int) -> list[tuple[float, str, int]]:
  """(value, label, left x) of the ticks: the best option whose labels do not touch.

  Labels are kept inside the bar's span, so that neighbouring bars' labels never mix. A bar
  too short even for its two ends gets none.
  """
  span_left, span_right, x0, length = extent
  gap = max(3, size // 2)
  for ticks in tick_options(bar.vmin, bar.vmax):
    placed = []
    for value in ticks:
      label = format_tick(value)
      width = _width(label, size)
      centre = x0 + _fraction(bar, value) * (length - 1)
      left = round(min(max(centre - width / 2, span_left), span_right - width))
      if placed and left < placed[-1][2] + _width(placed[-1][1], size) + gap:
        break
      placed.append((value, label, left))
    else:
      return placed
  return []


def _fraction(bar: ColourBar, value: float) -> float:
  return min(max((value - bar.vmin) / (bar.vmax - bar.vmin), 0.0), 1.0)


def _draw_bar(picture: Image.Image, bar: ColourBar, panel_width: int,
              layout: _BandLayout) -> tuple[int, int]:
  """Draws one bar's ticks, labels and caption; returns (bar left, length) to colour in."""
  extent = _bar_extent(bar, panel_width, layout.size)
  span_left, span_right, x0, length = extent
  draw = ImageDraw.Draw(picture)
  f = font(layout.size)
  for value, label, left in _tick_labels(bar, extent, layout.size):
    x = round(x0 + _fraction(bar, value) * (length - 1))
    draw.line([(x, layout.bar[1]), (x, layout.labels_top - 1)], fill=_INK)
    draw.text((left - f.getbbox(label)[0], layout.labels_top), label, font=f, fill=_INK)
  caption_size = _fitting_size([bar.caption], span_right - span_left, layout.size)
  _draw_centred(picture, bar.caption, (span_left, layout.caption_top, span_right,
                                       layout.caption_top + _line_height(layout.size)),
                caption_size)
  return x0, length


def _colour_bar_band(bars: Sequence[ColourBar], panel_width: int, total_width: int,
                     size: int) -> np.ndarray:
  layout = _BandLayout(size)
  picture = Image.new('RGB', (total_width, layout.height), BACKGROUND)
  extents = [(bar, _draw_bar(picture, bar, panel_width, layout)) for bar in bars]
  band = np.array(picture)
  top, bottom = layout.bar
  for bar, (x0, length) in extents:
    # Exact table entries, end to end: the first column is vmin's colour, the last vmax's.
    indices = np.round(np.linspace(0.0, 255.0, length)).astype(np.int64)
    band[top:bottom, x0:x0 + length] = np.asarray(bar.table, np.uint8)[indices]
  return band


def _header_band(titles: Sequence[str], panel_width: int, size: int) -> np.ndarray:
  size = _fitting_size(titles, panel_width - 2, size)
  height = _line_height(size) + 2 * max(2, size // 3)
  picture = Image.new('RGB', (panel_width * len(titles), height), BACKGROUND)
  for i, title in enumerate(titles):
    _draw_centred(picture, title, (i * panel_width, 0, (i + 1) * panel_width, height), size)
  return np.array(picture)


def label_panels(panels: np.ndarray, titles: Sequence[str],
                 bars: Sequence[ColourBar] = ()) -> np.ndarray:
  """Adds column titles above equal-width panels and colour bars below them.

  Args:
    panels: (H, len(titles) * W, 3) uint8: columns of width W side by side (any number of
      rows of panels stacked in H).
    titles: one title per column.
    bars: colour bars, each under the columns it describes; none leaves out the lower band.

  Returns:
    (header + H + band, len(titles) * W, 3) uint8, ``panels`` unchanged in its middle rows.
  """
  panels = np.asarray(panels)
  if panels.dtype != np.uint8 or panels.ndim != 3 or panels.shape[-1] != 3:
    raise ValueError(f'label_panels: expected uint8 (H, W, 3) panels, got {panels.dtype} '
                     f'{panels.shape}.')
  if not titles or panels.shape[1] % len(titles):
    raise ValueError(f'label_panels: {len(titles)} titles for a width of {panels.shape[1]}.')
  panel_width = panels.shape[1] // len(titles)
  for bar in bars:
    if not 0 <= bar.columns[0] <= bar.columns[1] < len(titles):
      raise ValueError(f'label_panels: bar columns {bar.columns} outside 0..{len(titles) - 1}.')
    if not (math.isfinite(bar.vmin) and math.isfinite(bar.vmax) and bar.vmax > bar.vmin):
      raise ValueError(f'label_panels: a colour bar needs finite vmax > vmin, got '
                       f'{bar.vmin}..{bar.vmax}.')
  size = int(np.clip(round(math.sqrt(panel_width)), _MIN_FONT_PX, _MAX_FONT_PX))
  parts = [_header_band(titles, panel_width, size), panels]
  if bars:
    parts.append(_colour_bar_band(bars, panel_width, panels.shape[1], size))
  return np.concatenate(parts, axis=0)
