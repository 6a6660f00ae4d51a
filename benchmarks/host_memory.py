"""Our train step with ``ADABINS_JAX_MALLOC=tuned`` (``host_memory``) against glibc's defaults.

  python benchmarks/host_memory.py                       # the paper model, batch 2 at 416x544
  python benchmarks/host_memory.py --cold --repeats=2    # each process compiles from scratch

Runs our side of ``torch_reference.py --train`` (the parity fixture's weights, random data, a
warm-up step and ``--repeats`` timed steps per process) in fresh processes, alternately with
``ADABINS_JAX_MALLOC=tuned`` (``host_memory.tune``, as ``adabins_jax.main`` does then) and with
glibc's defaults, for ``--rounds`` rounds. Without ``--cold`` every process loads the program from
one persistent compilation cache, filled first and not counted, as a rerun of ``main`` does; with
``--cold`` each process compiles with an empty cache, as a first run does. Prints the median
step, the compile (or cache load), each setting's peak resident memory and the pages each step
touches fresh (minor page faults: memory the kernel hands over zeroed).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

from adabins_jax import host_memory

_REFERENCE = pathlib.Path(__file__).resolve().parent / 'torch_reference.py'
_SETTINGS = ('tuned', 'default')


def _run(setting: str, args, cache_dir: str, out: pathlib.Path) -> dict:
  """One process of our side, with ``setting``; its timings."""
  environ = {k: v for k, v in os.environ.items()
             if k not in (*host_memory.GLIBC_VARIABLES, host_memory.SWITCH)}
  if setting == 'tuned':
    environ[host_memory.SWITCH] = 'tuned'
    if not host_memory.applies(environ):
      raise SystemExit('host_memory does not apply on this machine (not glibc): nothing to '
                       'compare.')
  command = [sys.executable, str(_REFERENCE), '--train', '--train_side=ours',
             f'--size={args.size}', f'--batch={args.batch}', f'--repeats={args.repeats}',
             f'--warmup={args.warmup}', f'--compilation_cache_dir={cache_dir}',
             f'--child_output={out}']
  subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=environ)
  return json.loads(out.read_text())


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='416x544', help='Input HxW.')
  parser.add_argument('--batch', type=int, default=2)
  parser.add_argument('--repeats', type=int, default=3, help='Timed steps per process.')
  parser.add_argument('--warmup', type=int, default=1, help='Untimed steps per process.')
  parser.add_argument('--rounds', type=int, default=2)
  parser.add_argument('--cold', action='store_true',
                      help='An empty compilation cache for every process.')
  args = parser.parse_args()
  results = {s: [] for s in _SETTINGS}
  with tempfile.TemporaryDirectory(prefix='adabins-host-memory-') as tmp:
    tmp = pathlib.Path(tmp)
    if not args.cold:
      print('filling the persistent compilation cache (not counted)', flush=True)
      _run('default', argparse.Namespace(**{**vars(args), 'repeats': 0, 'warmup': 1}),
           str(tmp / 'xla'), tmp / 'fill.json')
    for r in range(args.rounds):
      for setting in _SETTINGS:
        cache = str(tmp / (f'xla-{setting}{r}' if args.cold else 'xla'))
        results[setting].append(_run(setting, args, cache, tmp / f'{setting}{r}.json'))
        result = results[setting][-1]
        print(f'round {r + 1}, {setting}: compile {result["compile_s"]:.1f} s, steps '
              + ', '.join(f'{t:.2f}' for t in result['times']) + ' s', flush=True)
  median = {s: statistics.median(t for r in results[s] for t in r['times']) for s in _SETTINGS}
  cache = 'empty' if args.cold else 'filled'
  print(f'\nbatch {args.batch} at {args.size}; medians of {args.rounds * args.repeats} steps '
        f'after {args.warmup} warm-up per process; compile with the cache {cache}, per round')
  print('| glibc malloc | s/step | / defaults | compile s | peak RSS GB | page faults per step |\n'
        '|---|---|---|---|---|---|')
  for s in _SETTINGS:
    peak = max(r['peak_rss'] for r in results[s]) / 1e9
    faults = statistics.median(r['page_faults_per_step'] for r in results[s])
    compiles = ', '.join(f'{r["compile_s"]:.1f}' for r in results[s])
    print(f'| {s} | {median[s]:.2f} | {median[s] / median["default"]:.2f}x | {compiles} | '
          f'{peak:.1f} | {faults:,.0f} |')


if __name__ == '__main__':
  main()
