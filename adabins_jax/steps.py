"""The jitted training and evaluation steps: pure functions of (graphdef, state, batch).

Nothing here knows about devices. The caller places the state replicated and the batch
sharded over the data axis (parallel.py); ``jax.jit`` then compiles one program for the
global batch and the compiler adds the gradient all-reduce. BatchNorm layers therefore see
*global-batch* statistics, i.e. synchronised BatchNorm -- the PyTorch release used per-GPU
statistics, which only matters for tiny per-device batches.

The model and optimizer are carried as ``nnx.split((model, optimizer))``: the step closes
over the graphdef, so it compiles once per model (for any graphdef, hashable or not), and
takes the state, a pytree that is donated and returned, which keeps the per-step Python
overhead to a pytree flatten.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp

from adabins_jax import losses
from adabins_jax import metrics as metrics_lib
from adabins_jax import optim
from adabins_jax.inference import camera as camera_lib

Batch = Mapping[str, jax.Array]


def train_loss(model: nnx.Module, batch: Batch, *, silog_weight: float, chamfer_weight: float,
               min_depth_m: float) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
  """The training objective: ``silog_weight * SILog + chamfer_weight * chamfer``.

  Returns ``(loss, (silog, chamfer))``; the model runs in whatever mode it is in.
  """
  gt = batch['depth']
  bin_edges, pred = model(batch['image'])
  # Name scopes label the ops in profiles (benchmarks/profile_train_step.py).
  with jax.named_scope('silog'):
    silog = losses.silog_loss(pred, gt, gt > min_depth_m)
  with jax.named_scope('chamfer'):
    # The release passes no mask to the chamfer term; it drops gt < 1e-3 by itself.
    chamfer = losses.bin_chamfer_loss(bin_edges, gt)
  return silog_weight * silog + chamfer_weight * chamfer, (silog, chamfer)


def _train_step(graphdef: nnx.GraphDef, state: nnx.State, batch: Batch, rng: jax.Array, *,
                learning_rate_fn: Callable[[jax.Array], jax.Array],
                **loss_kwargs: float) -> tuple[nnx.State, dict[str, Any]]:
  model, optimizer = nnx.merge(graphdef, state)
  model.train()
  # Dropout and drop-path draw from fold_in(seed, step), so a resumed run repeats them.
  nnx.reseed(model, dropout=rng)
  loss_fn = functools.partial(train_loss, batch=batch, **loss_kwargs)
  (loss, (silog, chamfer)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
  learning_rate = learning_rate_fn(optimizer.step[...])
  with jax.named_scope('optimizer'):
    optimizer.update(model, grads)
  # Finite gradients can still give non-finite weights (a NaN or huge learning rate): the
  # weights' norm overflows or turns NaN then, and the caller refuses to save them.
  metrics = {'loss': loss, 'silog': silog, 'chamfer': chamfer,
             'grad_norm': optim.global_norm(grads), 'learning_rate': learning_rate,
             'param_norm': optim.global_norm(nnx.state(model, nnx.Param))}
  return nnx.state((model, optimizer)), metrics


def make_train_step(config, graphdef: nnx.GraphDef,
                    learning_rate_fn: Callable[[jax.Array], jax.Array]):
  """Returns the jitted ``train_step(state, batch, rng) -> (state, metrics)``.

  ``graphdef, state = nnx.split((model, optimizer))``; the state is donated: the caller must
  use the returned one. ``rng`` is the step's dropout key, ``fold_in(key, step)``. ``batch`` holds
  'image' (N, h, w, 3) ImageNet-normalised and 'depth' (N, H, W, 1) in metres. Metrics are
  scalars: 'loss', 'silog', 'chamfer', 'grad_norm' (before clipping), 'learning_rate' and
  'param_norm' (after the update).

  Args:
    config: The full config (uses train.silog_weight, train.chamfer_weight,
      model.min_depth_m).
    graphdef: Of ``(model, optimizer)``.
    learning_rate_fn: The schedule, step -> learning rate, for logging only.
  """
  step = functools.partial(_train_step, graphdef, learning_rate_fn=learning_rate_fn,
                           **train_loss_kwargs(config))
  return jax.jit(step, donate_argnums=0)


def train_loss_kwargs(config) -> dict[str, float]:
  """``train_loss``'s keyword arguments from the config."""
  return {'silog_weight': float(config.train.silog_weight),
          'chamfer_weight': float(config.train.chamfer_weight),
          'min_depth_m': float(config.model.min_depth_m)}


def forward(graphdef: nnx.GraphDef, state: nnx.State, images: jax.Array, *,
            flip_average: bool = False) -> tuple[jax.Array, jax.Array, jax.Array | None]:
  """The eval-mode model on ``images`` (N, H, W, 3): bin edges, depth and, with
  ``flip_average``, the depth of the mirrored images mirrored back (else None).

  The mirrors go through the same network call, on a doubled batch: fine on one device;
  ``eval_step`` runs two passes instead, since its batch is sharded.
  """
  model = nnx.merge(graphdef, state)
  model.eval()
  if not flip_average:
    edges, depth = model(images)
    return edges, depth, None
  n = images.shape[0]
  edges, depth = model(jnp.concatenate([images, images[:, :, ::-1]], axis=0))
  return edges[:n], depth[:n], depth[n:, :, ::-1]


def make_forward(graphdef: nnx.GraphDef, *, flip_average: bool = False):
  """Returns the jitted ``forward(state, images) -> (bin_edges, depth, flipped_back)``.

  ``graphdef, state = nnx.split(model)``; see ``forward``. One program per input shape.
  """
  return jax.jit(functools.partial(forward, graphdef, flip_average=flip_average))


def _eval_step(graphdef: nnx.GraphDef, state: nnx.State, batch: Batch, *, min_depth_m: float,
               max_depth_m: float, crop: str, flip_average: bool,
               train_fx_input_px: float | None = None,
               boundary: bool = False) -> tuple[metrics_lib.MetricSums, jax.Array]:
  model = nnx.merge(graphdef, state)
  model.eval()
  # The image may be smaller than the ground truth (data.input_scale); the prediction is
  # resized to the ground truth's size either way.
  images, gt = batch['image'], batch['depth']
  _, pred = model(images)
  # Two forward passes rather than one on a doubled batch: concatenating along the sharded
  # batch axis would make the devices exchange images.
  flipped_back = model(images[:, :, ::-1])[1][:, :, ::-1] if flip_average else None
  scale = None
  if train_fx_input_px is not None:
    # The frame's focal length at the network input's width, over the training camera's.
    fx_input = batch['focal'] * (images.shape[2] / gt.shape[2])
    scale = jnp.where(batch['focal'] > 0, fx_input / train_fx_input_px, 1.0)
  return metrics_lib.score_batch(gt, pred, flipped_back, min_depth=min_depth_m,
                                 max_depth=max_depth_m, crop=crop,
                                 example_mask=batch.get('example_mask'),
                                 source_frame=batch.get('source_frame'), depth_scale=scale,
                                 boundary=boundary)


def eval_max_depth_m(config) -> float:
  """The evaluation's depth cap: ``eval.max_depth_m``, or the model's range when unset."""
  cap = config.eval.get('max_depth_m')
  return float(config.model.max_depth_m if cap is None else cap)


def make_eval_step(config, graphdef: nnx.GraphDef):
  """Returns the jitted ``eval_step(state, batch) -> (metric_sums, depth)``.

  ``graphdef, state = nnx.split(model)``; the model is put in eval mode inside. ``batch``
  holds 'image' (N, h, w, 3), 'depth' (N, H, W, 1) at full resolution and optionally
  'example_mask' (N,) (False for padding) and 'source_frame' (N, 4) (where a cropped frame
  lies in its original one, for the crop; ``metrics.source_frame_crop_masks``). The protocol is
  the release's (docs/reference.md): predict on the image (and its mirror, un-mirrored), clip,
  average, resize to the ground truth, score each image.
  With ``eval.camera_transform`` the batch also holds 'focal' (N,), each frame's focal length
  in its pixels, and raw depth is multiplied by f_frame / f_train at the network input
  (inference/focal.py) before the protocol; ``eval.boundary_metrics`` adds
  ``metrics.BOUNDARY_NAME``.
  ``metric_sums`` is a ``metrics.MetricSums`` over the real images; ``depth`` is the
  post-processed (N, H, W, 1) prediction, for pictures.

  Args:
    config: The full config (uses model.min_depth_m, model.max_depth_m, eval.crop,
      eval.flip_average, eval.max_depth_m, eval.camera_transform, eval.boundary_metrics).
    graphdef: Of the model.
  """
  train_fx = None
  if config.eval.get('camera_transform', False):
    train_fx = camera_lib.training_focal_px(config)
  step = functools.partial(
      _eval_step, graphdef, min_depth_m=float(config.model.min_depth_m),
      max_depth_m=eval_max_depth_m(config), crop=config.eval.crop,
      flip_average=bool(config.eval.flip_average), train_fx_input_px=train_fx,
      boundary=bool(config.eval.get('boundary_metrics', False)))
  return jax.jit(step)
