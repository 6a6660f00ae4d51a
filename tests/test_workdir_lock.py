"""Tests for adabins_jax.workdir_lock: one run per workdir; a killed run's lock is taken over."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from adabins_jax import errors
from adabins_jax import train
from adabins_jax import workdir_lock

_HOLDER = textwrap.dedent('''
    import sys, time
    from adabins_jax import workdir_lock
    lock = workdir_lock.WorkdirLock(sys.argv[1])
    lock.acquire()
    print('locked', flush=True)
    time.sleep(600)
''')


def _hold_in_child(workdir):
  child = subprocess.Popen([sys.executable, '-c', _HOLDER, str(workdir)],
                           stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline().strip() == 'locked'
  return child


def test_a_second_run_refuses_at_once_naming_the_holder(tmp_path, config):
  child = _hold_in_child(tmp_path)
  try:
    with pytest.raises(errors.WorkdirBusyError) as info:
      train.train_and_evaluate(config, str(tmp_path))
    assert f'PID {child.pid}' in str(info.value) and 'host ' in str(info.value)
    assert not (tmp_path / 'checkpoints').exists()  # Refused before building anything.
  finally:
    child.kill()
    child.wait()


def test_a_killed_runs_lock_is_taken_over(tmp_path):
  child = _hold_in_child(tmp_path)
  child.send_signal(signal.SIGKILL)
  child.wait()
  lock = workdir_lock.WorkdirLock(tmp_path)
  with lock:
    holder = json.loads((tmp_path / workdir_lock.LOCK_FILE).read_text())
    assert holder['pid'] == os.getpid()
    with pytest.raises(errors.WorkdirBusyError):  # Held now, even within one process.
      workdir_lock.WorkdirLock(tmp_path).acquire()
  workdir_lock.WorkdirLock(tmp_path).acquire()  # Released on exit.
