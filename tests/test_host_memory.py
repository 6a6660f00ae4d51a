"""host_memory: asked for, the training commands set malloc to keep the buffers XLA frees."""

import json
import os
import pathlib
import platform
import subprocess
import sys

import pytest

from adabins_jax import host_memory
from adabins_jax import main as main_command
from adabins_jax.benchmark import __main__ as benchmark_command

_REPO = pathlib.Path(__file__).resolve().parent.parent
_ON_GLIBC = sys.platform.startswith('linux') and platform.libc_ver()[0] == 'glibc'


def test_settings_apply_on_glibc_when_asked_for():
  assert host_memory.applies({'HOME': '/h', 'ADABINS_JAX_MALLOC': 'tuned'}, libc='glibc')


@pytest.mark.parametrize('environ, libc', [
    ({}, 'glibc'),                                                   # Not asked for.
    ({'ADABINS_JAX_MALLOC': 'default'}, 'glibc'),
    ({'ADABINS_JAX_MALLOC': 'tuned'}, 'musl'),                       # Not glibc.
    ({'ADABINS_JAX_MALLOC': 'tuned'}, ''),                           # Not Linux.
    ({'ADABINS_JAX_MALLOC': 'tuned', 'MALLOC_ARENA_MAX': '4'}, 'glibc'),  # The user's own.
    ({'ADABINS_JAX_MALLOC': 'tuned', 'MALLOC_TOP_PAD_': '0'}, 'glibc'),
    ({'ADABINS_JAX_MALLOC': 'tuned', 'GLIBC_TUNABLES': 'glibc.malloc.tcache_count=0'}, 'glibc'),
])
def test_settings_are_left_alone(environ, libc):
  assert not host_memory.applies(environ, libc=libc)


_PROBE = '''
import json, resource, threading
from adabins_jax import host_memory
tuned = host_memory.tune()
import numpy as np

def second_array_faults(out):
  np.ones(50_000_000)  # 400 MB, freed at once.
  before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
  np.ones(50_000_000)
  out.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)

main, worker = [], []
second_array_faults(main)
thread = threading.Thread(target=second_array_faults, args=(worker,))  # As XLA's threads.
thread.start()
thread.join()
print(json.dumps([tuned, main[0], worker[0]]))
'''


def _probe(**environ) -> tuple[bool, int, int]:
  """(tuned, page faults of a second 400 MB array in the main thread, the same in a new thread),
  in a fresh process."""
  env = {k: v for k, v in os.environ.items()
         if k not in (*host_memory.GLIBC_VARIABLES, host_memory.SWITCH)}
  env.update(environ, JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', _PROBE], env=env, cwd=_REPO,
                          capture_output=True, text=True, timeout=120, check=True)
  return tuple(json.loads(result.stdout))


@pytest.mark.skipif(not _ON_GLIBC, reason="the settings are glibc malloc's")
def test_a_tuned_process_reuses_freed_memory_without_page_faults():
  tuned, main_faults, worker_faults = _probe(ADABINS_JAX_MALLOC='tuned')
  assert tuned
  # The freed 400 MB (about 100,000 pages of 4 KiB) is reused, in a thread started later too.
  assert main_faults < 50 and worker_faults < 50
  tuned, main_faults, worker_faults = _probe()
  assert not tuned
  # glibc's defaults unmap the freed 400 MB and fault it in again (4 KiB or 2 MiB pages).
  assert main_faults >= 150 and worker_faults >= 150


@pytest.mark.parametrize('command', [main_command, benchmark_command])
def test_commands_tune_before_they_parse_anything(monkeypatch, command):
  calls = []
  monkeypatch.setattr(host_memory, 'tune', lambda: calls.append('tune'))
  monkeypatch.setattr(command.configs, 'run_command',
                      lambda main, **kwargs: calls.append('run_command'))
  if hasattr(command, '_define_flags'):  # Flags of its own, beside main's in this process.
    monkeypatch.setattr(command, '_define_flags', lambda: calls.append('flags'))
  monkeypatch.setattr(sys, 'argv', [command.__name__])
  command.run()
  calls = [c for c in calls if c != 'flags']
  assert calls == ['tune', 'run_command']
