"""host_memory: the training commands restart with glibc's malloc keeping freed buffers."""

import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest

from adabins_jax import host_memory
from adabins_jax import main as main_command

_REPO = pathlib.Path(__file__).resolve().parent.parent
_ON_GLIBC = sys.platform.startswith('linux') and platform.libc_ver()[0] == 'glibc'


def test_settings_apply_on_glibc_without_an_accelerator_plugin():
  environ = host_memory.tuned_environ({'HOME': '/h'}, libc='glibc', accelerator_plugin=False)
  assert environ == {'HOME': '/h', 'MALLOC_ARENA_MAX': '1', 'MALLOC_MMAP_MAX_': '0',
                     'MALLOC_TRIM_THRESHOLD_': str(1 << 40), 'ADABINS_JAX_MALLOC': 'tuned'}


@pytest.mark.parametrize('environ, libc, plugin', [
    ({}, 'musl', False),                                   # Not glibc.
    ({}, '', False),                                       # Not Linux.
    ({}, 'glibc', True),                                   # A GPU plugin: its defaults.
    ({'ADABINS_JAX_MALLOC': 'default'}, 'glibc', False),   # Turned off.
    ({'ADABINS_JAX_MALLOC': 'tuned'}, 'glibc', False),     # Restarted already.
    ({'MALLOC_ARENA_MAX': '4'}, 'glibc', False),           # The user's own settings.
    ({'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=0'}, 'glibc', False),
])
def test_settings_are_left_alone(environ, libc, plugin):
  assert host_memory.tuned_environ(environ, libc=libc, accelerator_plugin=plugin) is None


def test_asking_for_the_cpu_applies_them_beside_a_gpu_plugin():
  environ = host_memory.tuned_environ({'JAX_PLATFORMS': 'cpu'}, libc='glibc',
                                      accelerator_plugin=True)
  assert environ is not None and environ['MALLOC_ARENA_MAX'] == '1'


_PROBE = '''
import json, os, resource, sys
from adabins_jax import host_memory
host_memory.restart_tuned()
import numpy as np
np.ones(50_000_000)  # 400 MB, freed at once.
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones(50_000_000)
print(json.dumps([os.environ.get('ADABINS_JAX_MALLOC'), sys.argv[1:],
                  resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before]))
'''


def _probe(**environ) -> tuple[str, list[str], int]:
  """(the switch, the arguments, page faults of a second 400 MB array) in a fresh process."""
  env = {k: v for k, v in os.environ.items()
         if k not in (*host_memory.SETTINGS, 'GLIBC_TUNABLES', host_memory.SWITCH)}
  env.update(environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', _PROBE, 'one', '--two=2'], env=env, cwd=_REPO,
                          capture_output=True, text=True, timeout=120, check=True)
  return tuple(json.loads(result.stdout))


@pytest.mark.skipif(not _ON_GLIBC, reason='the settings are glibc malloc\'s')
def test_the_restarted_process_reuses_freed_memory_without_page_faults():
  switch, argv, faults = _probe()
  assert switch == 'tuned'
  assert argv == ['one', '--two=2']  # Restarted with the same arguments.
  assert faults < 20
  switch, _, default_faults = _probe(ADABINS_JAX_MALLOC='default')
  assert switch == 'default'
  # glibc's defaults unmap the freed 400 MB and fault it in again (4 KiB or 2 MiB pages).
  assert default_faults >= 150


def test_main_restarts_before_it_parses_anything(monkeypatch):
  calls = []
  monkeypatch.setattr(host_memory, 'restart_tuned', lambda: calls.append('restart'))
  monkeypatch.setattr(main_command.configs, 'run_command',
                      lambda main, **kwargs: calls.append('run_command'))
  main_command.run()
  assert calls == ['restart', 'run_command']
