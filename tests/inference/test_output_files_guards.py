"""Tests that prediction never replaces a file it did not write (output_files.MANIFEST)."""

import os

import numpy as np
from PIL import Image
import pytest

from adabins_jax import checkpointing
from adabins_jax.inference import output_files
from adabins_jax.inference import predict

_RANGE = (1e-3, 10.0)


def _write(folder, name='room'):
  rgb = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
  depth = np.full((6, 8), 2.0, np.float32)
  return output_files.write_outputs(folder, name, rgb, depth, depth_range=_RANGE)


def test_a_users_file_under_an_output_name_is_never_replaced(tmp_path):
  users = tmp_path / 'room_depth.png'
  users.write_bytes(b'my own depth map')
  with pytest.raises(output_files.NotOurFileError, match='room_depth.png exists and was not '
                                                         'written by adabins-jax'):
    _write(tmp_path)
  assert users.read_bytes() == b'my own depth map'
  assert not (tmp_path / 'room_depth.npy').exists()  # All or nothing.


def test_a_rerun_replaces_its_own_outputs(tmp_path):
  first = _write(tmp_path)
  os.utime(first[0], (0, 0))
  assert _write(tmp_path) == first
  assert os.stat(first[0]).st_mtime > 0
  listed = (tmp_path / output_files.MANIFEST).read_text().split()
  assert sorted(listed) == sorted(os.path.basename(p) for p in first)  # Listed once each.


def test_predict_into_the_input_folder_refuses_before_loading(tmp_path, monkeypatch, config):
  Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(tmp_path / 'room.png')
  users = tmp_path / 'room_depth.png'
  Image.fromarray(np.ones((6, 8), np.uint16)).save(users)
  before = users.read_bytes()
  monkeypatch.setattr(checkpointing, 'load_model',
                      lambda *a, **k: pytest.fail('the model was loaded'))
  options = predict.PredictOptions(inputs=[str(tmp_path)], output=str(tmp_path))
  with pytest.raises(SystemExit, match=r'not written by adabins-jax.*\n  .*room_depth.png'):
    predict.predict(config, None, options)
  assert users.read_bytes() == before
