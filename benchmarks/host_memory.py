"""Our train step with glibc's malloc as ``main`` sets it, against glibc's defaults.

  python benchmarks/host_memory.py                       # the paper model, batch 2 at 416x544
  python benchmarks/host_memory.py --rounds=3 --repeats=3

Runs our side of ``torch_reference.py --train`` (the parity fixture's weights, random data, a
warm-up step and ``--repeats`` timed steps per process) in fresh processes, alternately with the
settings ``adabins_jax.host_memory`` restarts the training commands with and with
``ADABINS_JAX_MALLOC=default``, for ``--rounds`` rounds, from one filled persistent compilation
cache. Prints the median step, each setting's peak resident memory, and the pages each step
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


def _run(setting: str, args, cache_dir: str, out: pathlib.Path) -> dict:
  environ = {k: v for k, v in os.environ.items()
             if k not in (*host_memory.SETTINGS, host_memory.SWITCH)}
  if setting == 'tuned':
    environ = host_memory.tuned_environ(environ)
    if environ is None:
      raise SystemExit('host_memory does not apply on this machine (not glibc, a GPU plugin, '
                       'or GLIBC_TUNABLES set): nothing to compare.')
  else:
    environ[host_memory.SWITCH] = 'default'
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
  args = parser.parse_args()
  settings = ('tuned', 'default')
  results = {s: [] for s in settings}
  with tempfile.TemporaryDirectory(prefix='adabins-host-memory-') as tmp:
    tmp = pathlib.Path(tmp)
    print('filling the persistent compilation cache (not counted)', flush=True)
    _run('default', argparse.Namespace(**{**vars(args), 'repeats': 0, 'warmup': 1}),
         str(tmp / 'xla'), tmp / 'fill.json')
    for r in range(args.rounds):
      for setting in settings:
        results[setting].append(_run(setting, args, str(tmp / 'xla'), tmp / f'{setting}{r}.json'))
        times = results[setting][-1]['times']
        print(f'round {r + 1}, {setting}: ' + ', '.join(f'{t:.2f}' for t in times) + ' s',
              flush=True)
  median = {s: statistics.median(t for r in results[s] for t in r['times']) for s in settings}
  print(f'\nbatch {args.batch} at {args.size}; medians of {args.rounds * args.repeats} steps')
  print('| glibc malloc | s/step | / defaults | peak RSS GB | page faults per step |\n'
        '|---|---|---|---|---|')
  for s in settings:
    peak = max(r['peak_rss'] for r in results[s]) / 1e9
    faults = statistics.median(r['page_faults_per_step'] for r in results[s])
    print(f'| {s} | {median[s]:.2f} | {median[s] / median["default"]:.2f}x | {peak:.1f} | '
          f'{faults:,.0f} |')


if __name__ == '__main__':
  main()
