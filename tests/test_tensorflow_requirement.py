"""TensorFlow comes from an extra, so that a runtime with its own tensorflow (Colab) keeps it.

pip cannot accept "tensorflow or tensorflow-cpu", and the two distributions in one site-packages
overwrite each other's files. The package therefore depends on neither: the ``tensorflow-cpu``
extra brings the CPU build, and wherever a tensorflow is installed already it is used as it is.
The slow test installs the package into a fresh environment that has ``tensorflow``, as Colab's
has, and checks that one TensorFlow remains and imports.
"""

import importlib.metadata
import json
import os
import pathlib
import re
import subprocess
import sys


import pytest

from adabins_jax import errors

tomllib = pytest.importorskip('tomllib', reason='reading pyproject.toml needs Python 3.11+')

_REPO = pathlib.Path(__file__).resolve().parents[1]
# Distributions that each install the ``tensorflow`` package.
_TENSORFLOWS = {'tensorflow', 'tensorflow-cpu', 'tensorflow-gpu', 'tensorflow-intel',
                'tensorflow-macos', 'tensorflow-aarch64', 'tf-nightly', 'tf-nightly-cpu'}


def _project() -> dict:
  return tomllib.loads((_REPO / 'pyproject.toml').read_text())['project']


def _names(requirements: list[str]) -> set[str]:
  return {re.match(r'[A-Za-z0-9._-]+', r).group(0).lower().replace('_', '-')
          for r in requirements}


def test_the_package_depends_on_no_tensorflow_and_its_extra_on_the_cpu_build():
  project = _project()
  assert not _names(project['dependencies']) & _TENSORFLOWS
  extras = project['optional-dependencies']
  assert _names(extras['tensorflow-cpu']) == {'tensorflow-cpu'}
  # No other extra pulls a TensorFlow in beside the runtime's; the tests take the CPU build.
  for name, requirements in extras.items():
    if name != 'tensorflow-cpu':
      assert not _names(requirements) & _TENSORFLOWS, name
  assert any('tensorflow-cpu' in r for r in extras['test'] if r.startswith('adabins-jax['))


def test_without_tensorflow_the_error_names_the_task_and_the_extra(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow', None)  # find_spec then finds nothing.
  with pytest.raises(errors.MissingTensorFlowError,
                     match=r'--mode=train needs TensorFlow.*adabins-jax\[tensorflow-cpu\]'):
    errors.require_tensorflow('--mode=train')


def test_main_says_so_before_anything_else(tmp_path):
  script = ('import sys; sys.modules["tensorflow"] = None; '
            'from adabins_jax import main; main.run()')
  result = subprocess.run(
      [sys.executable, '-c', script, '--config=smoke', f'--workdir={tmp_path}/run'],
      capture_output=True, text=True, cwd=_REPO, timeout=120, check=False)
  assert result.returncode == 1, result.stderr
  assert 'error: --mode=train needs TensorFlow' in result.stderr
  assert not (tmp_path / 'run').exists()


def _installed_tensorflow_version() -> str:
  for name in sorted(_TENSORFLOWS):
    try:
      return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  pytest.skip('No TensorFlow distribution is installed here to match the version of.')


# Installs tensorflow and then the package with its dependencies into a new environment: a few
# minutes, and the package index (or pip's cache) must be reachable.
@pytest.mark.slow
def test_install_beside_a_preinstalled_tensorflow_keeps_one_that_imports(tmp_path):
  env_dir = tmp_path / 'colab-like'
  subprocess.run([sys.executable, '-m', 'venv', str(env_dir)], check=True)
  python = str(env_dir / 'bin' / 'python')
  env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
  env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'

  def pip(*args):
    result = subprocess.run([python, '-m', 'pip', 'install', '-q', *args], env=env,
                            capture_output=True, text=True, check=False)
    if result.returncode and ('Could not find a version' in result.stderr
                              or 'NewConnectionError' in result.stderr):
      pytest.skip(f'The package index is unreachable: {result.stderr.strip()[-300:]}')
    assert result.returncode == 0, result.stderr[-3000:]

  # The runtime's own TensorFlow, as Colab ships it, then the package as the notebook installs it.
  pip(f'tensorflow=={_installed_tensorflow_version()}')
  pip(str(_REPO))
  check = (
      'import importlib.metadata, json\n'
      'import tensorflow as tf\n'
      'from adabins_jax import input_pipeline\n'
      'names = sorted({d.metadata["Name"].lower().replace("_", "-")\n'
      '                for d in importlib.metadata.distributions()})\n'
      'print(json.dumps({"names": names, "sum": float(tf.reduce_sum(tf.ones(3))),\n'
      '                  "file": tf.__file__}))\n')
  result = subprocess.run([python, '-c', check], env=env, cwd=tmp_path, capture_output=True,
                          text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  found = json.loads(result.stdout.strip().splitlines()[-1])
  assert set(found['names']) & _TENSORFLOWS == {'tensorflow'}
  assert found['sum'] == 3.0
  assert found['file'].startswith(str(env_dir))
