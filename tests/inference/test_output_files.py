"""Tests for adabins_jax.inference.output_files: a failed or disk-full write leaves no partial
files (docs/training.md, "What happens when things go wrong").
"""

import errno
import os

import numpy as np
import pytest

from adabins_jax.inference import output_files


def test_a_failed_write_leaves_no_partial_files(tmp_path, monkeypatch):
  real = output_files.visualize.save_png

  def disk_full_on_colour(path, array):
    if path.endswith('_color.png'):
      with open(path, 'wb') as f:
        f.write(b'\x89PNG half')  # What a full disk leaves: a truncated file...
      raise OSError(errno.ENOSPC, 'No space left on device')
    real(path, array)

  monkeypatch.setattr(output_files.visualize, 'save_png', disk_full_on_colour)
  rgb = np.zeros((8, 10, 3), np.float32)
  with pytest.raises(OSError, match='No space left'):
    output_files.write_outputs(tmp_path, 'x', rgb, np.ones((8, 10)), depth_range=(1e-3, 10.0),
                             strip=True, ply=True)
  assert os.listdir(tmp_path) == []  # ... under a temporary name, removed with the rest.


def test_a_really_full_disk_leaves_no_partial_outputs(full_disk):
  mount, fill = full_disk
  fill()
  rgb = np.random.default_rng(0).random((64, 64, 3), np.float32)
  with pytest.raises(OSError):
    output_files.write_outputs(mount, 'x', rgb, np.ones((64, 64)), depth_range=(1e-3, 10.0))
  assert sorted(os.listdir(mount)) == ['filler']
