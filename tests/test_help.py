"""Every console command answers --help, and refuses a bad command line, before importing JAX,
TensorFlow, PyTorch or gradio, which take seconds (tens on a busy machine) to import.

The commands are read from pyproject.toml, so a new one is checked as soon as it is declared.
Nothing here times a process: the imports are what decide the time, and a machine's speed
does not.
"""

import os
import pathlib
import subprocess
import sys
import tomllib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SCRIPTS = tomllib.loads((_REPO / 'pyproject.toml').read_text())['project']['scripts']
# Top-level packages the command line never needs.
_HEAVY = {'jax', 'jaxlib', 'flax', 'orbax', 'tensorflow', 'torch', 'gradio', 'onnx',
          'onnxruntime', 'tf2onnx'}
# The flags each command's --help must name.
_MAIN_FLAGS = {
    'adabins': ('--config', '--workdir', '--mode', '--input', '--output', '--weights'),
    'adabins-app': ('--config', '--weights', '--workdir', '--host', '--port', '--max_pixels'),
    'adabins-export': ('--config', '--workdir', '--weights', '--format', '--output', '--size'),
    'adabins-import-torch': ('--config', '--weights', '--workdir'),
    'adabins-benchmark': ('--configs', '--batch_sizes', '--repeats', '--runtimes', '--output'),
    'adabins-build-data': ('--config', '--data_dir', '--manual_dir'),
}


def _module(target: str) -> str:
  """What ``python -m`` runs for a console command's 'module:function' (a package's
  ``__main__`` runs as the package)."""
  module = target.split(':')[0]
  return module.removesuffix('.__main__')


def _console(name: str, target: str) -> list[str]:
  """The arguments of a Python that does what the installed console script does."""
  module, function = target.split(':')
  return ['-c', f'import sys; sys.argv[0] = {name!r}; from {module} import {function}; '
                f'sys.exit({function}())']


def _run(*args: str) -> tuple[subprocess.CompletedProcess, set[str]]:
  """Runs Python with ``args`` from the repository; returns the process and the top-level
  packages it imported."""
  done = subprocess.run([sys.executable, '-X', 'importtime', *args], capture_output=True,
                        text=True, timeout=120, cwd=_REPO,
                        env={**os.environ, 'PYTHONPATH': str(_REPO)})
  imported = {line.rsplit('|', 1)[-1].strip().split('.')[0]
              for line in done.stderr.splitlines() if line.startswith('import time:')}
  return done, imported


def _errors(done: subprocess.CompletedProcess) -> str:
  return '\n'.join(line for line in done.stderr.splitlines()
                   if not line.startswith('import time:'))[-2000:]


@pytest.mark.parametrize('how', ['python -m', 'console script'])
@pytest.mark.parametrize('name', sorted(_SCRIPTS))
def test_help_names_the_flags_without_heavy_imports(name, how):
  target = _SCRIPTS[name]
  args = ['-m', _module(target)] if how == 'python -m' else _console(name, target)
  done, imported = _run(*args, '--help')
  assert done.returncode == 0, _errors(done)
  assert not imported & _HEAVY, sorted(imported & _HEAVY)
  assert name in _MAIN_FLAGS, f'{name}: add the flags its --help must name to _MAIN_FLAGS'
  missing = [flag for flag in _MAIN_FLAGS[name] if f'{flag}:' not in done.stdout]
  assert not missing, f'{name} --help does not name {missing}:\n{done.stdout[-2000:]}'


@pytest.mark.parametrize('name', sorted(_SCRIPTS))
def test_an_unknown_flag_is_refused_without_heavy_imports(name):
  done, imported = _run('-m', _module(_SCRIPTS[name]), '--no_such_flag=1')
  assert done.returncode != 0
  assert "Unknown command line flag 'no_such_flag'" in done.stderr, _errors(done)
  assert not imported & _HEAVY, sorted(imported & _HEAVY)


@pytest.mark.parametrize('name, args', [
    ('adabins-app', ['--config=demo']),
    ('adabins-export', ['--config=demo', '--output=never.onnx']),
    ('adabins-import-torch', ['--config=demo', '--workdir=never']),
])
def test_a_missing_weights_file_is_refused_without_heavy_imports(name, args, tmp_path):
  missing = tmp_path / 'AdaBins_nyu.pt'
  done, imported = _run('-m', _module(_SCRIPTS[name]), *args, f'--weights={missing}')
  assert done.returncode != 0
  assert f'--weights={missing}: no such file.' in done.stderr, _errors(done)
  assert 'Traceback' not in done.stderr
  assert not imported & _HEAVY, sorted(imported & _HEAVY)
  assert not (_REPO / 'never').exists() and not (_REPO / 'never.onnx').exists()


def test_an_unknown_config_name_is_refused_without_heavy_imports():
  done, imported = _run('-m', _module(_SCRIPTS['adabins-app']), '--config=no_such_config')
  assert done.returncode == 2
  assert "No config file 'no_such_config' and no shipped config" in done.stderr, _errors(done)
  assert not imported & _HEAVY, sorted(imported & _HEAVY)


def test_a_missing_input_or_weights_file_of_predict_is_refused_without_heavy_imports(tmp_path):
  photo = tmp_path / 'photo.png'
  photo.write_bytes(b'')  # Named, so the weights are checked; never read.
  weights = tmp_path / 'AdaBins_nyu.pt'
  common = ['-m', 'adabins_jax.main', '--mode=predict', '--config=effnet_b5_256',
            f'--output={tmp_path}/out']
  weights.write_bytes(b'')
  done, imported = _run(*common, f'--input={tmp_path}/nmae.jpg', f'--weights={weights}')
  assert done.returncode == 1
  assert f'predict: no image to read:\n  {tmp_path}/nmae.jpg: no such file' in done.stderr, (
      _errors(done))
  assert not imported & _HEAVY, sorted(imported & _HEAVY)
  weights.unlink()
  done, imported = _run(*common, f'--input={photo}', f'--weights={weights}')
  assert done.returncode == 1
  assert f'error: --weights={weights}: no such file.' in done.stderr, _errors(done)
  assert not imported & _HEAVY, sorted(imported & _HEAVY)
  assert not (tmp_path / 'out').exists()
