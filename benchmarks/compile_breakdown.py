"""What a config's train step costs to compile, and how much of that is the optimizer.

  python benchmarks/compile_breakdown.py --config=effnet_b5_256     # batch 2 at 416x544
  XLA_FLAGS=--xla_backend_optimization_level=1 python benchmarks/compile_breakdown.py
  python benchmarks/compile_breakdown.py --optimizer=both --rounds=2 --no-gradients_only

Compiles, with the persistent cache off, ``steps.make_train_step`` for random weights and then
the same loss and gradients without the optimizer update, and prints the trace + lower and
compile seconds of each. Then it counts the fusions (one kernel call each in XLA's CPU runtime)
of the full step's optimized program by the scope that made them (the groups of
profile_train_step.py), since the CPU back end's compile time grows with the number of kernels
it generates. ``--optimizer`` picks the flattened lr groups (``optim.flatten_groups``, the
default), the per-tensor optimizer, or both, compiled alternately ``--rounds`` times each so that
a changing machine load falls on both alike.
"""

from __future__ import annotations

import argparse
import collections
import functools
import re
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adabins_jax.benchmark import measure
from adabins_jax import network_input
from adabins_jax import optim
from adabins_jax import steps
from adabins_jax import models
import profile_train_step


def fusions_by_group(hlo_text: str) -> collections.Counter:
  """Fusion calls of an optimized HLO module's entry computation, per profile group."""
  names = profile_train_step._op_names(hlo_text)  # pylint: disable=protected-access
  counts = collections.Counter()
  entry = hlo_text[hlo_text.index('\nENTRY'):]
  for line in entry.splitlines():
    match = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = .* fusion\(', line)
    if match:
      counts[profile_train_step._group(names.get(match.group(1), ''))] += 1  # pylint: disable=protected-access
  return counts


def _timed_compile(jitted, *args) -> tuple[float, float, object]:
  start = time.perf_counter()
  lowered = jitted.trace(*args).lower()
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  return lowered_at - start, time.perf_counter() - lowered_at, compiled


def _train_step_cost(config, model, batch, key, flatten_groups: bool):
  """(trace + lower s, compile s, fusions by group) of the train step with that optimizer."""
  config = config.copy_and_resolve_references()
  config.optim.flatten_groups = flatten_groups
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, 1000), wrt=nnx.Param)
  step = steps.make_train_step(config, nnx.graphdef((model, optimizer)),
                               optim.learning_rate_schedule(config.optim, 1000))
  lower_s, compile_s, compiled = _timed_compile(step, nnx.state((model, optimizer)), batch, key)
  return lower_s, compile_s, fusions_by_group(compiled.as_text())


def _gradients_cost(config, model, batch, key) -> tuple[float, float]:
  graphdef = nnx.graphdef(model)
  loss_kwargs = steps.train_loss_kwargs(config)

  def gradients(state, batch, key):
    model = nnx.merge(graphdef, state)
    model.train()
    nnx.reseed(model, dropout=key)
    loss_fn = functools.partial(steps.train_loss, batch=batch, **loss_kwargs)
    (loss, _), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    return loss, grads, nnx.state(model)

  lower_s, compile_s, _ = _timed_compile(jax.jit(gradients), nnx.state(model), batch, key)
  return lower_s, compile_s


_FORMS = {'flat': [True], 'per_tensor': [False], 'both': [True, False]}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='effnet_b5_256', help='Config name or path.')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--size', default='416x544', help='Network input HxW (and ground truth).')
  parser.add_argument('--optimizer', choices=tuple(_FORMS), default='flat',
                      help='AdamW on one vector per lr group, per weight tensor, or both.')
  parser.add_argument('--rounds', type=int, default=1,
                      help='Compiles of each optimizer form, alternated.')
  parser.add_argument('--gradients_only', action=argparse.BooleanOptionalAction, default=True,
                      help='Also compile the loss and gradients without the optimizer.')
  args = parser.parse_args()
  jax.config.update('jax_enable_compilation_cache', False)
  config = measure.load_config(args.config)
  h, w = network_input.parse_size(args.size, '--size')
  model = models.random_model(config.model)
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.standard_normal((args.batch, h, w, 3), np.float32)),
           'depth': jnp.asarray(rng.uniform(0.5, 9.0, (args.batch, h, w, 1)), jnp.float32)}
  key = jax.random.key(0)

  rows, groups = [], {}
  for round_ in range(args.rounds):
    for flatten_groups in _FORMS[args.optimizer]:
      name = 'flat groups' if flatten_groups else 'per tensor'
      lower_s, compile_s, groups[name] = _train_step_cost(config, model, batch, key,
                                                          flatten_groups)
      rows.append(f'| train step, optimizer {name} ({round_ + 1}) | {lower_s:.1f} | '
                  f'{compile_s:.1f} |')
      print(rows[-1], flush=True)
  if args.gradients_only:
    lower_s, compile_s = _gradients_cost(config, model, batch, key)
    rows.append(f'| loss and gradients only | {lower_s:.1f} | {compile_s:.1f} |')

  print(f'\n{args.config}: batch {args.batch} at {h}x{w}, jax {jax.__version__}, '
        f'{jax.devices()[0].device_kind}\n')
  print('| program | trace + lower s | compile s |\n|---|---|---|')
  print('\n'.join(rows))
  for name, counts in groups.items():
    print(f'\n| fusions of the train step, optimizer {name} | count |\n|---|---|')
    for group, count in counts.most_common():
      print(f'| {group} | {count} |')
    print(f'| all | {sum(counts.values())} |')

if __name__ == '__main__':
  main()
