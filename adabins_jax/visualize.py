"""Depth pictures for logs and predictions: colour maps, comparison strips, PNG output.

Host-side numpy only, no matplotlib: the colour maps are 256-entry tables generated from
published polynomial fits -- Turbo from Google's (Mikhailov / Du, Apache-2.0) degree-5 GLSL
approximation, viridis and magma from mattz's degree-6 fits to the matplotlib maps (CC0).
"""

from __future__ import annotations

import functools
import os

import numpy as np
from PIL import Image

from adabins_jax import annotate
from adabins_jax import files
from adabins_jax import network_input
from adabins_jax import metrics

# Polynomial coefficients, lowest degree first; one row per power, columns R, G, B.
_POLYNOMIALS = {
    'turbo': np.array([
        [0.13572138, 0.09140261, 0.10667330],
        [4.61539260, 2.19418839, 12.64194608],
        [-42.66032258, 4.84296658, -60.58204836],
        [132.13108234, -14.18503333, 110.36276771],
        [-152.94239396, 4.27729857, -89.90310912],
        [59.28637943, 2.82956604, 27.34824973],
    ]),
    'viridis': np.array([
        [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
        [0.1050930431085774, 1.404613529898575, 1.384590162594685],
        [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
        [-4.634230498983486, -5.799100973351585, -19.33244095627987],
        [6.228269936347081, 14.17993336680509, 56.69055260068105],
        [4.776384997670288, -13.74514537774601, -65.35303263337234],
        [-5.435455855934631, 4.645852612178535, 26.3124352495832],
    ]),
    'magma': np.array([
        [-0.002136485053939582, -0.000749655052795221, -0.005386127855323933],
        [0.2516605407371642, 0.6775232436837668, 2.494026599312351],
        [8.353717279216625, -3.577719514958484, 0.3144679030132573],
        [-27.66873308576866, 14.26473078096533, -13.64921318813922],
        [52.17613981234068, -27.94360607168351, 12.94416944238394],
        [-50.76852536473588, 29.04658282127291, 4.23415299384598],
        [18.65570506591883, -11.48977351997711, -5.601961508734096],
    ]),
}
COLORMAPS = tuple(_POLYNOMIALS)


@functools.cache
def colormap(name: str = 'turbo') -> np.ndarray:
  """The (256, 3) uint8 table of colour map ``name`` ('turbo', 'viridis' or 'magma')."""
  if name not in _POLYNOMIALS:
    raise ValueError(f'Unknown colour map {name!r}; choose one of {COLORMAPS}.')
  coeffs = _POLYNOMIALS[name]
  x = np.linspace(0.0, 1.0, 256)
  powers = x[:, None] ** np.arange(len(coeffs))[None, :]
  table = np.round(np.clip(powers @ coeffs, 0.0, 1.0) * 255.0).astype(np.uint8)
  table.flags.writeable = False
  return table


def colorize_depth(depth: np.ndarray, vmin: float, vmax: float,
                   cmap: str = 'turbo') -> np.ndarray:
  """Maps depth to colour: ``vmin`` to the first table entry, ``vmax`` to the last.

  Values outside [vmin, vmax] saturate; invalid pixels (NaN, inf, <= 0) are black.

  Args:
    depth: (H, W) or (H, W, 1) array (numpy or jax).
    vmin: depth shown with the first colour.
    vmax: depth shown with the last colour.
    cmap: colour map name, see ``COLORMAPS``.

  Returns:
    (H, W, 3) uint8 RGB.
  """
  depth = metrics.squeeze_channel('colorize_depth: depth', np.asarray(depth), 2).astype(np.float64)
  return _apply_colormap(depth, np.isfinite(depth) & (depth > 0), vmin, vmax, cmap)


def _apply_colormap(values: np.ndarray, valid: np.ndarray, vmin: float, vmax: float,
                    cmap: str) -> np.ndarray:
  if not vmax > vmin:
    raise ValueError(f'colour mapping needs vmax > vmin, got vmin={vmin}, vmax={vmax}.')
  t = np.clip((np.where(valid, values, vmin) - vmin) / (vmax - vmin), 0.0, 1.0)
  rgb = colormap(cmap)[np.round(t * 255.0).astype(np.int64)]
  return np.where(valid[..., None], rgb, 0).astype(np.uint8)


def unnormalize_image(image: np.ndarray) -> np.ndarray:
  """ImageNet-normalised (H, W, 3) float image -> uint8 RGB."""
  image = np.asarray(image, np.float32)
  if image.ndim != 3 or image.shape[-1] != 3:
    raise ValueError(f'unnormalize_image: expected (H, W, 3), got shape {image.shape}.')
  rgb = np.clip(network_input.denormalize(image), 0.0, 1.0)
  return np.round(rgb * 255.0).astype(np.uint8)


def _resize_nearest(x: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
  rows = np.arange(hw[0]) * x.shape[0] // hw[0]
  cols = np.arange(hw[1]) * x.shape[1] // hw[1]
  return x[rows][:, cols]


# Column titles of the two kinds of strip.
COMPARISON_TITLES = ('input', 'ground truth', 'prediction', 'error')
PREDICTION_TITLES = ('input', 'depth')
DEPTH_CAPTION = 'depth (m)'
ERROR_CAPTION = 'relative error |pred - gt| / gt'
# The error panel's colour map: dark for small errors, bright for large.
ERROR_CMAP = 'magma'


def depth_bar(vmin: float, vmax: float, cmap: str, columns: tuple[int, int]
              ) -> annotate.ColourBar:
  """The colour bar, in metres, of depth panels coloured by ``colorize_depth``."""
  return annotate.ColourBar(columns, colormap(cmap), vmin, vmax, DEPTH_CAPTION)


def comparison_strip(images: np.ndarray, gt: np.ndarray, preds: np.ndarray, vmin: float,
                     vmax: float, *, cmap: str = 'turbo', max_abs_rel: float = 0.5,
                     labels: bool = True) -> np.ndarray:
  """One picture with a row per example: [input, ground truth, prediction, abs-rel error].

  Every panel is shown at the ground truth's size (nearest-neighbour resampling). The error map
  is ``|pred - gt| / gt`` on valid ground truth, from 0 to ``max_abs_rel`` in magma; pixels
  without ground truth are black. With ``labels``, a header band names the columns and a band
  below holds the depth colour bar (metres, under both depth columns) and the error's.

  Args:
    images: (N, h, w, 3) ImageNet-normalised network inputs.
    gt: (N, H, W) or (N, H, W, 1) ground-truth depth.
    preds: (N, h', w') or (N, h', w', 1) predicted depth.
    vmin: depth of the first colour.
    vmax: depth of the last colour.
    cmap: colour map of the depth panels.
    max_abs_rel: relative error shown with the last colour of the error panel.
    labels: add the titles and colour bars; False gives the bare panels.

  Returns:
    (N * H, 4 * W, 3) uint8 RGB panels, plus the bands' rows above and below with ``labels``.
  """
  images = np.asarray(images)
  gt = metrics.squeeze_channel('comparison_strip: gt', np.asarray(gt), 3).astype(np.float32)
  preds = metrics.squeeze_channel('comparison_strip: preds', np.asarray(preds), 3)
  preds = preds.astype(np.float32)
  if not images.shape[0] == gt.shape[0] == preds.shape[0]:
    raise ValueError(f'comparison_strip: batch sizes differ: images {images.shape}, gt '
                     f'{gt.shape}, preds {preds.shape}.')
  hw = gt.shape[1:3]
  rows = []
  for image, g, p in zip(images, gt, preds):
    p = _resize_nearest(p, hw)
    valid = np.isfinite(g) & (g > 0)
    abs_rel = np.abs(p - g) / np.where(valid, g, 1.0)
    rows.append(np.concatenate([
        _resize_nearest(unnormalize_image(image), hw),
        colorize_depth(g, vmin, vmax, cmap),
        colorize_depth(p, vmin, vmax, cmap),
        _apply_colormap(abs_rel, valid & np.isfinite(abs_rel), 0.0, max_abs_rel, ERROR_CMAP),
    ], axis=1))
  panels = np.concatenate(rows, axis=0)
  if not labels:
    return panels
  error_bar = annotate.ColourBar((3, 3), colormap(ERROR_CMAP), 0.0, max_abs_rel, ERROR_CAPTION)
  return annotate.label_panels(panels, COMPARISON_TITLES,
                               [depth_bar(vmin, vmax, cmap, (1, 2)), error_bar])


def prediction_strip(rgb: np.ndarray, colour: np.ndarray, vmin: float, vmax: float, *,
                     cmap: str = 'turbo') -> np.ndarray:
  """[input | coloured depth] under the titles, with the depth's colour bar in metres below.

  Args:
    rgb: (H, W, 3) uint8 input image.
    colour: (H, W, 3) uint8 depth from ``colorize_depth(depth, vmin, vmax, cmap)``.
    vmin: depth of the first colour.
    vmax: depth of the last colour.
    cmap: the colour map ``colour`` was made with.

  Returns:
    (header + H + band, 2 * W, 3) uint8 RGB, the two panels unchanged in the middle rows.
  """
  if rgb.shape != colour.shape:
    raise ValueError(f'prediction_strip: image {rgb.shape} and depth colours {colour.shape} '
                     f'differ in shape.')
  return annotate.label_panels(np.concatenate([rgb, colour], axis=1), PREDICTION_TITLES,
                               [depth_bar(vmin, vmax, cmap, (1, 1))])


def depth_to_uint16(depth: np.ndarray, scale: float = 1000.0) -> np.ndarray:
  """Depth in metres -> uint16 (millimetres by default), 0 for invalid, saturating at 65535."""
  depth = np.asarray(depth, np.float64) * scale
  depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
  return np.round(np.clip(depth, 0, 65535)).astype(np.uint16)


def save_png(path: str | os.PathLike, array: np.ndarray) -> None:
  """Writes a PNG: uint8 (H, W, 3) RGB, uint8 (H, W) grey or uint16 (H, W) 16-bit grey.

  Creates the parent directory if needed; written atomically (``files.atomic_path``).
  """
  array = np.asarray(array)
  if array.dtype == np.uint8 and (array.ndim == 2 or (array.ndim == 3 and array.shape[-1] == 3)):
    picture = Image.fromarray(array)
  elif array.dtype == np.uint16 and array.ndim == 2:
    picture = Image.fromarray(array)  # mode 'I;16', written as a 16-bit grey PNG
  else:
    raise ValueError(f'save_png({os.fspath(path)!r}): expected uint8 (H, W, 3) / (H, W) or uint16 '
                     f'(H, W), got {array.dtype} {array.shape}.')
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with files.atomic_path(path) as temporary:
    picture.save(temporary, format='PNG')
