"""A second measure of the train step against the release's: whole processes on a wall clock.

  python benchmarks/train_wallclock.py            # steps 2 and 6, 2 rounds, batch 2, 416x544

``torch_reference.py --train`` times each step inside its process. This script trusts no timer
inside: it runs the same two side programs (``torch_reference.py --train_side``, one process per
run, nothing trimmed or shared) for ``--short`` and for ``--long`` steps, measures each process
from start to exit on the wall clock, and takes the step time as the slope:
``(wall(long) - wall(short)) / (long - short)``. Start-up, model building, our compile (from the
persistent cache, filled by a first run that is not counted) and the peak-memory bookkeeping are
the same in both runs of a side and cancel; anything a step leaves for later (asynchronous work,
garbage collection, memory returned to the system) does not. Runs alternate, release then ours,
short then long, for ``--rounds`` rounds; the slope is taken from the medians.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

_REFERENCE = pathlib.Path(__file__).resolve().parent / 'torch_reference.py'
_SIDES = {'release': 'release (PyTorch)', 'ours': 'adabins-jax'}


def _wall(side: str, steps: int, args, cache_dir: str, out: pathlib.Path) -> float:
  """Seconds from the start of a fresh process running ``steps`` steps of ``side`` to its exit."""
  command = [sys.executable, str(_REFERENCE), '--train', f'--train_side={side}',
             f'--size={args.size}', f'--batch={args.batch}', f'--repeats={steps}', '--warmup=0',
             f'--threads={args.threads}', f'--compilation_cache_dir={cache_dir}',
             f'--child_output={out}']
  start = time.perf_counter()
  subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
  return time.perf_counter() - start


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='416x544', help='Input HxW.')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--threads', type=int, default=None,
                      help='PyTorch threads (default: every core, as torch_reference.py).')
  parser.add_argument('--short', type=int, default=2, help='Steps of the short runs.')
  parser.add_argument('--long', type=int, default=6, help='Steps of the long runs.')
  parser.add_argument('--rounds', type=int, default=2)
  args = parser.parse_args()
  if args.long <= args.short:
    parser.error('--long must be more steps than --short.')
  if args.threads is None:
    import os  # pylint: disable=g-import-not-at-top
    args.threads = os.cpu_count()
  with tempfile.TemporaryDirectory(prefix='adabins-wallclock-') as tmp:
    tmp = pathlib.Path(tmp)
    cache = str(tmp / 'xla')
    print('filling our persistent compilation cache (not counted)', flush=True)
    _wall('ours', 1, args, cache, tmp / 'fill.json')
    walls = {(side, n): [] for side in _SIDES for n in (args.short, args.long)}
    for r in range(args.rounds):
      for n in (args.short, args.long):
        for side in _SIDES:
          walls[side, n].append(_wall(side, n, args, cache, tmp / f'{side}.json'))
          print(f'round {r + 1}: {side}, {n} steps: {walls[side, n][-1]:.1f} s', flush=True)
  slope = {side: (statistics.median(walls[side, args.long])
                  - statistics.median(walls[side, args.short])) / (args.long - args.short)
           for side in _SIDES}
  print(f'\nbatch {args.batch} at {args.size}; wall seconds of whole processes, medians of '
        f'{args.rounds}; step = (wall({args.long}) - wall({args.short})) / '
        f'{args.long - args.short}')
  print(f'| training step | wall, {args.short} steps (s) | wall, {args.long} steps (s) | '
        's/step | / release |\n|---|---|---|---|---|')
  for side, name in _SIDES.items():
    print(f'| {name} | {statistics.median(walls[side, args.short]):.1f} | '
          f'{statistics.median(walls[side, args.long]):.1f} | {slope[side]:.2f} | '
          f'{slope[side] / slope["release"]:.2f}x |')


if __name__ == '__main__':
  main()
