"""Depth Pro's scale-invariant boundary F1 against hand-computed step edges, and its column."""

import jax.numpy as jnp
import numpy as np
import pytest

from adabins_jax import evaluate
from adabins_jax import metrics
from adabins_jax.configs import default
from adabins_jax.configs import validation

# Thresholds 1.05 .. 1.25 in 10 steps; weights t / sum(t), sum(t) = 11.5.
_SUM_T = 11.5


def _step(near=1.0, far=2.0, column=2, shape=(4, 4)):
  """Depth ``near`` left of ``column``, ``far`` from it on: one vertical step edge."""
  depth = np.full(shape, far, np.float32)
  depth[:, :column] = near
  return depth


def _f1(gt, pred, valid=None):
  valid = np.ones(gt.shape, bool) if valid is None else valid
  return float(metrics.boundary_f1(jnp.asarray(gt), jnp.asarray(pred), jnp.asarray(valid)))


def test_thresholds_and_weights_are_depth_pros():
  np.testing.assert_allclose(metrics.BOUNDARY_THRESHOLDS[[0, -1]], [1.05, 1.25])
  assert len(metrics.BOUNDARY_THRESHOLDS) == 10
  assert metrics.BOUNDARY_WEIGHTS.sum() == pytest.approx(1.0)


def test_the_same_edge_at_another_scale_scores_a_quarter():
  # Only the left-in-front direction has contours: precision and recall are (1 + 0 + 0 + 0) / 4
  # at every threshold, so F1 is 0.25 there and in the weighted mean.
  gt = _step()
  assert _f1(gt, gt) == pytest.approx(0.25)
  assert _f1(gt, 3.0 * gt) == pytest.approx(0.25)


def test_an_edge_one_pixel_off_scores_zero():
  assert _f1(_step(column=2), _step(column=3)) == 0.0


def test_a_weak_edge_counts_only_below_its_ratio():
  # A 1.1 ratio exceeds the thresholds 1.05, 1.0722, 1.0944 only: F1 0.25 at those three.
  expected = 0.25 * (1.05 + 1.05 + 0.2 / 9 + 1.05 + 0.4 / 9) / _SUM_T
  assert _f1(_step(), _step(far=1.1)) == pytest.approx(expected, rel=1e-5)


def test_a_spurious_edge_halves_precision():
  pred = _step()
  pred[:, 3] = 4.0  # A second edge, between columns 2 and 3.
  # Precision (4/8) / 4 = 0.125, recall 0.25: F1 = 2 * 0.125 * 0.25 / 0.375 = 1/6.
  assert _f1(_step(), pred) == pytest.approx(1 / 6, rel=1e-5)


def test_no_contour_on_either_side_scores_zero_as_the_reference():
  flat = np.full((4, 4), 2.0, np.float32)
  assert _f1(flat, flat) == 0.0


def test_a_ground_truth_hole_makes_no_contour():
  gt = np.full((4, 4), 2.0, np.float32)
  gt[1, 1] = 0.0  # Invalid: its inverse would be a huge "edge" all around it.
  pred = np.full((4, 4), 2.0, np.float32)
  pred[1, 1] = 1.0  # A real bump there in the prediction is not penalised either.
  valid = gt > 0
  assert _f1(gt, pred, valid) == 0.0
  gt_edge = _step()
  gt_edge[0, 0] = 0.0
  # Row 0's pair (0,1)-(0,2) still counts: the hole only removes pairs that touch it.
  assert _f1(gt_edge, gt_edge, gt_edge > 0) == pytest.approx(0.25)


def test_score_batch_adds_the_column_and_the_table_shows_it():
  gt = jnp.asarray(np.stack([_step(), _step()])[..., None])
  sums, _ = metrics.score_batch(gt, gt, None, min_depth=1e-3, max_depth=10.0, crop='none',
                                boundary=True)
  results = sums.compute()
  assert results[metrics.BOUNDARY_NAME] == pytest.approx(0.25)
  assert 'boundary_f1' in evaluate.format_table(results)
  assert 'boundary_f1' in evaluate.metrics_table(results, None)
  plain, _ = metrics.score_batch(gt, gt, None, min_depth=1e-3, max_depth=10.0, crop='none')
  assert metrics.BOUNDARY_NAME not in plain.compute()
  assert 'boundary_f1' not in evaluate.format_table(plain.compute())


def test_score_batch_multiplies_raw_depth_by_the_camera_scale():
  gt = jnp.asarray(np.stack([_step(), _step()])[..., None])
  sums, final = metrics.score_batch(gt, gt / 2, None, min_depth=1e-3, max_depth=10.0,
                                    crop='none', depth_scale=jnp.asarray([2.0, 2.0]))
  np.testing.assert_allclose(np.asarray(final), np.asarray(gt), rtol=1e-6)
  assert sums.compute()['abs_rel'] == pytest.approx(0.0, abs=1e-6)


def test_the_new_eval_fields_are_validated():
  config = default.get_config()
  assert config.eval.boundary_metrics is False and config.eval.camera_transform is False
  assert not validation.problems(config)
  config = config.to_dict()  # A ConfigDict would refuse the wrong type before validation.
  config['eval'].update(boundary_metrics='yes', camera_transform=1, max_depth_m=-1.0)
  found = '\n'.join(validation.problems(config))
  assert all(f'eval.{name}' in found
             for name in ('boundary_metrics', 'camera_transform', 'max_depth_m'))
