"""Checkpoints: one Orbax ``CheckpointManager`` per workdir, resume, model-only restore.

A checkpoint is a step directory ``<workdir>/checkpoints/<step>/`` with three items:

* ``model``: the model's variables (parameters, BatchNorm statistics); no RNG state, since
  dropout keys are derived from ``fold_in(seed, step)``.
* ``optimizer``: the ``nnx.Optimizer`` state (step count, Adam moments). Moments saved per
  weight tensor, as before ``optim.flatten_groups``, are joined into the flattened optimizer's
  vectors on restore (``checkpoint_format``).
* ``meta``: JSON, the step and the position in the training data, the model's depth range
  (``min_depth_m``, ``max_depth_m``: no weight holds it), which restoring checks against the
  model's (``release_weights.check_recorded_range``), and the model config's shape-deciding
  fields (``checkpoint_format``). Restoring reads it first: a step folder renamed by hand, or a
  checkpoint of another model config, is refused in one line before any array loads.

Orbax writes each step into a temporary directory and renames it only once every item is
complete, so a run killed mid-save leaves the previous checkpoint as the latest one.

Integrity: once a step this run saved is complete, process 0 records the size and SHA-256 of
each of its files in ``<step>/checksums.json``; every restore checks them first. A training
run whose latest step fails the check moves it to ``<workdir>/corrupt_checkpoints/`` and
resumes from the newest step that passes; evaluation and prediction refuse a corrupt step,
naming it and the file. A step without the record (its run died between Orbax's rename and
the record, or the file was removed) is refused by evaluation and prediction unless they are
told to load it unverified (``allow_unverified``); training resumes from it with a warning,
since a run preempted in that window must requeue by itself, and Orbax's rename already
guarantees that every file of the step was written completely.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import errno
import hashlib
import json
import os
import shutil
from typing import Any

from absl import logging
from etils import epath
from flax import nnx
import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from adabins_jax import checkpoint_format
from adabins_jax import files
from adabins_jax.torch_weights import release as release_weights
from adabins_jax.errors import CheckpointError
from adabins_jax import models
from adabins_jax.torch_weights import mapping as torch_mapping



# Orbax warnings that describe this module's deliberate choices, not problems: a manager opened
# read-only to restore, and saves between evaluations that carry no metric to rank.
_EXPECTED_ORBAX_WARNINGS = ('Given directory is read only',
                            'Requested `tracked_metric`; did not provide metrics')


class _QuietOrbax(logging.logging.Filter):
  """Drops Orbax's per-save INFO lines and its expected warnings unless ``--verbosity`` is 1 or
  more; this module logs what a user needs to know of each save and restore."""

  def filter(self, record) -> bool:
    if logging.get_verbosity() >= 1 or f'{os.sep}orbax{os.sep}' not in record.pathname:
      return True
    return (record.levelno >= logging.logging.WARNING
            and not record.getMessage().startswith(_EXPECTED_ORBAX_WARNINGS))


logging.get_absl_logger().addFilter(_QuietOrbax())

# Checkpoints are ranked by this evaluation metric, lower is better.
BEST_METRIC = 'eval/abs_rel'
CHECKPOINT_DIR = 'checkpoints'
CORRUPT_DIR = 'corrupt_checkpoints'
CHECKSUMS_FILE = 'checksums.json'

# What of the model is saved: everything but RNG keys and counters.
_MODEL_VARIABLES = nnx.Not(nnx.RngState)


def checkpoint_dir(workdir: str | os.PathLike[str]) -> epath.Path:
  """The folder holding a workdir's step directories."""
  return epath.Path(workdir) / CHECKPOINT_DIR


def create_manager(workdir: str | os.PathLike[str], *, keep_latest: int = 3,
                   keep_best: int = 1, save_every_steps: int | None = None,
                   read_only: bool = False) -> ocp.CheckpointManager:
  """Returns the checkpoint manager of a workdir.

  Kept: the ``keep_latest`` newest checkpoints, plus the ``keep_best`` with the lowest
  ``eval/abs_rel`` among those saved with evaluation metrics.

  Args:
    workdir: The run's folder; checkpoints go to ``<workdir>/checkpoints``.
    keep_latest: Number of newest checkpoints to keep.
    keep_best: Number of best-by-``eval/abs_rel`` checkpoints to keep besides.
    save_every_steps: ``manager.save(step, ...)`` writes only every this many steps (or when
      forced, or at a preemption sync point); None: whenever asked.
    read_only: For evaluation and prediction: never write or delete.
  """
  if keep_latest < 1:
    raise ValueError(f'keep_latest={keep_latest}: at least the latest checkpoint must be kept.')
  policies = checkpoint_managers
  save_policies = [policies.PreemptionCheckpointingPolicy()]
  save_policies.append(policies.FixedIntervalPolicy(save_every_steps or 1))
  options = ocp.CheckpointManagerOptions(
      save_decision_policy=policies.AnySavePolicy(save_policies),
      preservation_policy=policies.AnyPreservationPolicy([
          policies.LatestN(n=keep_latest),
          # reverse=True sorts descending, so the last (kept) entries are the lowest.
          policies.BestN(get_metric_fn=_best_metric, reverse=True, n=keep_best,
                         keep_checkpoints_without_metrics=False),
      ]),
      # best_fn/best_mode only make manager.best_step() rank by the same metric.
      best_fn=_best_metric, best_mode='min',
      # Leftovers of a save that was killed are never steps; clear them on start.
      cleanup_tmp_directories=not read_only,
      # What Orbax sets, with a warning, for a read-only manager (the policy above decides).
      save_interval_steps=0 if read_only else 1,
      read_only=read_only,
      create=not read_only)
  return ocp.CheckpointManager(
      checkpoint_dir(workdir).resolve(), options=options,
      item_names=('model', 'optimizer', 'meta'))


def _best_metric(metrics: dict[str, Any]) -> float:
  return float(metrics[BEST_METRIC])


def _digest(path: str | os.PathLike[str]) -> dict[str, Any]:
  """A file's size and SHA-256, as recorded in ``checksums.json``."""
  with open(os.fspath(path), 'rb') as f:
    return {'bytes': os.path.getsize(path), 'sha256': hashlib.file_digest(f, 'sha256').hexdigest()}


def _file_digests(step_dir: epath.Path) -> dict[str, dict[str, Any]]:
  """Relative path -> ``_digest`` of every file of a step directory."""
  digests = {}
  root = os.fspath(step_dir)
  for folder, _, names in os.walk(root):
    for name in sorted(names):
      path = os.path.join(folder, name)
      relative = os.path.relpath(path, root)
      if relative != CHECKSUMS_FILE:
        digests[relative] = _digest(path)
  return digests


# Steps this process saved whose checksums are not recorded yet, per checkpoint folder. Only
# these are recorded: hashing a step some earlier run left unrecorded would bless whatever
# its files hold now.
_UNRECORDED: dict[str, set[int]] = {}


def _record_checksums(manager: ocp.CheckpointManager) -> None:
  """Writes ``checksums.json`` into the finished steps this process saved (process 0 only)."""
  for step in sorted(_UNRECORDED.pop(str(manager.directory), ())):
    step_dir = manager.directory / str(step)
    if jax.process_index() == 0 and step_dir.exists():  # Kept: not deleted by the policy.
      text = json.dumps({'step': int(step), 'files': _file_digests(step_dir)}, indent=1)
      files.write_bytes(os.fspath(step_dir / CHECKSUMS_FILE), text.encode())


def verify(directory: str | os.PathLike[str], step: int) -> bool:
  """Checks a step's files against its ``checksums.json``.

  Returns:
    True if they match, False if the step has no record (nothing to check against).

  Raises:
    CheckpointError: naming the step and the first file that is missing or differs.
  """
  step_dir = epath.Path(directory) / str(step)
  record = step_dir / CHECKSUMS_FILE
  if not record.exists():
    return False
  try:
    recorded = json.loads(record.read_text())['files']
  except (ValueError, KeyError) as e:
    raise CheckpointError(f'Checkpoint step {step} is corrupt: {record} is unreadable '
                          f'({e}).') from e
  for relative, expected in sorted(recorded.items()):
    path = step_dir / relative
    if not path.exists():
      raise CheckpointError(f'Checkpoint step {step} is corrupt: {path} is missing.')
    found = _digest(path)
    if found['bytes'] != expected['bytes']:
      raise CheckpointError(f'Checkpoint step {step} is corrupt: {path} has '
                            f'{found["bytes"]} bytes, {expected["bytes"]} were saved.')
    if found['sha256'] != expected['sha256']:
      raise CheckpointError(f'Checkpoint step {step} is corrupt: the contents of {path} '
                            'differ from what was saved (SHA-256 mismatch).')
  return True


def _verify_or_warn(manager: ocp.CheckpointManager, step: int, *,
                    allow_unverified: bool = True) -> None:
  """Checks a step's checksums; one without them is refused unless ``allow_unverified``."""
  if verify(manager.directory, step):
    return
  record = manager.directory / str(step) / CHECKSUMS_FILE
  if not allow_unverified:
    raise CheckpointError(
        f'Checkpoint step {step} cannot be verified: {record} is missing. Pass '
        '--allow_unverified_checkpoint (Predictor(..., allow_unverified_checkpoint=True)) to '
        'load it anyway.')
  logging.warning('Checkpoint step %d in %s has no %s (its run stopped before recording '
                  'it); loading it unverified.', step, manager.directory, CHECKSUMS_FILE)


def _no_space_left(error: BaseException) -> bool:
  """Whether ``error`` or anything it wraps is a full disk (Orbax and TensorStore nest them)."""
  seen, todo = set(), [error]
  while todo:
    e = todo.pop()
    if e is None or id(e) in seen:
      continue
    seen.add(id(e))
    if getattr(e, 'errno', None) == errno.ENOSPC or 'no space left' in str(e).lower():
      return True
    todo += [e.__cause__, e.__context__, *getattr(e, 'exceptions', ())]
  return False


@contextlib.contextmanager
def _explain_save_errors(manager: ocp.CheckpointManager, what: str) -> Iterator[None]:
  """Turns a full disk, however deeply wrapped, into one line; other errors pass unchanged."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if _no_space_left(e):
      steps = sorted(manager.all_steps(read=True))
      raise CheckpointError(
          f'{what} to {manager.directory} failed: no space left on device. The checkpoints '
          f'saved before are intact (steps {steps}); free space and run again to resume.'
      ) from None
    raise


def finish(manager: ocp.CheckpointManager) -> None:
  """Waits for a save in flight, then records the checksums of every finished step."""
  with _explain_save_errors(manager, 'Saving a checkpoint'):
    manager.wait_until_finished()
  _record_checksums(manager)


def save(manager: ocp.CheckpointManager, step: int, model: nnx.Module,
         optimizer: nnx.Optimizer, *, metrics: dict[str, float] | None = None,
         force: bool = False, model_config=None) -> bool:
  """Saves model, optimizer and data position at ``step`` if the manager's policy says so.

  Asynchronous: returns once the arrays are copied off the devices. Call ``finish(manager)``
  before the process exits; it also records the new step's checksums.

  Args:
    manager: From ``create_manager``.
    step: Number of training steps done; the data pipeline resumes after that many batches.
    model: The model, holding the current state.
    optimizer: Its optimizer.
    metrics: Evaluation metrics of this state (keys like 'eval/abs_rel'), used to keep the
      best checkpoint; None for checkpoints between evaluations.
    force: Save even off the ``save_every_steps`` interval (end of training, signals).
    model_config: The ``config.model`` block the model was built from, recorded so that
      restoring under another one is refused by name (``checkpoint_format``).

  Returns:
    Whether a save was started.
  """
  if step in manager.all_steps():
    return False  # The same state, e.g. the final step fell on the interval.
  args = ocp.args.Composite(
      model=ocp.args.StandardSave(nnx.state(model, _MODEL_VARIABLES)),
      optimizer=ocp.args.StandardSave(nnx.state(optimizer)),
      meta=ocp.args.JsonSave(_meta(step, model, model_config)))
  metrics = None if metrics is None else {k: float(v) for k, v in metrics.items()}
  finish(manager)  # The previous save is complete: record it before starting this one.
  with _explain_save_errors(manager, f'Saving checkpoint step {step}'):
    saved = manager.save(step, args=args, metrics=metrics, force=force)
  if saved:
    _UNRECORDED.setdefault(str(manager.directory), set()).add(int(step))
    logging.info('Saving checkpoint at step %d to %s.', step, manager.directory)
  return saved


def _meta(step: int, model: nnx.Module, model_config) -> dict[str, Any]:
  meta = {'step': int(step), **_depth_range(model)}
  if model_config is not None:
    meta['model'] = checkpoint_format.model_fields(model_config)
  return meta


def _depth_range(model: nnx.Module) -> dict[str, float]:
  """The model's depth range as ``meta`` records it; empty for models without one."""
  depth_range = release_weights.model_range(model)
  return {} if depth_range is None else dict(zip(('min_depth_m', 'max_depth_m'), depth_range))


def _checked_meta(manager: ocp.CheckpointManager, step: int, model: nnx.Module,
                  model_config) -> dict[str, Any]:
  """The step's ``meta``, read alone and checked against the folder's step, the requested
  model config and the model's depth range before any array is restored."""
  step_dir = manager.directory / str(step)
  meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))['meta']
  checkpoint_format.check_step(meta, step, step_dir)
  checkpoint_format.check_model(meta, model_config, step_dir)
  depth_range = release_weights.model_range(model)
  if depth_range is not None:
    release_weights.check_recorded_range(meta, depth_range, os.fspath(step_dir))
  return meta


@contextlib.contextmanager
def _explain_restore_errors(manager: ocp.CheckpointManager, step: int,
                            model_config) -> Iterator[None]:
  """Orbax's many-line tree diff of a checkpoint from another config, as one line."""
  try:
    yield
  except ValueError as e:
    summary = checkpoint_format.summarise_restore_error(e, manager.directory / str(step),
                                                      model_config)
    if summary is None:
      raise
    raise summary from None


def _abstract(tree: Any, sharding: jax.sharding.Sharding | None = None) -> Any:
  """Shape/dtype/sharding of every array: the restore target, so arrays land in place.

  ``sharding``, if given, replaces every leaf's own (shape-only models have none).
  """
  def target(x):
    x = ocp.utils.to_shape_dtype_struct(x)
    return x if sharding is None else jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding)

  return jax.tree.map(target, tree)


def restore(manager: ocp.CheckpointManager, model: nnx.Module, optimizer: nnx.Optimizer,
            step: int | None = None, *, model_config=None,
            sharding: jax.sharding.Sharding | None = None) -> int:
  """Restores the latest (or a given) checkpoint into ``model`` and ``optimizer``, in place.

  The current arrays of ``model`` and ``optimizer`` give the target shapes, dtypes and
  shardings, so place them (e.g. replicate them over the mesh) first, or pass ``sharding``.

  Args:
    manager: From ``create_manager``.
    model: The freshly built model, or a shape-only one (``models.build_abstract_model``).
    optimizer: Its optimizer (shape-only with a shape-only model: ``nnx.eval_shape``).
    step: The step to restore; None: the latest.
    model_config: The ``config.model`` block ``model`` was built from; a checkpoint that
      records another is refused (``checkpoint_format.check_model``).
    sharding: Where to put every restored array, e.g. ``parallel.replicated_sharding(mesh)``;
      None: where the target's arrays are.

  Without ``step``, a latest step that fails its checksums is moved to
  ``<workdir>/corrupt_checkpoints/`` (by process 0) and the next newest is tried.

  Returns:
    The restored step, or 0 (nothing changed) when the workdir holds no checkpoint.

  Raises:
    CheckpointError: The given step is corrupt, or every step is, or its folder was renamed.
    ConfigMismatchError: The checkpoint was saved by another model config.
  """
  if step is None:
    step = _latest_good_step(manager)
    if step is None:
      return 0
  else:
    _verify_or_warn(manager, step)
  _checked_meta(manager, step, model, model_config)
  optimizer_target = _abstract(nnx.state(optimizer), sharding)
  saved = checkpoint_format.saved_tree(manager.directory / str(step) / 'optimizer')
  target = checkpoint_format.leaves_by_path(optimizer_target)
  joins = checkpoint_format.plan(
      checkpoint_format.leaves_by_path(saved), target,
      checkpoint_format.leaves_by_path(nnx.state(model, optimizer.wrt)))
  with _explain_restore_errors(manager, step, model_config):
    restored = manager.restore(step, args=ocp.args.Composite(
        model=ocp.args.StandardRestore(_abstract(nnx.state(model, _MODEL_VARIABLES), sharding)),
        optimizer=ocp.args.StandardRestore(
            checkpoint_format.restore_target(saved, target, joins) if joins
            else optimizer_target)))
  nnx.update(model, restored['model'])
  if joins:
    nnx.update(optimizer, checkpoint_format.join(restored['optimizer'], optimizer_target, joins))
    logging.info('Checkpoint step %d holds Adam moments per weight tensor; joined them into '
                 "%d vectors, one per lr group's mu and nu.", step, len(joins))
  else:
    nnx.update(optimizer, restored['optimizer'])
  logging.info('Restored checkpoint of step %d from %s.', step, manager.directory)
  return step


def _latest_good_step(manager: ocp.CheckpointManager) -> int | None:
  """The newest step that passes its checksums, setting corrupt newer ones aside."""
  for step in sorted(manager.all_steps(), reverse=True):
    try:
      _verify_or_warn(manager, step)
      return step
    except CheckpointError as e:
      aside = manager.directory.parent / CORRUPT_DIR / str(step)
      logging.error('%s Moving it to %s and resuming from the step before.', e, aside)
      if jax.process_index() == 0:
        aside.parent.mkdir(parents=True, exist_ok=True)
        if aside.exists():
          shutil.rmtree(os.fspath(aside))
        (manager.directory / str(step)).rename(aside)
      if jax.process_count() > 1:
        from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
        multihost_utils.sync_global_devices(f'checkpoint {step} set aside')
      manager.reload()
  return None


def select_step(manager: ocp.CheckpointManager, which: str = 'best') -> int:
  """The step named by ``which``: 'best' (lowest eval/abs_rel, else latest), 'latest', or a
  step number.

  Raises:
    FileNotFoundError: There is no such checkpoint.
  """
  steps = manager.all_steps()
  if which == 'best':
    step = manager.best_step()
    step = manager.latest_step() if step is None else step
  elif which == 'latest':
    step = manager.latest_step()
  elif str(which).isdigit():
    step = int(which)
  else:
    raise ValueError(f"Checkpoint {which!r}: expected 'best', 'latest' or a step number.")
  if step is None or step not in steps:
    raise FileNotFoundError(
        f'No checkpoint {which!r} in {manager.directory} (steps there: {sorted(steps)}).')
  return step


def restore_model(workdir: str | os.PathLike[str], model: nnx.Module, which: str = 'best', *,
                  sharding: jax.sharding.Sharding | None = None, model_config=None,
                  allow_unverified: bool = False) -> int:
  """Restores only the model (no optimizer) of a training run, in place, for evaluation.

  Args:
    workdir: The training run's folder.
    model: A model built with the run's model config, e.g. ``models.build_abstract_model``;
      its arrays give the target shardings unless ``sharding`` is given.
    which: 'best', 'latest' or a step number (see ``select_step``).
    sharding: Where to put every restored array, e.g. ``parallel.replicated_sharding(mesh)``.
    model_config: The ``config.model`` block ``model`` was built from (see ``restore``).
    allow_unverified: Load a step without ``checksums.json`` (with a warning) instead of
      refusing it.

  Returns:
    The restored step.

  Raises:
    CheckpointError: The step is corrupt, unverifiable, or its folder was renamed.
    ConfigMismatchError: The checkpoint was saved by another model config.
  """
  manager = create_manager(workdir, read_only=True)
  step = select_step(manager, which)
  try:
    _verify_or_warn(manager, step, allow_unverified=allow_unverified)
    _checked_meta(manager, step, model, model_config)
    with _explain_restore_errors(manager, step, model_config):
      restored = manager.restore(step, args=ocp.args.Composite(model=ocp.args.StandardRestore(
          _abstract(nnx.state(model, _MODEL_VARIABLES), sharding))))
  finally:
    manager.close()
  nnx.update(model, restored['model'])
  logging.info('Restored the model of step %d from %s.', step, manager.directory)
  return step


def load_torch_checkpoint(model: nnx.Module, path: str | os.PathLike[str], *,
                          allow_range_mismatch: bool = False) -> None:
  """Loads a released PyTorch AdaBins ``.pt`` into a built model, in place (strict by name).

  See ``adabins_jax.torch_weights.mapping`` for the formats accepted; ``adabins_jax.torch_weights``
  turns such a file into this project's Orbax checkpoint. A file whose name says another depth
  range than the model's is refused unless ``allow_range_mismatch``
  (``release_weights.check_file_range``).
  """
  # pylint: disable=g-import-not-at-top
  from adabins_jax.torch_weights import mapping as torch_mapping
  torch_mapping.load_torch_checkpoint(model, path, allow_range_mismatch=allow_range_mismatch)


def load_model(config, workdir: str | None, weights: str | None = None, *,
               allow_unverified: bool = False) -> tuple[nnx.Module, str]:
  """The config's model in eval mode with trained weights, and where they came from.

  Args:
    config: The full config (uses model, eval.checkpoint, seed).
    workdir: A training run's folder; its ``config.eval.checkpoint`` is loaded.
    weights: A released PyTorch ``.pt``/``.pth``; used instead of ``workdir`` when given.
    allow_unverified: Load a workdir step without ``checksums.json`` instead of refusing it.
  """
  # Shape-only until loaded: random initialisation would compile a program per weight shape.
  model = models.build_abstract_model(config.model, seed=config.seed)
  if weights:
    torch_mapping.load_torch_checkpoint(
        model, weights, allow_range_mismatch=config.model.allow_range_mismatch)
    source = os.fspath(weights)
  elif workdir:
    step = restore_model(workdir, model, config.eval.checkpoint, model_config=config.model,
                         allow_unverified=allow_unverified)
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
