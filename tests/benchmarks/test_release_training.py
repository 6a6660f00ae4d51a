"""benchmarks/release_training.py, the release's training step that the benchmark times beside
ours: its schedule is ours, and its step trains (clipped, scheduled) like the release's."""

import numpy as np
import torch
from torch import nn

from adabins_jax import optim
from adabins_jax.configs import default
from helpers import benchmark_scripts

release_training = benchmark_scripts.load('release_training')


class _Tiny(nn.Module):
  """An encoder and a head, the two parameter groups of the release's optimizer."""

  def __init__(self):
    super().__init__()
    self.encoder = nn.Conv2d(3, 4, 3, padding=1)
    self.head = nn.Conv2d(4, 1, 1)
    self.edges = nn.Linear(4, 9)

  def forward(self, x):
    features = torch.relu(self.encoder(x))
    widths = torch.softmax(self.edges(features.mean((2, 3))), 1) * 10
    edges = torch.cumsum(nn.functional.pad(widths, (1, 0), value=1e-3), 1)
    return edges, nn.functional.softplus(self.head(features[:, :, ::2, ::2])) + 0.1


def test_release_schedule_is_ours_for_both_groups():
  config = default.get_config()
  model = _Tiny()
  optimizer, scheduler = release_training.release_optimizer(model, config, total_steps=20)
  ours = optim.learning_rate_schedule(config.optim, 20)
  for step in range(20):
    lrs = [group['lr'] for group in optimizer.param_groups]
    # The scalar max lr resets the encoder's lr / 10 group to the same schedule.
    np.testing.assert_allclose(lrs, [float(ours(step))] * 2, rtol=1e-6)
    optimizer.step()
    scheduler.step()


def test_release_step_clips_and_lowers_the_loss():
  torch.manual_seed(0)
  config = default.get_config()
  config.optim.learning_rate = 1e-2
  model = _Tiny()
  optimizer, scheduler = release_training.release_optimizer(model, config, total_steps=30)
  image = torch.randn(2, 3, 12, 16)
  depth = torch.rand(2, 1, 12, 16) * 5 + 1
  depth[0, 0, 0] = 0.0  # invalid pixels, as in NYU's ground truth
  before = [p.detach().clone() for p in model.parameters()]
  losses = [release_training.release_train_step(model, optimizer, scheduler, image, depth, 0.1)
            for _ in range(30)]
  assert all(np.isfinite(losses)) and losses[-1] < losses[0]
  assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
