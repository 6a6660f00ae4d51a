"""The evaluation protocol: post-processing, crops, per-image depth metrics, accumulation.

The protocol is the AdaBins release's, described in docs/reference.md.

Metrics are computed per image (the reported number is a mean over images, not over pixels) in
jnp, so they run batched inside a jitted eval step. Means across batches and hosts are exact
because what leaves the step is a ``MetricSums`` of (sum, count): merging adds, ``compute``
divides once at the end. Images with no valid pixel and padding examples of the last batch are
excluded from both the sums and the count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax import errors
from adabins_jax.datasets import kitti
from adabins_jax.datasets import nyu
from adabins_jax.models.layers import resize_bilinear

METRIC_NAMES = ('d1', 'd2', 'd3', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log', 'log10', 'silog')
# The optional column of ``eval.boundary_metrics`` (``boundary_f1``).
BOUNDARY_NAME = 'boundary_f1'
# Depth Pro's thresholds on neighbouring pixels' depth ratio, and their weights in the mean:
# proportional to the threshold (its reference implementation's ``get_thresholds_and_weights``).
BOUNDARY_THRESHOLDS = np.linspace(1.05, 1.25, 10)
BOUNDARY_WEIGHTS = BOUNDARY_THRESHOLDS / BOUNDARY_THRESHOLDS.sum()
# Depth is clipped to this before inversion, as the reference does, so 0 (invalid) is finite.
_INVERSE_EPS = 1e-6
CROPS = ('eigen', 'garg', 'none')
# The largest original-frame side ``source_frame_crop_masks`` handles.
MAX_SOURCE_FRAME_SIDE = 8192


def squeeze_channel(name: str, x, ndim: int):
  """``x`` without a trailing channel axis of size 1, checked to have ``ndim`` dimensions.

  Depth maps come as (..., H, W) or (..., H, W, 1); this gives (..., H, W) either way.

  Args:
    name: Names ``x`` in the error message.
    x: A numpy or jax array (under jit too: only its static shape is read).
    ndim: The dimensions wanted, without the channel axis.

  Raises:
    ValueError: ``x`` has another rank.
  """
  if x.ndim == ndim + 1 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != ndim:
    raise ValueError(f'{name}: expected {ndim} dims (plus an optional trailing 1), got shape '
                     f'{x.shape}.')
  return x


def crop_mask(shape: Sequence[int], crop: str) -> np.ndarray:
  """Boolean (H, W) mask of the pixels the protocol's crop keeps.

  Args:
    shape: the ground truth's (H, W).
    crop: 'eigen' (NYU, needs a 480x640 image), 'garg' (KITTI, relative to the size) or 'none'.

  Returns:
    A numpy bool array, a compile-time constant under jit.
  """
  h, w = (int(s) for s in shape[:2])
  mask = np.zeros((h, w), bool)
  if crop == 'none':
    mask[:] = True
  elif crop == 'eigen':
    if (h, w) != nyu.FRAME_HW:
      raise ValueError(f"crop='eigen' is defined on 480x640 NYU frames; got ground truth of size "
                       f"{h}x{w}. Use crop='none' (or 'garg' for KITTI) for other sizes.")
    mask[slice(*nyu.EIGEN_CROP_ROWS), slice(*nyu.EIGEN_CROP_COLS)] = True
  elif crop == 'garg':
    rows, cols = kitti.garg_crop(h, w)
    mask[slice(*rows), slice(*cols)] = True
  else:
    raise ValueError(f'crop must be one of {CROPS}, got {crop!r}.')
  return mask


def _bound_table(fraction: float) -> np.ndarray:
  """``int(fraction * n)`` for every side n up to MAX_SOURCE_FRAME_SIDE, in float64 as the
  release computes it: exact, where float32 arithmetic under jit can land one pixel off."""
  return (np.arange(MAX_SOURCE_FRAME_SIDE + 1) * fraction).astype(np.int32)


def source_frame_crop_masks(shape: Sequence[int], crop: str,
                            source_frame: jax.Array) -> jax.Array:
  """(B, H, W) masks of the crop, computed in each example's original camera frame.

  For frames stored as crops of larger ones (KITTI's KB crop, see
  adabins_jax/datasets/kitti.py): the protocol's crop is placed on the original frame, as if the uncropped ground truth were
  scored, and read back in the stored frame's coordinates. docs/reference.md describes why.

  Args:
    shape: the stored ground truth's (H, W).
    crop: 'eigen', 'garg' or 'none' (see ``crop_mask``); static under jit.
    source_frame: (B, 4) int, per example (top, left, height, width): the stored frame's
      top-left corner in its original frame and that frame's size. All zeros (padding) gives
      an empty mask.

  Returns:
    A (B, H, W) bool array.
  """
  h, w = (int(s) for s in shape[:2])
  source_frame = jnp.asarray(source_frame, jnp.int32)
  if crop == 'none':
    return jnp.ones((source_frame.shape[0], h, w), bool)
  top, left, frame_h, frame_w = (source_frame[:, i, None] for i in range(4))
  if crop == 'garg':
    def bound(fraction, size):
      # Beyond the table: 'fill' gives (0, 0), an empty crop, rather than a wrong one.
      return jnp.take(_bound_table(fraction), size, mode='fill', fill_value=0)
    row_lo, row_hi = (bound(f, frame_h) for f in kitti.GARG_CROP_ROWS)
    col_lo, col_hi = (bound(f, frame_w) for f in kitti.GARG_CROP_COLS)
  elif crop == 'eigen':
    (row_lo, row_hi), (col_lo, col_hi) = nyu.EIGEN_CROP_ROWS, nyu.EIGEN_CROP_COLS
  else:
    raise ValueError(f'crop must be one of {CROPS}, got {crop!r}.')
  rows = jnp.arange(h)[None] + top
  cols = jnp.arange(w)[None] + left
  keep_rows = (rows >= row_lo) & (rows < row_hi) & (frame_h > 0)
  keep_cols = (cols >= col_lo) & (cols < col_hi) & (frame_w > 0)
  return keep_rows[:, :, None] & keep_cols[:, None, :]


def _masked_metrics(gt: jax.Array, pred: jax.Array,
                    valid: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
  """The nine metrics over ``valid`` pixels of one image, and the valid-pixel count."""
  n = jnp.sum(valid).astype(jnp.float32)

  def mean(x):
    return jnp.sum(jnp.where(valid, x, 0.0)) / jnp.maximum(n, 1.0)

  # Invalid pixels (gt may be 0 there) are swapped for 1 so no inf / NaN is ever formed.
  gt = jnp.where(valid, gt.astype(jnp.float32), 1.0)
  pred = jnp.where(valid, pred.astype(jnp.float32), 1.0)
  thresh = jnp.maximum(gt / pred, pred / gt)
  diff = gt - pred
  log_err = jnp.log(pred) - jnp.log(gt)
  silog_var = mean(jnp.square(log_err)) - jnp.square(mean(log_err))
  values = {
      'd1': mean(thresh < 1.25),
      'd2': mean(thresh < 1.25**2),
      'd3': mean(thresh < 1.25**3),
      'abs_rel': mean(jnp.abs(diff) / gt),
      'sq_rel': mean(jnp.square(diff) / gt),
      'rmse': jnp.sqrt(mean(jnp.square(diff))),
      'rmse_log': jnp.sqrt(mean(jnp.square(log_err))),
      'log10': mean(jnp.abs(log_err)) / np.log(10.0),
      # Rounding can push the variance a hair below 0 for a constant error; numpy would NaN.
      'silog': 100.0 * jnp.sqrt(jnp.maximum(silog_var, 0.0)),
  }
  return values, n


def _valid_pixels(gt: jax.Array, min_depth: float, max_depth: float, crop: str,
                  source_frame: jax.Array | None = None) -> jax.Array:
  if source_frame is None:
    in_crop = crop_mask(gt.shape[-2:], crop)
  else:
    in_crop = source_frame_crop_masks(gt.shape[-2:], crop, source_frame)
  return (gt > min_depth) & (gt < max_depth) & in_crop


def compute_depth_metrics(gt: jax.Array, pred: jax.Array, min_depth: float, max_depth: float,
                          crop: str) -> dict[str, jax.Array]:
  """Depth metrics of one image, as the BTS / AdaBins ``compute_errors`` computes them.

  Valid pixels: ``min_depth < gt < max_depth`` inside the crop. An image without one gets all
  metrics 0; use ``compute_depth_metrics_batch``, which flags such images, to average.

  Args:
    gt: ground truth (H, W) or (H, W, 1), metres.
    pred: post-processed prediction of the same size (see ``postprocess_prediction``).
    min_depth: lower evaluation bound in metres (exclusive).
    max_depth: upper evaluation bound in metres (exclusive).
    crop: 'eigen', 'garg' or 'none' (see ``crop_mask``); static under jit.

  Returns:
    Dict of scalar float32 arrays keyed by ``METRIC_NAMES``.
  """
  gt, pred = squeeze_channel('gt', gt, 2), squeeze_channel('pred', pred, 2)
  if gt.shape != pred.shape:
    raise ValueError(f'compute_depth_metrics: gt {gt.shape} and pred {pred.shape} differ in size.')
  values, _ = _masked_metrics(gt, pred, _valid_pixels(gt, min_depth, max_depth, crop))
  return values


def compute_depth_metrics_batch(
    gt: jax.Array, pred: jax.Array, min_depth: float, max_depth: float, crop: str,
    source_frame: jax.Array | None = None) -> tuple[dict[str, jax.Array], jax.Array]:
  """Per-image depth metrics of a batch, and which images had a valid pixel.

  Args:
    gt: ground truth (B, H, W) or (B, H, W, 1), metres.
    pred: post-processed predictions of the same size.
    min_depth: lower evaluation bound in metres (exclusive).
    max_depth: upper evaluation bound in metres (exclusive).
    crop: 'eigen', 'garg' or 'none'; static under jit.
    source_frame: optional (B, 4) (top, left, height, width) of each ground truth in its
      original frame; the crop is then placed there (``source_frame_crop_masks``).

  Returns:
    (metrics, valid): a dict of (B,) float32 arrays keyed by ``METRIC_NAMES``, and a (B,) bool
    array, False for images without a valid pixel (their metric values are meaningless).
  """
  gt, pred = squeeze_channel('gt', gt, 3), squeeze_channel('pred', pred, 3)
  if gt.shape != pred.shape:
    raise ValueError(f'compute_depth_metrics_batch: gt {gt.shape} and pred {pred.shape} differ '
                     'in size.')
  valid_px = _valid_pixels(gt, min_depth, max_depth, crop, source_frame)
  values, n = jax.vmap(_masked_metrics)(gt, pred, valid_px)
  return values, n > 0


def _contours(inverse: jax.Array, thresholds: jax.Array):
  """Occluding contours between 4-neighbours: (T, ...) bools for each of the four directions.

  A pair (i, j) of neighbours is a contour at threshold t where j is in front of i by more than
  the ratio t: inverse depth (proportional to disparity) of j over that of i above t.
  """
  t = thresholds[:, None, None]
  left, right = inverse[:, :-1], inverse[:, 1:]
  top, bottom = inverse[:-1, :], inverse[1:, :]
  return (left / right > t, top / bottom > t, right / left > t, bottom / top > t)


def boundary_f1(gt: jax.Array, pred: jax.Array, valid: jax.Array) -> jax.Array:
  """Depth Pro's scale-invariant boundary F1 of one depth map, from depth alone.

  Bochkovskii et al., "Depth Pro: Sharp Monocular Metric Depth in Less Than a Second" (arXiv
  2410.02073), appendix on boundary metrics, as its reference implementation
  (apple/ml-depth-pro, ``eval/boundary_metrics.py``, ``SI_boundary_F1``) computes it: for each
  threshold t in 1.05..1.25 (10 steps), the occluding contours of the ground truth and of the
  prediction are the 4-neighbour pairs whose inverse-depth ratio exceeds t (``_contours``);
  precision and recall are the matched pairs over the predicted and the true ones, each
  averaged over the four directions; F1 per threshold (0 where precision + recall is 0) is
  averaged with weights proportional to t. A ratio is scale-invariant, so a prediction off by a
  constant factor scores as well as the exact one.

  Ground truth with holes: only pairs of two ``valid`` pixels count (the reference assumes
  dense ground truth, where this changes nothing), so a hole's edge is no contour.

  Args:
    gt: (H, W) ground truth, metres.
    pred: (H, W) post-processed prediction.
    valid: (H, W) bool, the pixels scored.

  Returns:
    A scalar in [0, 1].
  """
  thresholds = jnp.asarray(BOUNDARY_THRESHOLDS, jnp.float32)
  pairs = (valid[:, :-1] & valid[:, 1:], valid[:-1, :] & valid[1:, :])
  pairs = (pairs[0], pairs[1], pairs[0], pairs[1])
  true = _contours(1.0 / jnp.maximum(gt.astype(jnp.float32), _INVERSE_EPS), thresholds)
  found = _contours(1.0 / jnp.maximum(pred.astype(jnp.float32), _INVERSE_EPS), thresholds)
  precision, recall = 0.0, 0.0
  for g, p, keep in zip(true, found, pairs):
    g, p = g & keep, p & keep
    hits = jnp.sum(g & p, axis=(1, 2)).astype(jnp.float32)
    precision += 0.25 * hits / jnp.maximum(jnp.sum(p, axis=(1, 2)), 1)
    recall += 0.25 * hits / jnp.maximum(jnp.sum(g, axis=(1, 2)), 1)
  total = precision + recall
  f1 = jnp.where(total > 0, 2 * precision * recall / jnp.where(total > 0, total, 1.0), 0.0)
  return jnp.sum(f1 * jnp.asarray(BOUNDARY_WEIGHTS, jnp.float32))


def postprocess_prediction(pred: jax.Array, pred_flipped_back: jax.Array | None,
                           gt_hw: Sequence[int], min_depth: float,
                           max_depth: float) -> jax.Array:
  """The release's evaluation post-processing of raw network depth.

  Clips each prediction to [min_depth, max_depth], averages it with the un-mirrored prediction of
  the mirrored image, resizes (bilinear, align_corners=True) to the ground truth's size, clips
  again and replaces inf by ``max_depth`` and NaN by ``min_depth``.

  Args:
    pred: network depth (N, h, w, 1), metres.
    pred_flipped_back: depth predicted on the mirrored images, mirrored back, same shape; or None
      for no flip averaging.
    gt_hw: the ground truth's (H, W).
    min_depth: lower clip bound in metres.
    max_depth: upper clip bound in metres.

  Returns:
    (N, H, W, 1) float32 depth.
  """
  if pred.ndim != 4 or pred.shape[-1] != 1:
    raise ValueError(f'postprocess_prediction: pred must be (N, h, w, 1), got {pred.shape}.')
  final = jnp.clip(pred.astype(jnp.float32), min_depth, max_depth)
  if pred_flipped_back is not None:
    if pred_flipped_back.shape != pred.shape:
      raise ValueError(f'postprocess_prediction: pred_flipped_back {pred_flipped_back.shape} '
                       f'differs from pred {pred.shape}.')
    flipped = jnp.clip(pred_flipped_back.astype(jnp.float32), min_depth, max_depth)
    final = 0.5 * (final + flipped)
  final = resize_bilinear(final, gt_hw)
  # Clipping already sends +-inf to the bounds; only NaN (which clip keeps) is left to replace.
  final = jnp.clip(final, min_depth, max_depth)
  return jnp.where(jnp.isnan(final), min_depth, final)


@flax.struct.dataclass
class MetricSums:
  """Sums of per-image metrics, the number of images they cover and of images refused.

  A pytree, so a jitted eval step can return it; ``merge`` adds, ``compute`` divides. The sums of
  the global batch are global (jit reduces over the sharded batch), so the result is the same
  on every host and for any batch split. ``nonfinite`` counts the real images whose raw
  prediction held NaN or inf: the protocol's clipping would turn those into plausible depths,
  so ``compute`` refuses to score any.
  """
  sums: dict[str, jax.Array]
  count: jax.Array
  nonfinite: jax.Array

  @classmethod
  def empty(cls, names: Sequence[str] = METRIC_NAMES) -> MetricSums:
    """Sums of no image: the identity of ``merge``."""
    return cls(sums={k: jnp.zeros((), jnp.float32) for k in names},
               count=jnp.zeros((), jnp.int32), nonfinite=jnp.zeros((), jnp.int32))

  @classmethod
  def from_per_image(cls, values: Mapping[str, jax.Array], valid: jax.Array,
                     example_mask: jax.Array | None = None,
                     finite: jax.Array | None = None) -> MetricSums:
    """Sums over the images that have a valid pixel and are real (not padding).

    Args:
      values: per-image metrics, (B,) arrays keyed by ``METRIC_NAMES`` (and optionally
        ``BOUNDARY_NAME``).
      valid: (B,) bool, from ``compute_depth_metrics_batch``.
      example_mask: optional (B,) bool, False for the padding examples of a last batch.
      finite: optional (B,) bool, False where the raw prediction was not all finite.
    """
    real = jnp.ones_like(valid) if example_mask is None else example_mask.astype(bool)
    keep = valid & real
    sums = {k: jnp.sum(jnp.where(keep, v, 0.0)) for k, v in values.items()}
    nonfinite = 0 if finite is None else jnp.sum(real & ~finite)
    return cls(sums=sums, count=jnp.sum(keep).astype(jnp.int32),
               nonfinite=jnp.asarray(nonfinite, jnp.int32))

  def merge(self, other: MetricSums) -> MetricSums:
    # A column one side lacks (the empty start of a run with boundary metrics) sums 0 there.
    names = list(self.sums) + [k for k in other.sums if k not in self.sums]
    return MetricSums(sums={k: self.sums.get(k, 0.0) + other.sums.get(k, 0.0) for k in names},
                      count=self.count + other.count, nonfinite=self.nonfinite + other.nonfinite)

  def compute(self) -> dict[str, float]:
    """Means over all counted images (NaN if none), plus 'num_images'.

    Raises:
      errors.NonFinitePredictionError: some image's raw prediction was NaN or infinite.
    """
    if int(self.nonfinite):
      raise errors.NonFinitePredictionError(
          f'The model predicted NaN or infinite depth for {int(self.nonfinite)} image(s); '
          'refusing to score them (the protocol would clip them into plausible depths). The '
          'weights are probably broken: check the checkpoint or training log.')
    count = int(self.count)
    result = {k: float(v) / count if count else float('nan') for k, v in self.sums.items()}
    result['num_images'] = count
    return result


def score_batch(gt: jax.Array, pred: jax.Array, pred_flipped_back: jax.Array | None, *,
                min_depth: float, max_depth: float, crop: str,
                example_mask: jax.Array | None = None,
                source_frame: jax.Array | None = None, depth_scale: jax.Array | None = None,
                boundary: bool = False) -> tuple[MetricSums, jax.Array]:
  """The whole protocol for one batch: post-process raw depth, score each image, sum.

  Args:
    gt: ground truth (B, H, W, 1), metres.
    pred: raw network depth (B, h, w, 1).
    pred_flipped_back: raw depth of the mirrored images, mirrored back, or None.
    min_depth: evaluation / clip lower bound in metres.
    max_depth: evaluation / clip upper bound in metres.
    crop: 'eigen', 'garg' or 'none'; static under jit.
    example_mask: optional (B,) bool, False for padding examples.
    source_frame: optional (B, 4) int, where each ground truth lies in its original frame
      (the batch key of datasets stored cropped, e.g. kitti_eigen); see
      ``source_frame_crop_masks``.
    depth_scale: optional (B,) factors the raw depth is multiplied by before post-processing
      (the canonical camera transform, f_photo / f_train; inference/focal.py).
    boundary: also score ``BOUNDARY_NAME`` (``boundary_f1``) per image; static under jit.

  Returns:
    The batch's ``MetricSums``, and the post-processed depth (B, H, W, 1) that was scored.
  """
  finite = jnp.all(jnp.isfinite(pred), axis=(1, 2, 3))
  if pred_flipped_back is not None:
    finite &= jnp.all(jnp.isfinite(pred_flipped_back), axis=(1, 2, 3))
  if depth_scale is not None:
    # Scaled before the protocol's clip: it is the rescaled depth that the range bounds.
    factor = jnp.asarray(depth_scale, jnp.float32)[:, None, None, None]
    pred = pred * factor
    pred_flipped_back = None if pred_flipped_back is None else pred_flipped_back * factor
  final = postprocess_prediction(pred, pred_flipped_back, gt.shape[1:3], min_depth, max_depth)
  values, valid = compute_depth_metrics_batch(gt, final, min_depth, max_depth, crop,
                                              source_frame)
  if boundary:
    gt2, final2 = squeeze_channel('gt', gt, 3), squeeze_channel('pred', final, 3)
    valid_px = _valid_pixels(gt2, min_depth, max_depth, crop, source_frame)
    values = {**values, BOUNDARY_NAME: jax.vmap(boundary_f1)(gt2, final2, valid_px)}
  return MetricSums.from_per_image(values, valid, example_mask, finite), final
