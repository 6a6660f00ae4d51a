"""glibc's malloc settings for XLA's CPU buffers: the commands that train start with them.

XLA's CPU runtime allocates a program's temporaries and outputs anew on every call and frees them
after it. With glibc's defaults each large buffer is its own ``mmap`` and every thread grows and
deletes arenas of its own, so the freed memory goes back to the kernel and the next step faults
all of it in again, page by zeroed page: on 2 cores a fifth of the paper model's train step
(docs/benchmark.md, "Host memory"). One arena, no ``mmap`` for large blocks and no trimming keep
the freed pages in the process for the next step. The settings are environment variables that
glibc reads at start-up only, so ``restart_tuned`` starts the command again with them, before it
has imported anything heavy.

Left alone: a process that is not on glibc, one where a JAX plugin (a GPU's) is installed and
``JAX_PLATFORMS`` does not ask for the CPU, one whose environment sets any of these variables or
``GLIBC_TUNABLES`` already, and one with ``ADABINS_JAX_MALLOC=default``.
"""

from __future__ import annotations

from collections.abc import Mapping
import importlib.metadata
import importlib.util
import os
import platform
import sys

# glibc's names (mallopt(3)): one arena; no mmap for large blocks; never give the top of the
# heap back (1 TiB: larger than any machine this runs on).
SETTINGS = {
    'MALLOC_ARENA_MAX': '1',
    'MALLOC_MMAP_MAX_': '0',
    'MALLOC_TRIM_THRESHOLD_': str(1 << 40),
}
# Set to 'tuned' in the restarted process; 'default' keeps glibc's own settings.
SWITCH = 'ADABINS_JAX_MALLOC'


def _has_accelerator_plugin() -> bool:
  """Whether a JAX plugin (CUDA, ROCm, TPU) is installed, found as JAX finds them (an entry
  point or the ``jax_plugins`` namespace package) without importing it."""
  return (bool(importlib.metadata.entry_points(group='jax_plugins'))
          or importlib.util.find_spec('jax_plugins') is not None)


def tuned_environ(environ: Mapping[str, str], *, libc: str | None = None,
                  accelerator_plugin: bool | None = None) -> dict[str, str] | None:
  """The environment to restart with, or None where the settings do not apply or are set.

  Args:
    environ: The process's environment.
    libc: The C library's name (``platform.libc_ver()[0]``: 'glibc' on most Linux).
    accelerator_plugin: Whether a JAX accelerator plugin is installed.
  """
  if environ.get(SWITCH) in ('tuned', 'default'):
    return None
  if any(name in environ for name in (*SETTINGS, 'GLIBC_TUNABLES')):
    return None  # The user's own allocator settings win.
  if libc is None:
    libc = platform.libc_ver()[0] if sys.platform.startswith('linux') else ''
  if libc != 'glibc':
    return None
  if environ.get('JAX_PLATFORMS', '').strip().lower() != 'cpu':
    if accelerator_plugin is None:
      accelerator_plugin = _has_accelerator_plugin()
    if accelerator_plugin:
      return None  # The device holds the buffers; the host's defaults serve the input pipeline.
  return {**environ, **SETTINGS, SWITCH: 'tuned'}


def restart_tuned() -> None:
  """Starts this command again, the same way, with ``SETTINGS`` where ``tuned_environ`` applies.

  Call it first thing in a console command, before JAX, TensorFlow or threads: ``os.execve``
  replaces the process (same PID, same arguments), and glibc reads the settings as it starts.
  """
  environ = tuned_environ(os.environ)
  if environ is None:
    return
  sys.stdout.flush()
  sys.stderr.flush()
  os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
