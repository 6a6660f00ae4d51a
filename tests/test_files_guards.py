"""Tests that temporary names fit the file system whenever the final name does (files.py)."""

import os

import numpy as np

from adabins_jax import files


def test_a_long_name_is_written_under_a_short_temporary_name(tmp_path):
  name = 'x' * 240 + '_depth.npy'
  assert len(name) <= files.NAME_MAX_BYTES
  files.write_all({str(tmp_path / name): lambda p: np.save(p, np.arange(3))})
  np.testing.assert_array_equal(np.load(tmp_path / name), np.arange(3))
  assert os.listdir(tmp_path) == [name]


def test_temporary_names_fit_keep_the_extension_and_differ():
  for name in ('é' * 127 + '.png', 'a' * 255, 'short.npy'):
    temporary = files.temporary_name(name, '-old')
    assert len(temporary.encode()) <= files.NAME_MAX_BYTES
    assert temporary.startswith('.tmp-') and temporary.endswith(os.path.splitext(name)[1])
    temporary.encode().decode()  # Cut at a character boundary.
  assert files.temporary_name('a.png') != files.temporary_name('a.png')
