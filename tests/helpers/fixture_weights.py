"""Rebuilds the parity fixtures' deterministic weights (tests/fixtures/README.md, "The weights")."""

from __future__ import annotations

import json
import pathlib
import zlib

import numpy as np

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / 'fixtures'
B5_KEYS = FIXTURES / 'adabins_b5_416x544.keys.json'
B5_OUTPUTS = FIXTURES / 'adabins_b5_416x544.npz'
B5_TRACE = FIXTURES / 'adabins_b5_416x544.trace.json'


def fixture_tensor(key: str, shape) -> np.ndarray:
  """One tensor of the reference weights, by the README's first-match rules."""
  rng = np.random.default_rng(zlib.crc32(key.encode()))
  shape = tuple(shape)
  if key.endswith('running_var'):
    value = 0.5 + rng.random(shape)
  elif key.endswith('running_mean'):
    value = 0.1 * rng.standard_normal(shape)
  elif key.endswith('positional_encodings'):
    value = rng.random(shape)
  elif len(shape) >= 2:
    value = rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))
  elif key.endswith('weight'):
    value = 1 + 0.1 * rng.standard_normal(shape)
  elif key.endswith('bias'):
    value = 0.1 * rng.standard_normal(shape)
  elif key.endswith('num_batches_tracked'):
    return np.zeros(shape, np.int64)
  else:
    raise ValueError(f'No fixture rule for key {key}')
  return value.astype(np.float32)


def fixture_state_dict(keys_file=B5_KEYS) -> dict[str, np.ndarray]:
  """The whole reference ``state_dict`` in the keys file's order, as numpy arrays."""
  return {key: fixture_tensor(key, shape) for key, shape in json.loads(keys_file.read_text())}
