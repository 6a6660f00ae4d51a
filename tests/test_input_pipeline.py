"""Training and evaluation pipelines on synthetic_rooms/tiny (16 train, 8 test, 64x80)."""

import hashlib

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from adabins_jax import network_input
from adabins_jax import input_pipeline

MEAN, STD = network_input.MEAN, network_input.STD


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  path = tmp_path_factory.mktemp('tfds')
  tfds.builder('synthetic_rooms/tiny', data_dir=path).download_and_prepare()
  return str(path)


def _config(data_dir, **overrides):
  config = ml_collections.ConfigDict(dict(
      dataset='synthetic_rooms/tiny', tfds_data_dir=data_dir, manual_dir=None,
      train_split='train', eval_split='test', crop_white_border=False, augment=True,
      crop_size=(48, 64), input_scale=1.0, rotation_deg=2.5, shuffle_buffer=16))
  config.update(overrides)
  return config


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _key(depth):
  return hashlib.sha1(np.ascontiguousarray(depth).tobytes()).hexdigest()


def _stored(data_dir, split):
  """{depth key: (image float [0, 1], depth)} of the stored examples."""
  builder = tfds.builder('synthetic_rooms/tiny', data_dir=data_dir)
  out = {}
  for ex in tfds.as_numpy(builder.as_dataset(split)):
    depth = ex['depth'].astype(np.float32)[..., None]
    out[_key(depth)] = (ex['image'] / np.float32(255.0), depth)
  return out


def test_train_shapes_dtypes_and_normalisation(data_dir):
  batch = next(input_pipeline.create_train_dataset(_config(data_dir), 4, seed=0))
  assert set(batch) == {'image', 'depth'}
  assert batch['image'].shape == (4, 48, 64, 3) and batch['image'].dtype == np.float32
  assert batch['depth'].shape == (4, 48, 64, 1) and batch['depth'].dtype == np.float32
  # Without augmentation and with a full-size crop, un-normalising gives the stored pixels.
  config = _config(data_dir, augment=False, crop_size=(64, 80))
  stored = _stored(data_dir, 'train')
  batch = next(input_pipeline.create_train_dataset(config, 4, seed=0))
  for image, depth in zip(batch['image'], batch['depth']):
    np.testing.assert_allclose(image * STD + MEAN, stored[_key(depth)][0], atol=1e-6)


def test_input_scale_resizes_only_the_image(data_dir):
  config = _config(data_dir, input_scale=0.75)
  batch = next(input_pipeline.create_train_dataset(config, 2, seed=0))
  assert batch['image'].shape == (2, 36, 48, 3)
  assert batch['depth'].shape == (2, 48, 64, 1)
  batch = next(iter(input_pipeline.create_eval_dataset(config, 2)))
  assert batch['image'].shape == (2, 48, 60, 3)
  assert batch['depth'].shape == (2, 64, 80, 1)


@pytest.mark.parametrize('overrides', [{}, {'input_scale': 0.75}, {'input_scale': 0.7},
                                       {'augment': False, 'crop_size': (64, 80)}])
def test_train_batch_shapes_are_those_of_the_batches(data_dir, overrides):
  # The train step is compiled ahead from these, before the pipeline starts.
  config = _config(data_dir, **overrides)
  batch = next(input_pipeline.create_train_dataset(config, 2, seed=0))
  shapes = input_pipeline.train_batch_shapes(config, 2)
  assert {k: (v.shape, v.dtype) for k, v in shapes.items()} == {
      k: (v.shape, v.dtype) for k, v in batch.items()}


def test_deterministic_by_seed(data_dir):
  config = _config(data_dir)
  a = _take(input_pipeline.create_train_dataset(config, 4, seed=1), 3)
  b = _take(input_pipeline.create_train_dataset(config, 4, seed=1), 3)
  c = _take(input_pipeline.create_train_dataset(config, 4, seed=2), 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['image'], y['image'])
    np.testing.assert_array_equal(x['depth'], y['depth'])
  assert not np.array_equal(a[0]['depth'], c[0]['depth'])


def test_resume_at_start_step_sees_the_same_batches(data_dir):
  config = _config(data_dir)
  # 16 examples / batch 4: steps 0-3 are epoch 0, steps 4-6 epoch 1.
  full = _take(input_pipeline.create_train_dataset(config, 4, seed=3), 7)
  for start in (2, 5):
    resumed = _take(input_pipeline.create_train_dataset(config, 4, seed=3, start_step=start),
                    7 - start)
    for x, y in zip(full[start:], resumed):
      np.testing.assert_array_equal(x['image'], y['image'])
      np.testing.assert_array_equal(x['depth'], y['depth'])


def test_epochs_hold_every_example_once_in_a_new_order(data_dir):
  config = _config(data_dir, augment=False, crop_size=(64, 80))
  batches = _take(input_pipeline.create_train_dataset(config, 4, seed=0), 8)
  keys = [_key(d) for b in batches for d in b['depth']]
  assert set(keys[:16]) == set(_stored(data_dir, 'train')) == set(keys[16:])
  assert keys[:16] != keys[16:]


def test_processes_read_disjoint_shards(data_dir):
  config = _config(data_dir, augment=False, crop_size=(64, 80))
  seen = []
  for index in range(2):
    batches = _take(input_pipeline.create_train_dataset(
        config, 4, seed=0, process_index=index, process_count=2), 4)
    assert batches[0]['depth'].shape[0] == 2  # per-host batch = global / processes
    seen.append({_key(d) for b in batches for d in b['depth']})
  assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(_stored(data_dir, 'train'))
  with pytest.raises(ValueError, match='batch_size=3 must be a positive multiple of the process'):
    input_pipeline.create_train_dataset(config, 3, seed=0, process_index=0, process_count=2)


@pytest.mark.parametrize('batch_size,process_count', [(3, 1), (3, 3), (4, 2)])
def test_eval_sees_every_example_exactly_once(data_dir, batch_size, process_count):
  config = _config(data_dir)
  stored = _stored(data_dir, 'test')
  keys, num_batches = [], set()
  for index in range(process_count):
    batches = list(input_pipeline.create_eval_dataset(
        config, batch_size, process_index=index, process_count=process_count))
    num_batches.add(len(batches))
    for batch in batches:
      assert batch['example_mask'].dtype == bool
      for image, depth, valid in zip(batch['image'], batch['depth'], batch['example_mask']):
        if valid:
          keys.append(_key(depth))
          np.testing.assert_allclose(image * STD + MEAN, stored[keys[-1]][0], atol=1e-6)
        else:
          assert not image.any() and not depth.any()
  assert len(num_batches) == 1  # every process steps the same number of times
  assert sorted(keys) == sorted(stored)
  # 8 examples in 3 per step: 3 steps with 1 padded slot; 2 hosts x 2 per step: no padding.
  padded = num_batches.pop() * batch_size - len(keys)
  assert padded == {(3, 1): 1, (3, 3): 1, (4, 2): 0}[batch_size, process_count]


def test_eval_dataset_is_reiterable(data_dir):
  ds = input_pipeline.create_eval_dataset(_config(data_dir), 4)
  first = [b['depth'] for b in ds]
  second = [b['depth'] for b in ds]
  assert len(first) == 2
  for x, y in zip(first, second):
    np.testing.assert_array_equal(x, y)


def test_unknown_dataset_is_named(data_dir):
  with pytest.raises(ValueError, match="'kitti'"):
    input_pipeline.get_builder(_config(data_dir, dataset='kitti'))
