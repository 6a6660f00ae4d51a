"""A config's model with trained weights: a training run's checkpoint or a released ``.pt``.

Shared by prediction, the ``Predictor``, the web demo and export.
"""

from __future__ import annotations

import os

from flax import nnx
import jax

from adabins_jax import checkpointing
from adabins_jax import models
from adabins_jax import torch_mapping


def load_model(config, workdir: str | None, weights: str | None = None) -> tuple[nnx.Module, str]:
  """The config's model in eval mode with trained weights, and where they came from.

  Args:
    config: The full config (uses model, eval.checkpoint, seed).
    workdir: A training run's folder; its ``config.eval.checkpoint`` is loaded.
    weights: A released PyTorch ``.pt``/``.pth``; used instead of ``workdir`` when given.
  """
  # Shape-only until loaded: random initialisation would compile a program per weight shape.
  model = models.build_abstract_model(config.model, seed=config.seed)
  if weights:
    torch_mapping.load_torch_checkpoint(
        model, weights, allow_range_mismatch=config.model.get('allow_range_mismatch', False))
    source = os.fspath(weights)
  elif workdir:
    step = checkpointing.restore_model(workdir, model, config.eval.checkpoint)
    source = f'{workdir} (step {step})'
  else:
    raise ValueError('predict needs trained weights: --workdir=<training run> or '
                     '--weights=<released .pt>.')
  unloaded = [jax.tree_util.keystr(p) for p, v in jax.tree_util.tree_leaves_with_path(
      nnx.state(model)) if isinstance(v, jax.ShapeDtypeStruct)]
  if unloaded:
    raise ValueError(f'{source} left model variables unset: {unloaded[:5]}')
  model.eval()
  return model, source
