"""Imports a released PyTorch AdaBins checkpoint into this project's Orbax checkpoint.

The command (``python -m adabins_jax.torch_weights``, see ``__main__``) calls
``import_checkpoint``: the workdir then holds step 0, the released weights plus a fresh
optimizer state, which ``--mode=eval`` and ``--mode=predict`` read, and from which
``--mode=train`` fine-tunes. Accepts every format the release used (see
``torch_mapping.normalise_state_dict``). The weights hold no depth range: a file named for the
release's KITTI weights (``AdaBins_kitti.pt``, 80 m) needs a config of that range,
``--config=kitti_effnet_b5_256``, and is refused by a 10 m one
(``release.check_file_range``); the checkpoint records the config's range.
"""

from __future__ import annotations

import os

from flax import nnx

from adabins_jax import checkpointing
from adabins_jax import models
from adabins_jax import optim
from adabins_jax.torch_weights import mapping as torch_mapping


def import_checkpoint(config, checkpoint: str | os.PathLike, workdir: str | os.PathLike) -> int:
  """Loads ``checkpoint`` into ``config``'s model and saves it as step 0 of ``workdir``.

  Returns:
    The number of parameters imported.

  Raises:
    FileExistsError: the workdir already holds checkpoints (nothing is overwritten).
    release.DepthRangeError: the file's name says another depth range than the
      config's model, and ``config.model.allow_range_mismatch`` is off.
    ValueError: the checkpoint does not fit the model; the message names every bad key.
  """
  existing = checkpointing.checkpoint_dir(workdir)
  if existing.exists() and any(existing.iterdir()):
    raise FileExistsError(f'{existing} already holds checkpoints; import into an empty '
                          'workdir.')
  # Read and check the weights first: a file that fails leaves no checkpoints/ folder behind.
  model = models.build_abstract_model(config.model, seed=config.seed)
  torch_mapping.load_torch_checkpoint(
      model, checkpoint, allow_range_mismatch=config.model.allow_range_mismatch)
  manager = checkpointing.create_manager(workdir, keep_latest=1, keep_best=1)
  # Adam's state does not depend on the schedule's length; training rebuilds the schedule.
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, total_steps=1),
                            wrt=nnx.Param)
  checkpointing.save(manager, 0, model, optimizer, force=True, model_config=config.model)
  checkpointing.finish(manager)
  manager.close()
  return models.count_params(model)
