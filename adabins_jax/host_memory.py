"""glibc's malloc set to keep freed memory for XLA's CPU buffers, on request.

XLA's CPU runtime allocates a program's temporaries and outputs anew on every call and frees them
after it. With glibc's defaults each thread has an arena of its own, every large buffer is its own
``mmap``, and freed memory goes back to the kernel, so the next step faults it all in again, page
by zeroed page: about 1.4 million page faults per step of the paper model. One arena, no ``mmap``
for large blocks and no trimming keep the freed pages in the process for the next step.

With ``ADABINS_JAX_MALLOC=tuned`` in the environment, ``main`` and ``adabins-benchmark`` call
``tune`` first, which sets them with ``mallopt(3)``. It is not the default because it pays only in
a process that loads its program from the persistent compilation cache (a resume, a rerun, an
evaluation): there the paper model's step on 2 cores takes a fifth less time, while a process that
compiles from scratch compiles for longer and steps barely faster, and a heap that never shrinks
can peak higher (docs/benchmark.md, "Host memory").

Left alone even then: a process not on glibc, and one whose environment sets glibc's own
``MALLOC_*`` variables or ``GLIBC_TUNABLES`` (the user's settings win). On a GPU the step's
buffers are the device's: the settings change only the host's.
"""

from __future__ import annotations

from collections.abc import Mapping
import ctypes
import os
import platform
import sys

# mallopt(3)'s parameters and the values set: one arena; no mmap for large blocks; never give the
# top of the heap back (-1 is read as the largest size_t: glibc converts the int, and its
# environment variable cannot go past it either).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
M_ARENA_MAX = -8
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))
# glibc's environment variables for the same settings: when the user sets any, theirs stand.
GLIBC_VARIABLES = ('MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_',
                   'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TOP_PAD_', 'GLIBC_TUNABLES')
# 'tuned' asks for SETTINGS; anything else keeps glibc's own.
SWITCH = 'ADABINS_JAX_MALLOC'


def applies(environ: Mapping[str, str], *, libc: str | None = None) -> bool:
  """Whether ``tune`` changes anything in a process with this environment: one that asks for
  it (``ADABINS_JAX_MALLOC=tuned``) where it applies.

  Args:
    environ: The process's environment.
    libc: The C library's name (``platform.libc_ver()[0]``: 'glibc' on most Linux).
  """
  if environ.get(SWITCH) != 'tuned':
    return False
  if any(name in environ for name in GLIBC_VARIABLES):
    return False
  if libc is None:
    libc = platform.libc_ver()[0] if sys.platform.startswith('linux') else ''
  return libc == 'glibc'


def tune() -> bool:
  """Sets ``SETTINGS`` in this process where ``applies``; returns whether it did.

  Call it before anything starts threads (JAX, TensorFlow, PyTorch): a thread that already has an
  arena of its own keeps it.
  """
  if not applies(os.environ):
    return False
  mallopt = ctypes.CDLL(None).mallopt
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  return all(mallopt(parameter, value) == 1 for parameter, value in SETTINGS)
