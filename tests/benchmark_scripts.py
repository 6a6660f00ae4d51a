"""The scripts under benchmarks/ (not a package), loaded by file name for their tests."""

import importlib.util
import pathlib

_FOLDER = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks'


def load(name: str):
  """The module ``benchmarks/<name>.py``, executed afresh."""
  spec = importlib.util.spec_from_file_location(name, _FOLDER / f'{name}.py')
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
