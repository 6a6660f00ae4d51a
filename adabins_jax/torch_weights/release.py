"""The depth range weights were trained for, and refusing to read them in another.

The bins head turns normalised bin widths into metres by scaling with ``max_depth_m -
min_depth_m`` (``models.adabins.AdaBins._depth``, the release's ``UnetAdaptiveBins.forward``),
and no weight holds that range: the same weights run under another range give every depth
scaled into it, without any error (docs/models.md, "The released weights"). So:

* A released ``.pt`` says its range only by its name: the release ships ``AdaBins_nyu.pt``
  (1e-3..10 m) and ``AdaBins_kitti.pt`` (1e-3..80 m). ``check_file_range`` refuses a file
  whose name says another range than the model's, and warns once about a file whose name says
  none. No checksum of the release files is published, so none is checked.
* This project's Orbax checkpoints record the range they were saved with
  (``checkpointing.save``); ``check_recorded_range`` refuses to restore one into a model of
  another range.
"""

from __future__ import annotations

import math
import os
import pathlib
from collections.abc import Mapping

from absl import logging

from adabins_jax.errors import CheckpointError

# The release's datasets, as their file names spell them, -> (min_depth_m, max_depth_m) its
# InferenceHelper builds the model with (infer.py; docs/models.md).
RELEASE_RANGES_M: dict[str, tuple[float, float]] = {
    'nyu': (1e-3, 10.0),
    'kitti': (1e-3, 80.0),
}
# How to read weights in a range other than the one their name says, e.g. to fine-tune
# AdaBins_nyu.pt on KITTI.
OVERRIDE = '--config.model.allow_range_mismatch=True'

# Files already warned about, so that loading one again (a second Predictor) stays quiet.
_WARNED: set[str] = set()


class DepthRangeError(CheckpointError):
  """Weights trained for one depth range were about to be read in another."""


def range_from_name(path: str | os.PathLike[str]) -> tuple[str, tuple[float, float]] | None:
  """The release dataset a file's name names, and its range; None if it names none or both.

  Case-insensitive on the file name alone: ``AdaBins_KITTI.pt`` and ``kitti_finetuned.pth``
  are KITTI's, a ``nyu/`` folder says nothing.
  """
  name = pathlib.PurePath(os.fspath(path)).name.lower()
  found = [dataset for dataset in RELEASE_RANGES_M if dataset in name]
  if len(found) != 1:
    return None
  return found[0], RELEASE_RANGES_M[found[0]]


def _same(a: tuple[float, float], b: tuple[float, float]) -> bool:
  return all(math.isclose(x, y, rel_tol=1e-6) for x, y in zip(a, b))


def _metres(depth_range: tuple[float, float]) -> str:
  return f'{depth_range[0]:g}..{depth_range[1]:g} m'


def check_file_range(path: str | os.PathLike[str], model_range: tuple[float, float], *,
                     allow_mismatch: bool = False) -> None:
  """Refuses a released ``.pt`` whose name says another depth range than the model's.

  Args:
    path: The ``.pt`` file.
    model_range: (min_depth_m, max_depth_m) of the model about to hold the weights.
    allow_mismatch: Load anyway (logged as a warning), e.g. to fine-tune for another range.

  Raises:
    DepthRangeError: naming the file, the range its name says and the model's.
  """
  named = range_from_name(path)
  if named is None:
    key = os.path.abspath(os.fspath(path))
    if key not in _WARNED:
      _WARNED.add(key)
      logging.warning(
          '%s: the file name says no depth range (neither "nyu" nor "kitti"); its weights will '
          'be read as depth in %s (model.min_depth_m, model.max_depth_m), which must be the '
          'range they were trained for, or every depth comes out scaled.', path,
          _metres(model_range))
    return
  dataset, trained = named
  if _same(trained, model_range):
    return
  message = (f'{path}: the file name says {dataset.upper()} weights, trained for depth '
             f'{_metres(trained)}, but the config reads them in {_metres(model_range)} '
             '(model.min_depth_m, model.max_depth_m), which would scale every depth.')
  if allow_mismatch:
    logging.warning('%s Loading them anyway (model.allow_range_mismatch).', message)
    return
  raise DepthRangeError(
      f'{message} Use a config of that range (--config.model.min_depth_m={trained[0]:g} '
      f'--config.model.max_depth_m={trained[1]:g}), or {OVERRIDE} to load them anyway.')


def check_recorded_range(recorded: Mapping[str, float], model_range: tuple[float, float],
                         source: str) -> None:
  """Refuses to restore a checkpoint saved with another depth range than the model's.

  Args:
    recorded: The checkpoint's metadata; checkpoints saved before the range was recorded
      (no ``min_depth_m``/``max_depth_m``) pass.
    model_range: (min_depth_m, max_depth_m) of the model it is restored into.
    source: The checkpoint's path, for the message.

  Raises:
    DepthRangeError: naming the checkpoint and both ranges.
  """
  if 'min_depth_m' not in recorded or 'max_depth_m' not in recorded:
    return
  saved = (float(recorded['min_depth_m']), float(recorded['max_depth_m']))
  if not _same(saved, model_range):
    raise DepthRangeError(
        f'Checkpoint {source} was saved by a model of depth range {_metres(saved)}, but the '
        f'config builds one of {_metres(model_range)} (model.min_depth_m, model.max_depth_m); '
        f'its depth would be scaled. Run with --config.model.min_depth_m={saved[0]:g} '
        f'--config.model.max_depth_m={saved[1]:g}.')


def model_range(model) -> tuple[float, float] | None:
  """(min_depth_m, max_depth_m) of an ``AdaBins`` model; None for models without a range."""
  low, high = getattr(model, 'min_depth_m', None), getattr(model, 'max_depth_m', None)
  if low is None or high is None:
    return None
  return float(low), float(high)
