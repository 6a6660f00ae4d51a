"""One writer per workdir: a lock that a second run meets at once, and a dead run's is free.

``<workdir>/.lock`` is held with ``flock`` by process 0 of the run that trains there, and
names its holder (host, PID, start time). The kernel drops the lock when its process dies,
``kill -9`` included, so a dead run's lock is taken over; the file's old contents then say
whose it was. On NFS (v4) Linux implements ``flock`` with NFS locks, so runs on different hosts
exclude each other too. Object stores (``gs://``) have no locks: there the check is skipped
with a warning.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time

from absl import logging

from adabins_jax.errors import WorkdirBusyError

LOCK_FILE = '.lock'


class WorkdirLock:
  """``with WorkdirLock(workdir):`` holds the workdir for the block (or raises at once)."""

  def __init__(self, workdir: str | os.PathLike[str]):
    self.workdir = os.fspath(workdir)
    self.path = os.path.join(self.workdir, LOCK_FILE)
    self._fd: int | None = None

  def acquire(self) -> None:
    """Takes the lock; raises WorkdirBusyError naming the holder if a live run has it."""
    if '://' in self.workdir:
      logging.warning('%s: no file locks on this storage; make sure one run writes here.',
                      self.workdir)
      return
    os.makedirs(self.workdir, exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _describe(os.read(fd, 4096))
      os.close(fd)
      if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
        raise WorkdirBusyError(
            f'{self.workdir} is in use by another run ({holder}). One run may write a workdir '
            'at a time: wait for it, stop it, or choose another --workdir.') from None
      raise
    previous = os.read(fd, 4096)
    if previous.strip():
      logging.warning('%s: taking over the lock of a run that is no longer running (%s).',
                      self.workdir, _describe(previous))
    me = {'host': socket.gethostname(), 'pid': os.getpid(),
          'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(me).encode(), 0)
    os.fsync(fd)
    self._fd = fd

  def release(self) -> None:
    """Empties the holder record and drops the lock (the file stays: see flock's caveats)."""
    if self._fd is None:
      return
    os.ftruncate(self._fd, 0)
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> 'WorkdirLock':
    self.acquire()
    return self

  def __exit__(self, *exc_info) -> None:
    self.release()


def _describe(record: bytes) -> str:
  try:
    holder = json.loads(record.decode())
    return f"host {holder['host']}, PID {holder['pid']}, started {holder['started']}"
  except (ValueError, KeyError, UnicodeDecodeError):
    return 'holder unknown'
