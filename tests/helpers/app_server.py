"""Runs ``python -m adabins_jax.inference.app`` as a server for a test: started, waited for, stopped."""

import contextlib
import pathlib
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Sequence

import pytest


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@contextlib.contextmanager
def serving(command: Sequence[str], port: int, log: pathlib.Path, timeout_s: float,
            stop_signal: int = signal.SIGINT, **popen) -> Iterator[tuple[str, str]]:
  """Starts ``command`` (which serves on 127.0.0.1:``port``), its output into ``log``; yields
  (url, first page) once the page answers, and stops the server on leaving (``stop_signal``,
  then kill after 30 s).
  """
  with open(log, 'w') as out:
    server = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, **popen)
  url = f'http://127.0.0.1:{port}/'
  try:
    yield url, _wait_for_page(url, server, log, timeout_s)
  finally:
    server.send_signal(stop_signal)
    try:
      server.wait(timeout=30)
    except subprocess.TimeoutExpired:
      server.kill()
      server.wait()


def _wait_for_page(url: str, server: subprocess.Popen, log: pathlib.Path,
                   timeout_s: float) -> str:
  deadline = time.monotonic() + timeout_s
  while time.monotonic() < deadline:
    if server.poll() is not None:
      pytest.fail(f'The app exited with status {server.returncode} before serving:\n'
                  f'{log.read_text()[-5000:]}')
    try:
      with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode('utf-8', 'replace')
    except OSError:
      time.sleep(0.5)
  pytest.fail(f'No page at {url} after {timeout_s} s:\n{log.read_text()[-5000:]}')
