"""JAX's persistent compilation cache, on by default, in one folder per kind of machine.

Compiling the paper model's train step takes minutes on a CPU; with the cache, a rerun of the
same command (a resume, an evaluation, another workdir with the same config) loads the compiled
program instead. JAX keys its cache on the program, the JAX/XLA versions and the backend, but not
on the CPU's instruction set: a program compiled for AVX-512 would crash an AVX2 machine that
shares the home folder. The folder therefore names the backend and a hash of the CPU's model and
flags.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import platform

from absl import logging


def default_directory() -> pathlib.Path:
  """``$XDG_CACHE_HOME/adabins_jax/xla`` (``~/.cache/adabins_jax/xla`` when unset)."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return pathlib.Path(base) / 'adabins_jax' / 'xla'


def machine_key() -> str:
  """The backend and a short hash of what the compiled code depends on: CPU model and flags."""
  described = [platform.machine()]
  try:
    with open('/proc/cpuinfo') as f:
      described += sorted({line.strip() for line in f
                           if line.startswith(('model name', 'flags', 'Features'))})
  except OSError:  # Not Linux: the processor string is the best description available.
    described.append(platform.processor())
  import jax  # pylint: disable=g-import-not-at-top  # Not needed by --help, which reads the default.
  digest = hashlib.sha256('\n'.join(described).encode()).hexdigest()[:12]
  return f'{jax.default_backend()}-{digest}'


def enable(directory: str | os.PathLike | None, *,
           min_compile_time_s: float = 1.0) -> pathlib.Path | None:
  """Turns on the persistent cache under ``directory/<machine key>``; None or '' turns it off.

  Call before the first compilation (and after ``jax.distributed.initialize``, since this looks
  up the backend).

  Args:
    directory: The cache's root folder.
    min_compile_time_s: Programs that compile faster than this are not cached.

  Returns:
    The folder in use, or None when off.
  """
  if not directory:
    return None
  path = pathlib.Path(directory).expanduser() / machine_key()
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    logging.warning('Compilation cache off: cannot create %s (%s).', path, e)
    return None
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_compilation_cache_dir', str(path))
  jax.config.update('jax_persistent_cache_min_compile_time_secs', min_compile_time_s)
  logging.info('Persistent compilation cache: %s', path)
  return path
