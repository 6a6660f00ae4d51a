"""The scripts under benchmarks/ (not a package), loaded by file name for their tests."""

import importlib.util
import pathlib
import sys

_FOLDER = pathlib.Path(__file__).resolve().parents[2] / 'benchmarks'


def load(name: str):
  """The module ``benchmarks/<name>.py``, executed afresh.

  The folder goes on ``sys.path`` as when a script is run, so scripts may import each other.
  """
  if str(_FOLDER) not in sys.path:
    sys.path.append(str(_FOLDER))
  spec = importlib.util.spec_from_file_location(name, _FOLDER / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
