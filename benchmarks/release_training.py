"""The release's training step in PyTorch: its losses, optimizer and schedule, as it trains.

Used by ``torch_reference.py --train`` to time the release's step beside ours, and by the tests
to check that ours computes the same objective. Needs only torch (no geffnet).

* ``SILogLoss``: bilinear align-corners resize of the prediction to the target, masked pixels,
  ``10 * sqrt(var(g) + 0.15 * mean(g)^2)`` with torch's unbiased variance.
* ``BinsChamferLoss``: pytorch3d's ``chamfer_distance`` between bin centres and the valid depths
  (>= 1e-3) of each image, squared L2, means over points then images.
* AdamW with the encoder group at lr / 10, ``OneCycleLR`` given one scalar max lr (which resets
  both groups to one schedule), global-norm clipping, the scheduler stepped after each step.
"""

import torch
from torch import nn
from torch.nn import functional as F


def release_silog(pred, depth, mask):
  """The release's ``SILogLoss``: align-corners resize to the target, then over masked pixels."""
  pred = F.interpolate(pred, depth.shape[-2:], mode='bilinear', align_corners=True)
  g = torch.log(pred[mask]) - torch.log(depth[mask])
  return 10 * torch.sqrt(torch.var(g) + 0.15 * torch.pow(torch.mean(g), 2))


def release_chamfer(bin_edges, depth):
  """The release's ``BinsChamferLoss`` (pytorch3d ``chamfer_distance``, squared L2, means).

  Written out brute force, as pytorch3d's CPU nearest-neighbour search computes it: every
  centre against every valid depth (>= 1e-3) of its image, nearest in both directions.
  """
  centres = 0.5 * (bin_edges[:, 1:] + bin_edges[:, :-1])
  total = 0.0
  for c, d in zip(centres, depth.flatten(1)):
    d = d[d >= 1e-3]
    squared = (c[:, None] - d[None, :]) ** 2
    total = total + squared.min(dim=1).values.mean() + squared.min(dim=0).values.mean()
  return total / centres.shape[0]


def release_loss(model, image, depth, min_depth=1e-3, chamfer_weight=0.1):
  edges, pred = model(image)
  return release_silog(pred, depth, depth > min_depth) + chamfer_weight * release_chamfer(
      edges, depth)


def release_optimizer(model, config, total_steps):
  """The release's AdamW (encoder group at lr / 10) and OneCycleLR with one scalar max lr.

  The scalar max lr resets both groups to one schedule, as in the release (docs/reference.md).
  """
  o = config.optim
  encoder = list(model.encoder.parameters())
  ids = {id(p) for p in encoder}
  rest = [p for p in model.parameters() if id(p) not in ids]
  optimizer = torch.optim.AdamW([{'params': encoder, 'lr': o.learning_rate / 10},
                                 {'params': rest, 'lr': o.learning_rate}],
                                lr=o.learning_rate, weight_decay=o.weight_decay)
  scheduler = torch.optim.lr_scheduler.OneCycleLR(
      optimizer, o.learning_rate, total_steps=total_steps, pct_start=o.pct_start,
      cycle_momentum=True, base_momentum=o.base_beta1, max_momentum=o.max_beta1,
      div_factor=o.div_factor, final_div_factor=o.final_div_factor)
  return optimizer, scheduler


def release_train_step(model, optimizer, scheduler, image, depth, clip):
  """Forward, SILog + 0.1 chamfer, backward, global-norm clip, AdamW, scheduler step."""
  optimizer.zero_grad(set_to_none=True)
  loss = release_loss(model, image, depth)
  loss.backward()
  nn.utils.clip_grad_norm_(model.parameters(), clip)
  optimizer.step()
  scheduler.step()
  return float(loss.detach())
