"""Tests for adabins_jax.files: an interrupted atomic write keeps the old file."""

import os
import pathlib

import pytest

from adabins_jax import files


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
  target = tmp_path / 'report.md'
  files.write_bytes(target, b'old')
  with pytest.raises(RuntimeError):
    with files.atomic_path(target) as temporary:
      pathlib.Path(temporary).write_bytes(b'half')
      raise RuntimeError('killed mid-write')
  assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['report.md']
