"""Tests that a damaged file in the exported-runtime cache is exported again (runtimes.py)."""

import logging

import numpy as np

from adabins_jax.export import formats as export_formats
from adabins_jax.inference import runtimes


def test_a_cached_file_that_does_not_load_is_deleted_and_exported_again(
    tmp_path, monkeypatch, model, config, caplog):
  exports = []

  def write_all(fn, fmt, output, *args, **kwargs):
    del fn, fmt, args, kwargs
    exports.append(output)
    with open(output, 'wb') as f:
      f.write(b'exported')

  def load(path):
    if path.read_bytes() != b'exported':
      raise RuntimeError('flatbuffer verification failed\nmore detail')
    return lambda images: {'bin_edges': np.zeros((len(images), 3), np.float32),
                           'depth': np.zeros((len(images), 2, 2, 1), np.float32)}

  monkeypatch.setattr(runtimes, 'check', lambda *a, **k: None)
  monkeypatch.setattr(export_formats, 'write_all', write_all)
  monkeypatch.setitem(export_formats.LOADERS, 'tflite', load)
  forward = runtimes.ExportedForward(model, config, 'litert', flip_average=False, batch_size=1,
                                     cache_dir=tmp_path)
  cached = forward.path_for((4, 4))
  cached.write_bytes(b'cut short')
  with caplog.at_level(logging.WARNING):
    edges, depth, flipped = forward(np.zeros((1, 4, 4, 3), np.float32))
  assert depth.shape == (1, 2, 2, 1) and flipped is None
  assert len(exports) == 1 and cached.read_bytes() == b'exported'
  assert 'does not load (RuntimeError: flatbuffer verification failed)' in caplog.text
  assert 'exporting again' in caplog.text
