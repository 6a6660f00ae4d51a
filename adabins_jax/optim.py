"""The paper's optimiser: global-norm clip, then AdamW on a PyTorch ``OneCycleLR`` schedule.

The recipe and its release's quirks are described in docs/reference.md ("The training recipe").

The learning rate and Adam's beta1 follow ``torch.optim.lr_scheduler.OneCycleLR`` with cosine
annealing and two phases: lr ``max/div_factor -> max -> max/div_factor/final_div_factor`` while
beta1 goes ``max_beta1 -> base_beta1 -> max_beta1``. Optimizer step ``i`` (0-based) uses the
schedule at ``i``, as the release's ``optimizer.step(); scheduler.step()`` loop does.

Parameter groups are regex rules over the '/'-joined parameter path, each with an lr multiplier,
applied with ``optax.partition``. Weight decay is AdamW's decoupled ``lr * wd * param`` on every
parameter, so a group's multiplier scales its decay too, exactly as a torch param group's lr does.

With ``optim.flatten_groups`` each group's AdamW runs on one vector, its parameters raveled in
``jax.flatten_util.ravel_pytree``'s leaf order. AdamW is elementwise, so the arithmetic is the
same (the compiled kernels may round an element one unit in the last place differently, and the
global norm adds its squares in another order), while the compiled step holds the norm, clip,
moment, decay and update kernels once per group instead of once per weight tensor: only the
ravel and the unravel stay per tensor. The state then holds one ``mu`` and one ``nu`` vector per
group; ``checkpoint_format`` turns a per-tensor state into that form.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Sequence
from typing import Any

import jax
from jax import flatten_util
import jax.numpy as jnp
import ml_collections
import optax

# The release's two-group variant puts the pretrained encoder under this prefix.
ENCODER_RULE = r'^encoder/'


def _cosine(start: float, end: float, frac: jax.Array, frac_left: jax.Array) -> jax.Array:
  """torch's ``_annealing_cos(start, end, frac)``, rewritten to keep float32 precision.

  ``end + (start - end) / 2 * (1 + cos(pi * frac))`` loses relative precision where the result is
  small next to ``start - end`` (the tail of the lr schedule reaches max / 2500). The identities
  ``(1 + cos(pi f)) / 2 = sin^2(pi (1 - f) / 2)`` and ``1 - that = sin^2(pi f / 2)`` let us always
  add a non-negative term to the smaller endpoint; ``frac_left`` is ``1 - frac`` computed exactly
  from integers by the caller.
  """
  if end >= start:
    return start + (end - start) * jnp.square(jnp.sin(0.5 * math.pi * frac))
  return end + (start - end) * jnp.square(jnp.sin(0.5 * math.pi * frac_left))


def one_cycle_schedule(initial: float, peak: float, final: float, total_steps: int,
                       pct_start: float) -> optax.Schedule:
  """A two-phase cosine one-cycle schedule with ``OneCycleLR``'s exact step arithmetic.

  Phase 1 runs ``initial -> peak`` over steps ``[0, pct_start * total_steps - 1]``, phase 2
  ``peak -> final`` up to step ``total_steps - 1``; later steps hold ``final`` (torch raises
  there). The phase boundary is a float, as in torch, so it may fall between steps.

  Args:
    initial: value at step 0.
    peak: value at the end of phase 1.
    final: value at the last step.
    total_steps: number of optimizer steps in the run.
    pct_start: fraction of the run in phase 1, in (0, 1).

  Returns:
    A function step -> float32 value.
  """
  if not isinstance(total_steps, numbers.Integral) or total_steps < 1:
    raise ValueError(
        f'one-cycle schedule: total_steps must be a positive int, got {total_steps!r}.')
  if not 0.0 < pct_start < 1.0:
    raise ValueError(f'one-cycle schedule: pct_start must be in (0, 1), got {pct_start}.')
  total_steps = int(total_steps)
  end1 = float(pct_start * total_steps) - 1.0
  end2 = float(total_steps - 1)

  def schedule(count):
    step = jnp.clip(jnp.asarray(count), 0, total_steps - 1).astype(jnp.float32)
    # Phase 2 starts at the float boundary end1, as torch's `start_step = phase['end_step']`.
    span2 = end2 - end1
    value = _cosine(peak, final, (step - end1) / span2, (end2 - step) / span2)
    if end1 > 0:  # else torch never enters phase 1 (and divides by zero when end1 == 0)
      warm = _cosine(initial, peak, step / end1, (end1 - step) / end1)
      value = jnp.where(step <= end1, warm, value)
    return value

  return schedule


def learning_rate_schedule(optim_config: ml_collections.ConfigDict,
                           total_steps: int) -> optax.Schedule:
  """The base learning rate per step (multiplier 1), e.g. for logging.

  Args:
    optim_config: ``config.optim`` (learning_rate, pct_start, div_factor, final_div_factor).
    total_steps: number of optimizer steps in the run.
  """
  initial = optim_config.learning_rate / optim_config.div_factor
  return one_cycle_schedule(initial, optim_config.learning_rate,
                            initial / optim_config.final_div_factor, total_steps,
                            optim_config.pct_start)


def beta1_schedule(optim_config: ml_collections.ConfigDict, total_steps: int) -> optax.Schedule:
  """Adam's beta1 per step, cycled inversely to the learning rate (``cycle_momentum``).

  Args:
    optim_config: ``config.optim`` (base_beta1, max_beta1, pct_start).
    total_steps: number of optimizer steps in the run.
  """
  return one_cycle_schedule(optim_config.max_beta1, optim_config.base_beta1,
                            optim_config.max_beta1, total_steps, optim_config.pct_start)


def lr_multiplier_rules(optim_config: ml_collections.ConfigDict) -> list[tuple[str, float]]:
  """The (regex, lr multiplier) rules in force: the config's own, then the encoder's.

  Args:
    optim_config: ``config.optim`` (lr_multiplier_rules, encoder_lr_multiplier).
  """
  rules = [(str(pattern), float(mult)) for pattern, mult in optim_config.lr_multiplier_rules]
  rules.append((ENCODER_RULE, float(optim_config.encoder_lr_multiplier)))
  for pattern, mult in rules:
    try:
      re.compile(pattern)
    except re.error as e:
      raise ValueError(f'optim.lr_multiplier_rules: bad regex {pattern!r}: {e}') from e
    if not mult >= 0.0:
      raise ValueError(f'optim: lr multiplier for {pattern!r} must be >= 0, got {mult}.')
  return rules


def _key_name(key: Any) -> str | None:
  if isinstance(key, jax.tree_util.DictKey):
    return str(key.key)
  if isinstance(key, jax.tree_util.SequenceKey):
    return str(key.idx)
  if isinstance(key, jax.tree_util.FlattenedIndexKey):
    return str(key.key)
  if isinstance(key, jax.tree_util.GetAttrKey):
    # An nnx.Variable flattens to its array under `.value`: not part of the parameter's name.
    return None if key.name == 'value' else key.name
  return str(key)


def parameter_path(path: Sequence[Any]) -> str:
  """The '/'-joined name of a pytree path, e.g. 'encoder/blocks/0/conv/kernel'."""
  return '/'.join(name for name in map(_key_name, path) if name is not None)


def _group_name(multiplier: float) -> str:
  return f'lr_x{multiplier:g}'


def param_group_labels(params: Any, rules: Sequence[tuple[str, float]]) -> Any:
  """A pytree like ``params`` holding each leaf's group name; the first matching rule wins.

  Args:
    params: the parameter pytree (e.g. ``nnx.state(model, nnx.Param)``).
    rules: (regex, multiplier) pairs, searched (``re.search``) in the parameter path.
  """
  compiled = [(re.compile(pattern), mult) for pattern, mult in rules]

  def label(path, _):
    name = parameter_path(path)
    mult = next((m for regex, m in compiled if regex.search(name)), 1.0)
    return _group_name(mult)

  return jax.tree_util.tree_map_with_path(label, params)


def flattened(inner: optax.GradientTransformation) -> optax.GradientTransformation:
  """``inner`` run on one vector: the leaves raveled as ``ravel_pytree`` does, and back.

  Like ``optax.flatten``, except for a pytree without leaves (a group whose rules match no
  parameter of the model): that goes to ``inner`` as it is, since a zero-size vector in the
  state could not be saved (Orbax refuses zero-size arrays).
  """

  def init(params):
    if not jax.tree.leaves(params):
      return inner.init(params)
    return inner.init(flatten_util.ravel_pytree(params)[0])

  def update(updates, state, params=None):
    if not jax.tree.leaves(updates):
      return inner.update(updates, state, params)
    flat, unravel = flatten_util.ravel_pytree(updates)
    if params is not None:
      params = flatten_util.ravel_pytree(params)[0]
    flat, state = inner.update(flat, state, params)
    return unravel(flat), state

  return optax.GradientTransformation(init, update)


def global_norm(tree: Any) -> jax.Array:
  """The L2 norm of all of a pytree's leaves, summed as one vector.

  Equal to ``optax.tree.norm`` up to the order of the additions; that one reduces each leaf on its
  own, which for the paper model's ~600 weight tensors compiles to ~1,200 small kernels (XLA's CPU
  back end splits each reduction in two) where this compiles to one or two.
  """
  leaves = jax.tree.leaves(tree)
  if not leaves:
    return jnp.zeros((), jnp.float32)
  flat = jnp.concatenate([jnp.ravel(leaf) for leaf in leaves])
  return jnp.sqrt(jnp.sum(jnp.square(flat)))


def _clipped_flat_groups(max_norm: float, transforms: dict[str, optax.GradientTransformation],
                         labels_fn: Callable[[Any], Any]) -> optax.GradientTransformation:
  """``chain(clip_by_global_norm(max_norm), partition(flattened transforms, labels_fn))``, run
  on one vector per group from end to end.

  Its state is that chain's (so checkpoints of either read in the other), and its arithmetic the
  same up to the order of the norm's additions: each group's gradients are raveled once, the
  global norm and the clip act on those vectors, and each group's ``transforms`` entry updates
  its vector. The chain itself would clip, and take the norm of, every weight tensor on its own.
  """
  reference = optax.chain(
      optax.clip_by_global_norm(max_norm),
      optax.partition({group: flattened(tx) for group, tx in transforms.items()}, labels_fn))

  def update(updates, state, params=None):
    clip_state, partition_state = state
    leaves, treedef = jax.tree.flatten(updates)
    labels = treedef.flatten_up_to(labels_fn(updates))
    param_leaves = None if params is None else treedef.flatten_up_to(params)
    members = {group: [i for i, label in enumerate(labels) if label == group]
               for group in transforms}

    def ravel(values, group):
      return jnp.concatenate([jnp.ravel(values[i]) for i in members[group]])

    flats = {group: ravel(leaves, group) for group in transforms if members[group]}
    norm = jnp.sqrt(sum(jnp.sum(jnp.square(flat)) for flat in flats.values()))
    # optax.clip_by_global_norm's arithmetic, on the vectors.
    keep = jnp.squeeze(norm < max_norm)
    flats = {group: jax.lax.select(keep, flat, (flat / norm.astype(flat.dtype)) * max_norm)
             for group, flat in flats.items()}
    new_leaves = list(leaves)
    inner_states = {}
    for group, tx in transforms.items():
      inner_state = partition_state.inner_states[group].inner_state
      if group not in flats:
        # No parameter in the group: its state still counts the step, as partition's would.
        masked = treedef.unflatten([optax.MaskedNode()] * len(leaves))
        _, inner_state = tx.update(masked, inner_state, None if params is None else masked)
      else:
        group_params = None if params is None else ravel(param_leaves, group)
        flat, inner_state = tx.update(flats[group], inner_state, group_params)
        offset = 0
        for i in members[group]:
          size = leaves[i].size
          new_leaves[i] = flat[offset:offset + size].reshape(leaves[i].shape).astype(
              leaves[i].dtype)
          offset += size
      inner_states[group] = optax.MaskedState(inner_state=inner_state)
    return (treedef.unflatten(new_leaves),
            (clip_state, optax.PartitionState(inner_states=inner_states)))

  return optax.GradientTransformation(reference.init, update)


def create_optimizer(optim_config: ml_collections.ConfigDict,
                     total_steps: int) -> optax.GradientTransformation:
  """Global-norm clip of the whole gradient, then AdamW per lr group on the one-cycle schedules.

  Args:
    optim_config: ``config.optim``; see configs/default.py for the fields.
    total_steps: number of optimizer steps in the run (the schedule's length).

  Returns:
    An optax transformation; each group's learning rate and beta1 are in its
    ``inject_hyperparams`` state, at the same place whether or not the group is flattened.
  """
  lr = learning_rate_schedule(optim_config, total_steps)
  b1 = beta1_schedule(optim_config, total_steps)
  rules = lr_multiplier_rules(optim_config)

  def group(multiplier: float) -> optax.GradientTransformation:
    group_lr: Callable[[jax.Array], jax.Array] = (
        lr if multiplier == 1.0 else (lambda count: multiplier * lr(count)))
    return optax.inject_hyperparams(optax.adamw)(
        learning_rate=group_lr, b1=b1, b2=optim_config.beta2, eps=optim_config.eps,
        weight_decay=optim_config.weight_decay)

  multipliers = sorted({1.0, *(m for _, m in rules)})
  transforms = {_group_name(m): group(m) for m in multipliers}

  def labels(params):
    return param_group_labels(params, rules)

  if optim_config.flatten_groups:
    return _clipped_flat_groups(optim_config.grad_clip_norm, transforms, labels)
  return optax.chain(optax.clip_by_global_norm(optim_config.grad_clip_norm),
                     optax.partition(transforms, labels))
