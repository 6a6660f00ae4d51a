"""A checkpoint's format: its ``meta`` record and the checks on it, and older layouts read.

``meta`` is small JSON, read before any array, so a checkpoint that does not belong to the
requested model or step is refused in one line instead of by Orbax's tree diff. It records
the step, the data position, the depth range (checked by ``release_weights``) and, since
``model`` was added, the model config's fields that decide the weights' shapes.
Checkpoints written before that field existed are compared on what they hold; a mismatch
then surfaces as Orbax's structure or shape error, which ``summarise_restore_error`` shortens.

Optimizer state saved per weight tensor is read into the flattened optimizer
(``optim.flatten_groups``): each lr group's Adam moments ``mu`` and ``nu`` are one vector
there, the group's tensors raveled in ``jax.flatten_util.ravel_pytree``'s order, which is the
order of the model's parameter state. Every other entry (step counts, injected
hyperparameters) sits at the same place in both. ``checkpointing.restore`` uses ``plan`` to
find the moments to join and ``restore_target`` / ``join`` to read and convert them; the
arrays are only concatenated, so training continues from exactly the numbers that were saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
import math
import os

from etils import epath
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from adabins_jax.errors import CheckpointError
from adabins_jax.errors import ConfigMismatchError

# The config.model fields that decide which variables a model has and their shapes; fields
# that change only how it computes (dtype, conv implementations, dropout) are left out, so
# that a checkpoint still loads under them.
MODEL_FIELDS = ('name', 'n_bins', 'unet_widths', 'feature_channels', 'decoder_features',
                'conv', 'bin_norm', 'patch_size', 'n_queries', 'embed_dim', 'num_heads',
                'num_layers', 'ffn_dim', 'pos_table_size')


def _plain(value: Any) -> Any:
  """A config value as JSON gives it back, so saved and requested values compare equal."""
  if isinstance(value, (tuple, list)):
    return [_plain(v) for v in value]
  return value


def model_fields(model_config) -> dict[str, Any]:
  """The ``MODEL_FIELDS`` a ``config.model`` block sets, JSON-ready."""
  return {f: _plain(model_config.get(f)) for f in MODEL_FIELDS if f in model_config}


def describe(fields: Mapping[str, Any]) -> str:
  """``name=unet n_bins=128 ...`` of a ``model_fields`` dict."""
  return ' '.join(f'{k}={v}' for k, v in fields.items())


def check_step(meta: Mapping[str, Any], step: int, step_dir: str | os.PathLike) -> None:
  """Refuses a step folder whose recorded step is another: one renamed or copied by hand.

  The folder's number is what training resumes from and the data position it skips to, so a
  wrong number would silently retrain or skip data.
  """
  recorded = meta.get('step')
  if recorded is not None and int(recorded) != int(step):
    raise CheckpointError(
        f'{os.fspath(step_dir)} holds the checkpoint of step {recorded}, not {step}: the folder '
        f'was renamed or copied by hand. Rename it back to {recorded}.')


def check_model(meta: Mapping[str, Any], model_config, step_dir: str | os.PathLike) -> None:
  """Refuses a checkpoint saved by a model config whose recorded fields differ."""
  saved = meta.get('model')
  if not saved or model_config is None:
    return
  requested = model_fields(model_config)
  differ = [k for k in saved if k in requested and saved[k] != requested[k]]
  if differ:
    raise ConfigMismatchError(
        f'{os.fspath(step_dir)} was saved by another model: saved {describe(saved)}; '
        f'requested {describe(requested)} (differ: {", ".join(differ)}).')


def summarise_restore_error(error: Exception, step_dir: str | os.PathLike,
                            model_config) -> ConfigMismatchError | None:
  """Orbax's structure or shape mismatch as one line; None for any other error.

  For checkpoints without ``meta['model']``, the only sign of another config.
  """
  lines = [line for line in str(error).splitlines() if line.strip()]
  if not lines:
    return None
  first = lines[0]
  if 'structures do not match' in first:
    names = [line.rstrip(':') for line in lines[1:] if not line[0].isspace()]
    gist = (f'{len(names)} of its variables differ from the model\'s'
            + (f' (first: {names[0]})' if names else ''))
  elif 'not compatible with the stored shape' in first:
    gist = first.split('. ')[0]
  else:
    return None
  requested = '' if model_config is None else f' (requested {describe(model_fields(model_config))})'
  return ConfigMismatchError(
      f'{os.fspath(step_dir)} was saved by another model config{requested}: {gist}.')


Path = tuple[str, ...]
# Where each flat moment vector comes from: its path -> the saved per-tensor paths, in order.
Plan = dict[Path, list[Path]]


def _key(key: Any) -> str:
  for attr in ('key', 'idx', 'name'):
    if hasattr(key, attr):
      return str(getattr(key, attr))
  return str(key)


def leaves_by_path(tree: Any) -> dict[Path, Any]:
  """Every leaf of ``tree`` by its path of strings, as Orbax names the saved entries."""
  return {tuple(map(_key, path)): leaf
          for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def saved_tree(item_dir: str | os.PathLike[str]) -> dict:
  """The array metadata (shape, dtype) of a saved ``StandardSave`` item, as a nested dict.

  Entries Optax masks out of a group were saved as None and stay so: a restore target must
  name them too.
  """
  metadata = ocp.StandardCheckpointHandler().metadata(epath.Path(item_dir))
  return metadata.tree


def plan(saved: dict[Path, Any], target: dict[Path, Any], params: dict[Path, Any]) -> Plan:
  """Which saved per-tensor moments make up each flat moment vector of ``target``.

  Args:
    saved: The checkpoint's optimizer entries (``leaves_by_path(saved_tree(...))``).
    target: The optimizer state to restore into (``leaves_by_path``).
    params: The parameter state the optimizer updates (``leaves_by_path``), in its order.

  Returns:
    Empty when the checkpoint has the target's layout (nothing to convert).

  Raises:
    CheckpointError: The checkpoint's optimizer state fits neither layout.
  """
  order = [path[:-1] for path in params]  # Without the Variable's trailing 'value'.
  joins: Plan = {}
  for path, leaf in target.items():
    if path in saved:
      continue
    prefix, last = path[:-1], path[-1:]
    parts = [prefix + name + last for name in order if prefix + name + last in saved]
    if len(getattr(leaf, 'shape', ())) != 1 or not parts:
      raise _mismatch(f'it has no {"/".join(path)}')
    size = sum(math.prod(saved[p].shape) for p in parts)
    if size != leaf.shape[0]:
      raise _mismatch(f'its tensors under {"/".join(prefix)} hold {size} numbers, the '
                      f'flattened optimizer {leaf.shape[0]}')
    joins[path] = parts
  used = {p for parts in joins.values() for p in parts} | set(target)
  unused = sorted(set(saved) - used)
  if unused:
    raise _mismatch(f'it has {"/".join(unused[0])}, which this optimizer does not')
  return joins


def _mismatch(reason: str) -> CheckpointError:
  return CheckpointError(f"The checkpoint's optimizer state does not fit this optimizer: "
                         f'{reason}. Are optim.flatten_groups and the lr multipliers those of '
                         'the run that saved it? (Per-tensor moments are read into flattened '
                         'groups, not the other way.)')


def restore_target(saved: dict, target: dict[Path, Any], joins: Plan) -> dict:
  """The saved layout (``saved_tree``) as ``jax.ShapeDtypeStruct``s, for ``StandardRestore``.

  Entries the target shares keep its sharding; a per-tensor moment takes the sharding of the
  flat vector it joins (replicated, as the whole state is).
  """
  sharding = {p: getattr(target[flat], 'sharding', None)
              for flat, parts in joins.items() for p in parts}

  def abstract(path, leaf):
    path = tuple(map(_key, path))
    where = getattr(target[path], 'sharding', None) if path in target else sharding[path]
    return jax.ShapeDtypeStruct(tuple(leaf.shape), leaf.dtype, sharding=where)

  return jax.tree_util.tree_map_with_path(abstract, saved)


def join(restored: dict, target_state: Any, joins: Plan) -> Any:
  """``target_state`` filled from the restored per-tensor ``restored``, moments joined."""
  def lookup(path: Sequence[str]) -> Any:
    node = restored
    for name in path:
      node = node[name]
    return node

  def fill(path, leaf):
    path = tuple(map(_key, path))
    if path not in joins:
      return lookup(path)
    parts = [lookup(p) for p in joins[path]]
    return jax.jit(_concatenate, out_shardings=getattr(leaf, 'sharding', None))(parts)

  return jax.tree_util.tree_map_with_path(fill, target_state)


def _concatenate(parts: list[jax.Array]) -> jax.Array:
  """The parts raveled and joined, as ``ravel_pytree`` joins them; exact, only moved."""
  return jnp.concatenate([jnp.ravel(x) for x in parts])
