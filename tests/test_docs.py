"""The README, docs/ and the notebook name only modules, files and commands that exist."""

import importlib.util
import pathlib
import re
import tomllib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]
_TEXTS = sorted([_REPO / 'README.md', *(_REPO / 'docs').glob('*.md'),
                 *(_REPO / 'notebooks').glob('*.ipynb')])


def _mentions(pattern: str) -> list[tuple[str, str]]:
  return sorted({(path.name, m) for path in _TEXTS
                 for m in re.findall(pattern, path.read_text())})


@pytest.mark.parametrize('text, module', _mentions(r'python -m (adabins_jax(?:\.\w+)*)'))
def test_every_python_m_command_names_a_runnable_module(text, module):
  spec = importlib.util.find_spec(module)
  assert spec is not None, f'{text}: no module {module}'
  if spec.submodule_search_locations is not None:  # A package runs its __main__.
    assert importlib.util.find_spec(f'{module}.__main__') is not None, f'{text}: {module}'


@pytest.mark.parametrize('text, path', _mentions(
    r'(?<![\w/.~-])((?:adabins_jax|benchmarks|configs|tests|docs|notebooks)/[\w/.-]*\w)'))
def test_every_repository_path_exists(text, path):
  assert (_REPO / path).exists(), f'{text} names {path}, which does not exist'


def _is_module(name: str) -> bool:
  try:
    return importlib.util.find_spec(name) is not None
  except ModuleNotFoundError:
    return False


@pytest.mark.parametrize('text, name', _mentions(r'`(adabins_jax(?:\.\w+)+)`'))
def test_every_dotted_name_is_a_module_or_one_of_its_names(text, name):
  module, _, attribute = name.rpartition('.')
  assert _is_module(name) or (_is_module(module) and attribute), f'{text} names {name}'


def test_every_console_command_in_the_docs_is_declared():
  scripts = tomllib.loads((_REPO / 'pyproject.toml').read_text())['project']['scripts']
  named = {m for _, m in _mentions(r'`(adabins(?:-[a-z]+)+|adabins)`')}
  assert named <= set(scripts), named - set(scripts)
  for name, target in scripts.items():
    module, function = target.split(':')
    assert importlib.util.find_spec(module) is not None, name
