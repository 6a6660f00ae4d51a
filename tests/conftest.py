"""Test-wide setup: two fake CPU devices, so data parallelism is tested without hardware.

This must run before anything touches a JAX backend, hence a root conftest. Code that does
not ask for a mesh still runs on device 0 alone, so single-device tests are unaffected;
multi-device tests build meshes over the first one or two devices (parallel.create_mesh).
"""

import errno
import os
import subprocess
import tempfile

import jax
import pytest

jax.config.update('jax_num_cpu_devices', 2)

# main's persistent compilation cache defaults under $XDG_CACHE_HOME: keep the tests' out of the
# user's own cache.
os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='adabins-test-cache-')

# After the device count and the cache folder are set.
from adabins_jax import models  # pylint: disable=g-import-not-at-top,wrong-import-position
from adabins_jax.configs import smoke  # pylint: disable=g-import-not-at-top,wrong-import-position


# The smoke config and its model with random weights (eval mode), for the prediction
# tests and those of bad input.
@pytest.fixture(scope='module')
def config():
  return smoke.get_config()


@pytest.fixture(scope='module')
def model(config):  # pylint: disable=redefined-outer-name
  model = models.random_model(config.model, seed=1)
  model.eval()
  return model


# A disk that fills up, for the disk-full tests of checkpointing and of output files.
@pytest.fixture
def full_disk(tmp_path):
  """A 2 MB tmpfs (needs root and mount rights), and a way to fill it up to the last byte."""
  mount = tmp_path / 'small_disk'
  mount.mkdir()
  result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)],
                          capture_output=True, text=True, check=False)
  if result.returncode:
    pytest.skip(f'cannot mount a small tmpfs here: {result.stderr.strip()}')

  def fill():
    fd = os.open(mount / 'filler', os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):  # Down to the last byte.
      try:
        while os.write(fd, b'\0' * size) == size:
          pass
      except OSError as e:
        assert e.errno == errno.ENOSPC
    os.close(fd)

  yield mount, fill
  subprocess.run(['umount', '-l', str(mount)], check=False)
