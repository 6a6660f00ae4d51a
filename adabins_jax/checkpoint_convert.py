"""Reads a per-tensor optimizer state from a checkpoint into the flattened optimizer.

Checkpoints saved before ``optim.flatten_groups`` hold each lr group's Adam moments ``mu`` and
``nu`` as one array per weight tensor; the flattened optimizer keeps one vector per group, the
group's tensors raveled in ``jax.flatten_util.ravel_pytree``'s order, which is the order of the
model's parameter state. Every other entry (step counts, injected hyperparameters) sits at the
same place in both. ``checkpointing.restore`` uses ``plan`` to find the moments to join and
``restore_target`` / ``join`` to read and convert them; the arrays are only concatenated, so
training continues from exactly the numbers that were saved.
"""

from __future__ import annotations

from collections.abc import Sequence
import math
import os
from typing import Any

from etils import epath
import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from adabins_jax.errors import CheckpointError

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
