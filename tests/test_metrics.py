"""Depth metrics against hand-computed numbers and the release's numpy / torch evaluation code."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adabins_jax import errors
from adabins_jax import metrics


def _release_compute_errors(gt, pred):
  """BTS / AdaBins ``compute_errors`` on the valid pixels, in float64."""
  thresh = np.maximum(gt / pred, pred / gt)
  err = np.log(pred) - np.log(gt)
  return {
      'd1': (thresh < 1.25).mean(), 'd2': (thresh < 1.25**2).mean(),
      'd3': (thresh < 1.25**3).mean(),
      'abs_rel': np.mean(np.abs(gt - pred) / gt), 'sq_rel': np.mean((gt - pred)**2 / gt),
      'rmse': np.sqrt(np.mean((gt - pred)**2)),
      'rmse_log': np.sqrt(np.mean((np.log(gt) - np.log(pred))**2)),
      'log10': np.mean(np.abs(np.log10(gt) - np.log10(pred))),
      'silog': np.sqrt(np.mean(err**2) - np.mean(err)**2) * 100,
  }


def test_every_metric_hand_computed():
  gt = np.array([[1.0, 2.0], [4.0, 0.0]])  # the 0 is not a valid pixel
  pred = np.array([[1.0, 1.0], [5.0, 3.0]])
  got = metrics.compute_depth_metrics(jnp.asarray(gt), jnp.asarray(pred), 1e-3, 10.0, 'none')
  # Valid pairs (gt, pred): (1, 1), (2, 1), (4, 5); max ratios 1, 2, 1.25.
  e = [0.0, -math.log(2), math.log(1.25)]  # log(pred) - log(gt)
  want = {
      'd1': 1 / 3, 'd2': 2 / 3, 'd3': 2 / 3,  # 1.25 is not < 1.25; 2 is not < 1.25**3
      'abs_rel': (0 + 1 / 2 + 1 / 4) / 3, 'sq_rel': (0 + 1 / 2 + 1 / 4) / 3,
      'rmse': math.sqrt(2 / 3),
      'rmse_log': math.sqrt(sum(x * x for x in e) / 3),
      'log10': (math.log10(2) + math.log10(1.25)) / 3,
      'silog': 100 * math.sqrt(sum(x * x for x in e) / 3 - (sum(e) / 3)**2),
  }
  assert set(got) == set(metrics.METRIC_NAMES)
  for k, v in want.items():
    np.testing.assert_allclose(got[k], v, rtol=1e-5, atol=1e-7, err_msg=k)


def test_depth_range_bounds_are_exclusive():
  gt = jnp.array([[1e-3, 10.0, 2.0]])
  pred = jnp.array([[5.0, 5.0, 2.0]])
  got = metrics.compute_depth_metrics(gt, pred, 1e-3, 10.0, 'none')
  assert got['abs_rel'] == 0.0 and got['d1'] == 1.0


def test_crop_masks():
  eigen = metrics.crop_mask((480, 640), 'eigen')
  assert eigen.sum() == (471 - 45) * (601 - 41)
  assert eigen[45, 41] and eigen[470, 600] and not eigen[44, 41] and not eigen[45, 601]
  garg = metrics.crop_mask((352, 1216), 'garg')  # a KITTI frame
  assert garg.sum() == (349 - 143) * (1172 - 43)
  assert garg[143, 43] and not garg[142, 43] and not garg[349, 43]
  with pytest.raises(ValueError, match='480x640'):
    metrics.crop_mask((240, 320), 'eigen')
  with pytest.raises(ValueError, match='crop must be one of'):
    metrics.crop_mask((480, 640), 'eigne')


def test_batched_matches_release_code_with_eigen_crop():
  rng = np.random.default_rng(0)
  gt = rng.uniform(-1.0, 12.0, (3, 480, 640))
  pred = np.clip(gt * rng.uniform(0.6, 1.5, gt.shape), 1e-3, 10.0)
  gt[2] = 0.0  # no valid pixel in the third image
  fn = jax.jit(metrics.compute_depth_metrics_batch, static_argnums=(2, 3, 4))
  values, valid = fn(jnp.asarray(gt, jnp.float32)[..., None], jnp.asarray(pred, jnp.float32),
                     1e-3, 10.0, 'eigen')
  np.testing.assert_array_equal(valid, [True, True, False])
  crop = np.zeros(gt.shape[1:], bool)
  crop[45:471, 41:601] = True
  for i in range(2):
    m = (gt[i] > 1e-3) & (gt[i] < 10.0) & crop
    want = _release_compute_errors(gt[i][m], pred[i][m])
    for k, v in want.items():
      np.testing.assert_allclose(values[k][i], v, rtol=2e-5, err_msg=k)


def test_postprocess_matches_release():
  rng = np.random.default_rng(1)
  pred = rng.uniform(-2.0, 12.0, (2, 1, 5, 6))
  flipped = rng.uniform(-2.0, 12.0, (2, 1, 5, 6))
  pred[0, 0, 0, 0], pred[1, 0, 4, 5], flipped[0, 0, 2, 2] = np.inf, np.nan, -np.inf
  # The release: clip each, average, resize, clip, inf -> max, nan -> min.
  want = 0.5 * (np.clip(pred, 1e-3, 10.0) + np.clip(flipped, 1e-3, 10.0))
  want = F.interpolate(torch.tensor(want), (9, 11), mode='bilinear', align_corners=True).numpy()
  want[want < 1e-3], want[want > 10.0] = 1e-3, 10.0
  want[np.isinf(want)], want[np.isnan(want)] = 10.0, 1e-3
  got = metrics.postprocess_prediction(jnp.asarray(pred[:, 0, ..., None]),
                                       jnp.asarray(flipped[:, 0, ..., None]), (9, 11), 1e-3, 10.0)
  assert got.shape == (2, 9, 11, 1)
  np.testing.assert_allclose(got[..., 0], want[:, 0], rtol=1e-6)
  single = metrics.postprocess_prediction(jnp.asarray(pred[:, 0, ..., None]), None, (5, 6),
                                          1e-3, 10.0)
  np.testing.assert_allclose(single[1, 4, 5, 0], 1e-3)  # the NaN
  np.testing.assert_allclose(single[0, 0, 0, 0], 10.0)  # the inf


def _per_image(rng, n):
  values = {k: jnp.asarray(rng.uniform(size=n), jnp.float32) for k in metrics.METRIC_NAMES}
  return values, jnp.asarray(rng.uniform(size=n) > 0.2), jnp.asarray(rng.uniform(size=n) > 0.2)


def test_accumulator_is_exact_across_batch_splits():
  values, valid, example_mask = _per_image(np.random.default_rng(2), 11)
  whole = metrics.MetricSums.from_per_image(values, valid, example_mask).compute()
  split = metrics.MetricSums.empty()
  for lo, hi in ((0, 4), (4, 5), (5, 11)):
    part = {k: v[lo:hi] for k, v in values.items()}
    split = split.merge(metrics.MetricSums.from_per_image(part, valid[lo:hi], example_mask[lo:hi]))
  split = split.compute()
  keep = np.asarray(valid & example_mask)
  assert whole['num_images'] == split['num_images'] == keep.sum()
  for k in metrics.METRIC_NAMES:
    np.testing.assert_allclose(split[k], whole[k], rtol=1e-6)
    np.testing.assert_allclose(whole[k], np.asarray(values[k])[keep].mean(), rtol=1e-6)


def test_score_batch_skips_padding_and_empty_images():
  rng = np.random.default_rng(3)
  gt = jnp.asarray(rng.uniform(0.5, 9.0, (4, 6, 8, 1)), jnp.float32)
  gt = gt.at[1].set(0.0)  # no valid pixel
  raw = gt[:, ::2, ::2] * 1.1
  fn = jax.jit(metrics.score_batch, static_argnames=('min_depth', 'max_depth', 'crop'))
  sums, depth = fn(gt, raw, raw, min_depth=1e-3, max_depth=10.0, crop='none',
                   example_mask=jnp.array([True, True, True, False]))
  assert int(sums.count) == 2  # image 1 is empty, image 3 is padding
  final = metrics.postprocess_prediction(raw, None, (6, 8), 1e-3, 10.0)
  np.testing.assert_allclose(depth, final, rtol=1e-6)
  want = [metrics.compute_depth_metrics(gt[i], final[i], 1e-3, 10.0, 'none') for i in (0, 2)]
  got = sums.compute()
  for k in metrics.METRIC_NAMES:
    np.testing.assert_allclose(got[k], (want[0][k] + want[1][k]) / 2, rtol=1e-6, err_msg=k)


def test_empty_accumulator_gives_nan():
  result = metrics.MetricSums.empty().compute()
  assert result['num_images'] == 0 and math.isnan(result['d1'])


def test_non_finite_predictions_are_refused_not_clipped_into_metrics():
  gt = jnp.full((3, 4, 4, 1), 2.0, jnp.float32)
  raw = jnp.full((3, 2, 2, 1), 2.0, jnp.float32)
  fn = jax.jit(metrics.score_batch, static_argnames=('min_depth', 'max_depth', 'crop'))
  sums, _ = fn(gt, raw, raw, min_depth=1e-3, max_depth=10.0, crop='none')
  assert sums.compute()['d1'] == 1.0
  bad = raw.at[0, 0, 0, 0].set(jnp.nan).at[2, 1, 1, 0].set(jnp.inf)
  # A NaN in the padding example does not count; the flipped pass is checked too.
  sums, _ = fn(gt, bad, raw, min_depth=1e-3, max_depth=10.0, crop='none',
               example_mask=jnp.array([True, True, False]))
  assert int(sums.nonfinite) == 1
  flipped_bad, _ = fn(gt, raw, bad, min_depth=1e-3, max_depth=10.0, crop='none')
  total = metrics.MetricSums.empty().merge(flipped_bad)
  assert int(total.nonfinite) == 2
  with pytest.raises(errors.NonFinitePredictionError, match='NaN or infinite depth for 2 image'):
    total.compute()
