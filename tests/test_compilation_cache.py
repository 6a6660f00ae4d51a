"""Tests for adabins_jax.compilation_cache: a second process loads what the first compiled."""

import pathlib
import subprocess
import sys
import textwrap

from absl.testing import flagsaver
import pytest

from adabins_jax import compilation_cache
from adabins_jax import main

_PROGRAM = textwrap.dedent('''
    import sys
    import jax, jax.numpy as jnp
    from jax import monitoring
    from adabins_jax import compilation_cache
    hits = []
    monitoring.register_event_listener(
        lambda name, **kw: hits.append(name) if name.endswith('cache_hits') else None)
    print(compilation_cache.enable(sys.argv[1], min_compile_time_s=0.0))
    f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T + 1.0)
    f(jnp.ones((8, 8))).block_until_ready()
    print('hits', len(hits))
''')


def _run(cache_dir) -> list[str]:
  out = subprocess.run([sys.executable, '-c', _PROGRAM, str(cache_dir)], check=True,
                       capture_output=True, text=True, timeout=120)
  return out.stdout.split('\n')


@pytest.mark.slow  # Subprocess: two child processes, each compiling.
def test_a_rerun_loads_the_compiled_program(tmp_path):
  first = _run(tmp_path)
  folder = pathlib.Path(first[0])
  assert folder.parent == tmp_path and folder.name == compilation_cache.machine_key()
  assert first[1] == 'hits 0'
  assert any(folder.iterdir()), 'nothing was written to the cache'
  assert int(_run(tmp_path)[1].split()[1]) >= 1


def test_an_empty_directory_turns_it_off():
  assert compilation_cache.enable('') is None
  assert compilation_cache.enable(None) is None


def test_the_folder_names_backend_and_machine():
  key = compilation_cache.machine_key()
  assert key.startswith('cpu-') and len(key) == len('cpu-') + 12
  assert key == compilation_cache.machine_key()


@flagsaver.flagsaver
def test_main_enables_it_from_the_flag(monkeypatch, tmp_path):
  from tests import test_main  # pylint: disable=g-import-not-at-top
  enabled = []
  monkeypatch.setattr(compilation_cache, 'enable', enabled.append)
  monkeypatch.setattr(main, '_dispatch', lambda mode: lambda config, workdir: None)
  main.main(test_main._parse(monkeypatch, f'--workdir={tmp_path}',
                             f'--compilation_cache_dir={tmp_path / "cache"}'))
  assert enabled == [str(tmp_path / 'cache')]
