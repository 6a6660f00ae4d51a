"""Where a config's train step spends its time: XLA's own per-op timings, grouped.

  python benchmarks/profile_train_step.py --config=effnet_b5_256       # batch 2 at 416x544
  python benchmarks/profile_train_step.py --config=demo --batch=8 --size=60x80 --depth_size=120x160

Compiles ``steps.make_train_step`` for random weights and data, reports trace, lowering and
compile seconds and the median step time, then records one step with ``jax.profiler`` and sums
the duration of every executed XLA op by what it computes, read from the op's name scope
(``conv_winograd``, ``conv_shifted``, ``batch_norm``, ``silog``, ``optimizer``, ...; set in
models/layers.py, models/adabins.py and steps.py) and split into forward and backward (ops under
JAX's ``transpose``, or a custom VJP's ``backward`` scope). XLA's CPU runtime runs independent
ops at once, so the groups can add up to more than the step time.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import resource
import statistics
import tempfile
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

# Innermost first: a conv inside the bins head counts as that conv.
_SCOPES = ('conv_pointwise', 'conv_patch', 'conv_shifted', 'conv_winograd', 'conv_xla',
           'batch_norm', 'silog', 'chamfer', 'bins_head', 'optimizer')
_NOT_OPS = ('ThunkExecutor', '$', 'Slinky', 'PjitFunction', 'CommonPjRt', 'Allocate',
            'ParseArguments')


def _op_names(hlo_text: str) -> dict[str, str]:
  """HLO instruction -> the JAX op_name of it or, for a fusion, of the first op inside."""
  bodies, current = {}, None
  for line in hlo_text.splitlines():
    header = re.match(r'^%?([\w.\-]+) .*\{\s*$', line)
    if header and not line.startswith(' '):
      current = bodies.setdefault(header.group(1), [])
    elif current is not None:
      current.append(line)
  names = {}
  for line in hlo_text.splitlines():
    match = re.match(r'\s*(?:ROOT )?%?([\w.\-]+) = ', line)
    if not match or match.group(1) in names:
      continue
    found = re.search(r'op_name="([^"]*)"', line)
    called = re.search(r'calls=%?([\w.\-]+)', line)
    if not found and called:
      found = next(filter(None, (re.search(r'op_name="([^"]*)"', l)
                                 for l in bodies.get(called.group(1), []))), None)
    names[match.group(1)] = found.group(1) if found else ''
  return names


def _group(op_name: str) -> str:
  # JAX writes scopes as path parts, inside the transformation's parentheses: jvp(bins_head/...).
  parts = set(re.split(r'[/()]', op_name))
  scope = next((s for s in _SCOPES if s in parts), None)
  if scope is None:
    scope = 'model, other' if 'jvp(' in op_name else 'unnamed (copies, layouts, update)'
  if 'transpose(' in op_name or 'backward' in parts:  # 'backward': a custom VJP's rule
    return f'{scope} (backward)'
  return f'{scope} (forward)' if 'jvp(' in op_name else scope


def breakdown(compiled, run_step) -> dict[str, float]:
  """Seconds per group for one profiled ``run_step()`` of the ``compiled`` program."""
  names = _op_names(compiled.as_text())
  with tempfile.TemporaryDirectory() as folder:
    with jax.profiler.trace(folder, create_perfetto_trace=True):
      run_step()
    trace = glob.glob(f'{folder}/**/*.trace.json.gz', recursive=True)[0]
    events = json.load(gzip.open(trace))['traceEvents']
  groups = collections.Counter()
  for event in events:
    if event.get('ph') == 'X' and not event['name'].startswith(_NOT_OPS):
      groups[_group(names.get(event['name'], ''))] += event['dur'] / 1e6
  return dict(groups)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='effnet_b5_256', help='Config name or path.')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--size', default='416x544', help='Network input HxW.')
  parser.add_argument('--depth_size', default=None, help='Ground-truth HxW (default: --size).')
  parser.add_argument('--repeats', type=int, default=3, help='Timed steps before profiling.')
  args = parser.parse_args()
  config = measure.load_config(args.config)
  h, w = network_input.parse_size(args.size, '--size')
  dh, dw = network_input.parse_size(args.depth_size, '--depth_size') or (h, w)
  model = models.random_model(config.model)
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, 1000), wrt=nnx.Param)
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.standard_normal((args.batch, h, w, 3), np.float32)),
           'depth': jnp.asarray(rng.uniform(0.5, 9.0, (args.batch, dh, dw, 1)), jnp.float32)}
  step = steps.make_train_step(config, nnx.graphdef((model, optimizer)),
                               optim.learning_rate_schedule(config.optim, 1000))
  state = {'train': nnx.state((model, optimizer))}
  del model, optimizer  # Donated by the step: only the returned state may be used.
  start = time.perf_counter()
  traced = step.trace(state['train'], batch, jax.random.key(0))
  lowered = traced.lower()
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  compiled_at = time.perf_counter()

  def run_step(i=0):
    state['train'], metrics = compiled(state['train'], batch, jax.random.key(i))
    jax.block_until_ready(metrics)

  run_step()
  times = []
  for i in range(args.repeats):
    begin = time.perf_counter()
    run_step(i + 1)
    times.append(time.perf_counter() - begin)
  groups = breakdown(compiled, run_step)
  print(f'{args.config}: batch {args.batch} at {h}x{w} (depth {dh}x{dw}), jax {jax.__version__}, '
        f'{jax.devices()[0].device_kind}; trace + lower {lowered_at - start:.1f} s, compile '
        f'{compiled_at - lowered_at:.1f} s; step {statistics.median(times):.3f} s (median of '
        f'{args.repeats}: ' + ', '.join(f'{t:.3f}' for t in times) + ')')
  total = sum(groups.values())
  print('\n| ops | s | share |\n|---|---|---|')
  for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
    print(f'| {name} | {seconds:.3f} | {seconds / total:.0%} |')
  print(f'| all ops | {total:.3f} | |')
  print(f'\nPeak resident memory of this process: '
        f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB.')


if __name__ == '__main__':
  main()
