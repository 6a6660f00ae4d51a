"""Losses against hand-computed numbers and a torch re-implementation of the release's losses."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from adabins_jax import losses
from helpers import benchmark_scripts

release_training = benchmark_scripts.load('release_training')
# The release's SILogLoss (interpolate=True), as the training benchmark runs it.
_torch_silog = release_training.release_silog


def _torch_chamfer(bin_edges, target, mask):
  """Brute-force BinsChamferLoss: full distance matrix per image with torch.cdist."""
  centres = 0.5 * (bin_edges[:, 1:] + bin_edges[:, :-1])
  per_image = []
  for c, t, m in zip(centres, target.flatten(1), mask.flatten(1)):
    y = t[m & (t >= 1e-3)]
    if y.numel() == 0:
      per_image.append(c.sum() * 0)
      continue
    d = torch.cdist(c[:, None], y[:, None]) ** 2
    per_image.append(d.min(1).values.mean() + d.min(0).values.mean())
  return torch.stack(per_image).mean()


def _nhwc(a):
  return jnp.asarray(a, jnp.float32).reshape(*np.shape(a), 1)


def _assert_finite_tree(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), leaf


def test_silog_hand_computed():
  g = np.array([[0.0, 0.2], [0.4, -0.2]])
  target = np.array([[1.0, 2.0], [0.5, 3.0]])
  pred = target * np.exp(g)
  mask = jnp.ones((1, 2, 2, 1), bool)
  loss = losses.silog_loss(_nhwc(pred[None]), _nhwc(target[None]), mask)
  # mean(g) = 0.1; squared deviations .01 .01 .09 .09 -> unbiased var 0.2 / 3.
  np.testing.assert_allclose(loss, 10 * math.sqrt(0.2 / 3 + 0.15 * 0.1**2), rtol=1e-5)


def test_silog_mask_drops_pixels():
  g = np.array([[0.3, 0.1], [5.0, -0.1]])
  target = np.full((2, 2), 2.0)
  mask = np.array([[True, True], [False, True]])
  loss = losses.silog_loss(_nhwc(target[None] * np.exp(g)[None]), _nhwc(target[None]),
                           jnp.asarray(mask)[None, ..., None])
  # Valid g = 0.3, 0.1, -0.1: mean 0.1, deviations .2 0 -.2 -> var 0.08 / 2.
  np.testing.assert_allclose(loss, 10 * math.sqrt(0.04 + 0.15 * 0.01), rtol=1e-5)


def test_silog_matches_torch_release_value_and_grad():
  rng = np.random.default_rng(0)
  pred = rng.uniform(0.5, 5.0, (2, 1, 6, 8))
  target = rng.uniform(0.0, 5.0, (2, 1, 12, 16))
  mask = target > 0.5
  pred_t = torch.tensor(pred, requires_grad=True)
  ref = _torch_silog(pred_t, torch.tensor(target), torch.tensor(mask))
  ref.backward()

  def loss_fn(p):
    return losses.silog_loss(p, _nhwc(target[:, 0]), jnp.asarray(mask[:, 0, ..., None]))

  value, grad = jax.jit(jax.value_and_grad(loss_fn))(_nhwc(pred[:, 0]))
  np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
  np.testing.assert_allclose(grad[..., 0], pred_t.grad[:, 0].numpy(), rtol=1e-4, atol=1e-7)


def test_silog_empty_mask_is_zero_with_finite_grad():
  pred = jnp.full((2, 3, 3, 1), 2.0)
  target = jnp.zeros((2, 3, 3, 1))
  mask = jnp.zeros((2, 3, 3, 1), bool)
  value, grad = jax.value_and_grad(losses.silog_loss)(pred, target, mask)
  assert value == 0.0
  _assert_finite_tree(grad)
  assert np.all(np.asarray(grad) == 0.0)


def test_silog_zero_negative_depths_and_perfect_prediction_have_finite_grad():
  pred = _nhwc([[[0.0, -1.0], [2.0, 3.0]]])
  target = _nhwc([[[1.0, 0.0], [-2.0, 3.0]]])
  # The mask claims every pixel valid; non-positive targets are dropped, a zero pred clamped.
  mask = jnp.ones((1, 2, 2, 1), bool)
  value, grad = jax.value_and_grad(losses.silog_loss)(pred, target, mask)
  _assert_finite_tree((value, grad))
  # A perfect prediction: loss exactly 0, where sqrt's derivative is infinite.
  value, grad = jax.value_and_grad(losses.silog_loss)(target.clip(1.0), target.clip(1.0), mask)
  assert value == 0.0
  _assert_finite_tree(grad)


def test_silog_rejects_bad_shapes():
  with pytest.raises(ValueError, match='mask shape'):
    losses.silog_loss(jnp.ones((1, 2, 2, 1)), jnp.ones((1, 4, 4, 1)), jnp.ones((1, 2, 2, 1), bool))
  with pytest.raises(ValueError, match=r'\(N, H, W, 1\)'):
    losses.silog_loss(jnp.ones((1, 2, 2)), jnp.ones((1, 2, 2, 1)), jnp.ones((1, 2, 2, 1), bool))


def test_chamfer_hand_computed():
  edges = jnp.array([[0.0, 2.0, 4.0]])  # centres 1, 3
  target = _nhwc([[[2.5, 5.0, 0.0, 1e-4]]])  # the last two are not valid depths
  loss = losses.bin_chamfer_loss(edges, target)
  # centres -> depths: 1->2.5 (2.25), 3->2.5 (0.25); depths -> centres: 2.5->3 (.25), 5->3 (4).
  np.testing.assert_allclose(loss, (2.25 + 0.25) / 2 + (0.25 + 4.0) / 2, rtol=1e-6)


@pytest.mark.parametrize('sorted_edges, n_bins', [(True, 16), (False, 16), (True, 1)])
def test_chamfer_matches_bruteforce_value_and_grad(sorted_edges, n_bins):
  rng = np.random.default_rng(1)
  n = 3
  widths = rng.uniform(0.1, 1.0, (n, n_bins))
  edges = np.concatenate([np.full((n, 1), 1e-3), 1e-3 + np.cumsum(widths, 1)], 1)
  if not sorted_edges:
    edges = rng.uniform(0.0, 10.0, (n, n_bins + 1))
  target = rng.uniform(-1.0, 10.0, (n, 1, 9, 7))
  mask = rng.uniform(size=target.shape) > 0.3
  mask[2] = False  # an image with no valid depth contributes 0
  edges_t = torch.tensor(edges, requires_grad=True)
  ref = _torch_chamfer(edges_t, torch.tensor(target), torch.tensor(mask))
  ref.backward()

  def loss_fn(e):
    return losses.bin_chamfer_loss(e, _nhwc(target[:, 0]), jnp.asarray(mask[:, 0, ..., None]))

  value, grad = jax.jit(jax.value_and_grad(loss_fn))(jnp.asarray(edges, jnp.float32))
  np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
  np.testing.assert_allclose(grad, edges_t.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_chamfer_empty_images_are_finite_with_finite_grad():
  edges = jnp.linspace(0.0, 10.0, 9)[None].repeat(2, 0)
  target = jnp.zeros((2, 4, 4, 1)).at[0, 0, 0, 0].set(jnp.nan)
  value_and_grad = jax.jit(jax.value_and_grad(losses.bin_chamfer_loss))
  value, grad = value_and_grad(edges, target)
  assert value == 0.0
  _assert_finite_tree(grad)
  # One empty image halves the batch mean of the other's loss.
  target = target.at[1].set(3.0)
  full = jax.jit(losses.bin_chamfer_loss)(edges[1:], target[1:])
  both, grad = value_and_grad(edges, target)
  np.testing.assert_allclose(both, full / 2, rtol=1e-6)
  _assert_finite_tree(grad)


def test_chamfer_rejects_bad_shapes():
  with pytest.raises(ValueError, match='bin_edges'):
    losses.bin_chamfer_loss(jnp.ones((2,)), jnp.ones((2, 3, 3, 1)))
  with pytest.raises(ValueError, match='batch sizes differ'):
    losses.bin_chamfer_loss(jnp.ones((2, 5)), jnp.ones((3, 3, 3, 1)))


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_chamfer_equals_the_release_training_benchmark_loss():
  """The training benchmark's release loss (no mask, gt >= 1e-3) is ours, value and gradient."""
  rng = np.random.default_rng(5)
  widths = rng.uniform(0.1, 1.0, (2, 32))
  edges = np.concatenate([np.full((2, 1), 1e-3), 1e-3 + np.cumsum(widths, 1)], 1)
  target = rng.uniform(0.5, 12.0, (2, 1, 11, 13))
  target[0, 0, :3] = 0.0  # invalid depths, dropped by both
  edges_t = torch.tensor(edges, requires_grad=True)
  ref = release_training.release_chamfer(edges_t, torch.tensor(target))
  ref.backward()
  value, grad = jax.value_and_grad(losses.bin_chamfer_loss)(jnp.asarray(edges, jnp.float32),
                                                            _nhwc(target[:, 0]))
  np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
  np.testing.assert_allclose(grad, edges_t.grad.numpy(), rtol=1e-4, atol=1e-6)
