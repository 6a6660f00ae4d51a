"""Tests for adabins_jax.parallel on two fake CPU devices (see conftest.py)."""

import jax
import numpy as np
import pytest

from adabins_jax import parallel


def test_two_fake_devices_are_available():
  assert jax.device_count() == 2


@pytest.mark.parametrize('num_devices', [1, 2])
def test_mesh_has_one_data_axis(num_devices):
  mesh = parallel.create_mesh(num_devices)
  assert mesh.axis_names == ('data',)
  assert mesh.devices.shape == (num_devices,)


def test_mesh_rejects_more_devices_than_exist():
  with pytest.raises(ValueError, match='num_devices=3'):
    parallel.create_mesh(3)


def test_check_batch_size():
  mesh = parallel.create_mesh(2)
  assert parallel.check_batch_size(6, mesh) == 6
  with pytest.raises(ValueError, match=r'train.batch_size=3 .* multiple of the device count \(2'):
    parallel.check_batch_size(3, mesh, 'train.batch_size')
  with pytest.raises(ValueError, match='batch=0'):
    parallel.check_batch_size(0, mesh)


def test_shard_batch_splits_leading_axis_and_round_trips():
  mesh = parallel.create_mesh(2)
  batch = {'image': np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2),
           'mask': np.array([True, False, True, True])}
  placed = parallel.shard_batch(batch, mesh)
  image = placed['image']
  assert image.shape == (4, 3, 2)
  assert image.sharding.spec == jax.sharding.PartitionSpec('data')
  shards = sorted(image.addressable_shards, key=lambda s: s.device.id)
  np.testing.assert_array_equal(shards[0].data, batch['image'][:2])
  np.testing.assert_array_equal(shards[1].data, batch['image'][2:])
  back = parallel.fetch(placed)
  np.testing.assert_array_equal(back['image'], batch['image'])
  np.testing.assert_array_equal(back['mask'], batch['mask'])


def test_shard_batch_rejects_uneven_batch():
  mesh = parallel.create_mesh(2)
  with pytest.raises(ValueError, match=r'batch of 3 \(array shape \(3, 5\)\)'):
    parallel.shard_batch({'x': np.zeros((3, 5))}, mesh)


def test_replicate_puts_a_full_copy_on_every_device():
  mesh = parallel.create_mesh(2)
  tree = parallel.replicate({'w': np.arange(3.0)}, mesh)
  assert tree['w'].sharding.is_fully_replicated
  for shard in tree['w'].addressable_shards:
    np.testing.assert_array_equal(shard.data, [0.0, 1.0, 2.0])


_CLUSTER_VARS = ('JAX_COORDINATOR_ADDRESS', 'JAX_NUM_PROCESSES', 'JAX_PROCESS_ID',
                 'SLURM_NTASKS', 'SLURM_STEP_NODELIST')


@pytest.fixture
def fake_initialize(monkeypatch):
  for var in _CLUSTER_VARS:
    monkeypatch.delenv(var, raising=False)
  calls = []
  monkeypatch.setattr(jax.distributed, 'initialize', lambda **kw: calls.append(kw))
  monkeypatch.setattr(jax, 'process_index', lambda: 0)
  return calls


def test_no_cluster_is_a_no_op(fake_initialize, monkeypatch):
  monkeypatch.setenv('SLURM_NTASKS', '1')  # A one-task SLURM job is a single process.
  monkeypatch.setenv('SLURM_STEP_NODELIST', 'node1')
  assert parallel.maybe_initialize_distributed() is False
  assert fake_initialize == []


def test_explicit_cluster_variables(fake_initialize, monkeypatch):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', 'host0:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '4')
  monkeypatch.setenv('JAX_PROCESS_ID', '3')
  assert parallel.maybe_initialize_distributed() is True
  assert fake_initialize == [
      {'coordinator_address': 'host0:1234', 'num_processes': 4, 'process_id': 3}]


def test_incomplete_cluster_variables_raise(fake_initialize, monkeypatch):
  monkeypatch.setenv('JAX_COORDINATOR_ADDRESS', 'host0:1234')
  monkeypatch.setenv('JAX_NUM_PROCESSES', '4')
  with pytest.raises(ValueError, match='JAX_PROCESS_ID is not'):
    parallel.maybe_initialize_distributed()


def test_slurm_multi_task_job(fake_initialize, monkeypatch):
  monkeypatch.setenv('SLURM_NTASKS', '8')
  monkeypatch.setenv('SLURM_STEP_NODELIST', 'node[1-2]')
  assert parallel.maybe_initialize_distributed() is True
  assert fake_initialize == [{'cluster_detection_method': 'slurm'}]
