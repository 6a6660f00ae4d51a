"""How long a newcomer waits: start-up of the commands and of ``Predictor``, cold and warm.

  python benchmarks/startup.py                 # demo config, random weights, 3 runs each
  python benchmarks/startup.py --config=demo --workdir=runs/demo --repeats=5

Each measurement is a fresh process, as a user's command is. With no ``--workdir``, a run
holding random weights of the config's model is made in a temporary folder (start-up does not
depend on the weights). The persistent compilation cache lives in a temporary folder too: the
first prediction fills it ("cold"), the later ones read it ("warm"). Prints a markdown table of
medians.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

_PREDICTOR = '''
import sys, time
start = time.perf_counter()
from adabins_jax import Predictor
imported = time.perf_counter()
p = Predictor(sys.argv[1], workdir=sys.argv[2], compilation_cache_dir=sys.argv[3])
built = time.perf_counter()
p(sys.argv[4])
done = time.perf_counter()
print(f'TIMES {imported - start} {built - imported} {done - built}')
'''


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
  start = time.perf_counter()
  result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200)
  seconds = time.perf_counter() - start
  if result.returncode:
    raise SystemExit(f'{" ".join(command)} failed:\n{result.stderr[-3000:]}')
  return seconds, result.stdout


def _commands() -> list[tuple[str, str]]:
  """(console command, the module ``python -m`` runs for it) of pyproject.toml's scripts."""
  import tomllib  # pylint: disable=g-import-not-at-top  # Python 3.11+.
  pyproject = pathlib.Path(__file__).resolve().parents[1] / 'pyproject.toml'
  scripts = tomllib.loads(pyproject.read_text())['project']['scripts']
  commands = []
  for name, target in scripts.items():
    module = target.split(':')[0]
    commands.append((name, module.removesuffix('.__main__')))
  return commands


def _random_run(config_name: str, folder: pathlib.Path) -> str:
  # pylint: disable=g-import-not-at-top  # Only when no trained run is given.
  import optax
  from flax import nnx
  from adabins_jax import checkpointing
  from adabins_jax import configs
  from adabins_jax import models
  model = models.random_model(configs.load(config_name).model, seed=0)
  manager = checkpointing.create_manager(folder)
  checkpointing.save(manager, 1, model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param),
                     force=True)
  checkpointing.finish(manager)
  manager.close()
  return str(folder)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='demo')
  parser.add_argument('--workdir', default=None, help='A trained run (default: random weights).')
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory(prefix='adabins-startup-') as tmp:
    tmp = pathlib.Path(tmp)
    workdir = args.workdir or _random_run(args.config, tmp / 'run')
    photo = tmp / 'photo.jpg'
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (480, 640, 3), np.uint8)).save(photo)
    cache = tmp / 'xla'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    predict = [sys.executable, '-m', 'adabins_jax.main', '--mode=predict',
               f'--config={args.config}', f'--workdir={workdir}', f'--input={photo}',
               f'--output={tmp / "out"}', f'--compilation_cache_dir={cache}']
    rows = {}
    for name, module in _commands():
      rows[f'`{name} --help`'] = [_run([sys.executable, '-m', module, '--help'], env)[0]
                                  for _ in range(args.repeats)]
    rows['`main --mode=predict`, one photo, cold cache'] = [_run(predict, env)[0]]
    rows['`main --mode=predict`, one photo, warm cache'] = [
        _run(predict + [f'--output={tmp / f"out{i}"}'], env)[0] for i in range(args.repeats)]
    timings = [_run([sys.executable, '-c', _PREDICTOR, args.config, workdir, str(cache),
                     str(photo)], env)[1] for _ in range(args.repeats)]
    parts = [[float(x) for x in line.split()[1:]] for t in timings
             for line in t.splitlines() if line.startswith('TIMES')]
    rows['`from adabins_jax import Predictor`'] = [p[0] for p in parts]
    rows['`Predictor(...)`, a trained run'] = [p[1] for p in parts]
    rows['first `Predictor(...)(photo)` of a session, warm cache'] = [p[2] for p in parts]
  cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo')
              if l.startswith('model name')), 'unknown CPU')
  print(f'{cpu}, {os.cpu_count()} cores; config {args.config}, a 640x480 photo; medians of '
        f'{args.repeats} fresh processes (the cold row: 1)')
  print('| what | seconds |\n|---|---|')
  for what, values in rows.items():
    print(f'| {what} | {statistics.median(values):.2f} |')


if __name__ == '__main__':
  main()
