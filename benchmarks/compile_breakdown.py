"""What a config's train step costs to compile, and how much of that is the optimizer.

  python benchmarks/compile_breakdown.py --config=effnet_b5_256     # batch 2 at 416x544
  XLA_FLAGS=--xla_backend_optimization_level=1 python benchmarks/compile_breakdown.py

Compiles, with the persistent cache off, ``steps.make_train_step`` for random weights and then
the same loss and gradients without the optimizer update, and prints the trace + lower and
compile seconds of each. Then it counts the fusions (one kernel call each in XLA's CPU runtime)
of the full step's optimized program by the scope that made them (the groups of
profile_train_step.py), since the CPU back end's compile time grows with the number of kernels
it generates.
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


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='effnet_b5_256', help='Config name or path.')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--size', default='416x544', help='Network input HxW (and ground truth).')
  args = parser.parse_args()
  jax.config.update('jax_enable_compilation_cache', False)
  config = measure.load_config(args.config)
  h, w = network_input.parse_size(args.size, '--size')
  model = models.random_model(config.model)
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, 1000), wrt=nnx.Param)
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.standard_normal((args.batch, h, w, 3), np.float32)),
           'depth': jnp.asarray(rng.uniform(0.5, 9.0, (args.batch, h, w, 1)), jnp.float32)}
  key = jax.random.key(0)

  step = steps.make_train_step(config, nnx.graphdef((model, optimizer)),
                               optim.learning_rate_schedule(config.optim, 1000))
  step_lower, step_compile, compiled = _timed_compile(step, nnx.state((model, optimizer)),
                                                      batch, key)
  groups = fusions_by_group(compiled.as_text())
  del compiled

  graphdef = nnx.graphdef(model)
  loss_kwargs = steps.train_loss_kwargs(config)

  def gradients(state, batch, key):
    model = nnx.merge(graphdef, state)
    model.train()
    nnx.reseed(model, dropout=key)
    loss_fn = functools.partial(steps.train_loss, batch=batch, **loss_kwargs)
    (loss, _), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    return loss, grads, nnx.state(model)

  grad_lower, grad_compile, _ = _timed_compile(jax.jit(gradients), nnx.state(model), batch, key)

  print(f'{args.config}: batch {args.batch} at {h}x{w}, jax {jax.__version__}, '
        f'{jax.devices()[0].device_kind}\n')
  print('| program | trace + lower s | compile s |\n|---|---|---|')
  print(f'| train step | {step_lower:.1f} | {step_compile:.1f} |')
  print(f'| loss and gradients only | {grad_lower:.1f} | {grad_compile:.1f} |')
  print(f'\n| fusions of the train step | count |\n|---|---|')
  for name, count in groups.most_common():
    print(f'| {name} | {count} |')
  print(f'| all | {sum(groups.values())} |')


if __name__ == '__main__':
  main()
