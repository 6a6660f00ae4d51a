"""Data parallelism: the one file that knows about devices and processes.

Training is plain data parallelism over every device of every process: a 1-D mesh with one
axis, ``'data'``; batches are split along it and the model and optimizer state are
replicated. The steps in ``steps.py`` are ordinary ``jax.jit`` functions; the collectives
(gradient all-reduce, global BatchNorm statistics) are inserted by the compiler from the
shardings set here.
"""

from __future__ import annotations

import os
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import numpy as np

DATA_AXIS = 'data'


def maybe_initialize_distributed() -> bool:
  """Starts JAX's multi-process runtime when the environment describes a cluster.

  Recognised environments:

  * SLURM with more than one task (``srun``): JAX reads the coordinator, process count and
    id from ``SLURM_*`` variables.
  * Explicit variables: ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0),
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``.

  Anywhere else (a laptop, one GPU box, a one-task SLURM job) this does nothing.

  When a process dies, the others stop with JAX's "another task died" error once it has
  missed heartbeats for ``JAX_HEARTBEAT_TIMEOUT_SECONDS`` (default JAX's 100 s).

  Returns:
    True when ``jax.distributed.initialize`` was called.

  Raises:
    ValueError: ``JAX_COORDINATOR_ADDRESS`` is set without the process count and id.
  """
  coordinator = os.environ.get('JAX_COORDINATOR_ADDRESS')
  if coordinator:
    missing = [v for v in ('JAX_NUM_PROCESSES', 'JAX_PROCESS_ID') if v not in os.environ]
    if missing:
      raise ValueError(
          f'JAX_COORDINATOR_ADDRESS={coordinator!r} is set but {", ".join(missing)} is not; '
          'set all three to describe the cluster.')
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(os.environ['JAX_NUM_PROCESSES']),
        process_id=int(os.environ['JAX_PROCESS_ID']), **_timeouts())
  elif int(os.environ.get('SLURM_NTASKS', '1')) > 1 and 'SLURM_STEP_NODELIST' in os.environ:
    jax.distributed.initialize(cluster_detection_method='slurm', **_timeouts())
  else:
    return False
  logging.info('Distributed JAX: process %d of %d, %d local / %d global devices.',
               jax.process_index(), jax.process_count(), jax.local_device_count(),
               jax.device_count())
  return True


def _timeouts() -> dict[str, int]:
  value = os.environ.get('JAX_HEARTBEAT_TIMEOUT_SECONDS')
  return {} if value is None else {'heartbeat_timeout_seconds': int(value)}


def create_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  """A 1-D ``('data',)`` mesh over all devices of all processes (or the first few).

  The axis is ``Auto``: the model is written for unsharded arrays and the compiler
  propagates the batch sharding through it (reshapes and resizes included).

  Args:
    num_devices: Use only this many devices (tests, benchmarks); None: all of them.
  """
  devices = jax.devices()
  if num_devices is not None:
    if not 0 < num_devices <= len(devices):
      raise ValueError(f'num_devices={num_devices} but {len(devices)} devices are available.')
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), (DATA_AXIS,), axis_types=(AxisType.Auto,),
                       devices=devices)


def batch_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of batch arrays: leading axis split over the data axis."""
  return NamedSharding(mesh, P(DATA_AXIS))


def replicated_sharding(mesh: jax.sharding.Mesh) -> NamedSharding:
  """Sharding of model and optimizer state: a full copy on every device."""
  return NamedSharding(mesh, P())


def check_batch_size(global_batch_size: int, mesh: jax.sharding.Mesh | None = None,
                     what: str = 'batch', *, process_count: int | None = None) -> int:
  """Returns the per-process batch size, or raises if the batch does not split evenly.

  Args:
    global_batch_size: Examples per step over all processes.
    mesh: The data mesh, over whose devices the batch splits; None: over the processes only
      (a host's input pipeline).
    what: Name of the setting, for the error message (e.g. 'train.batch_size').
    process_count: Processes sharing the batch; None: ``jax.process_count()``.
  """
  processes = jax.process_count() if process_count is None else process_count
  if mesh is None:
    parts, of = processes, f'process count ({processes} processes)'
  else:
    parts = mesh.devices.size
    of = f'device count ({parts} devices over {processes} processes)'
  if global_batch_size <= 0 or global_batch_size % parts:
    raise ValueError(f'{what}={global_batch_size} must be a positive multiple of the {of}.')
  return global_batch_size // processes


def shard_batch(batch: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places a per-process host batch on the devices as one global array per leaf.

  Each process passes its own slice of the global batch (the input pipeline reads
  ``1 / process_count`` of the data); the global leading size is the sum over processes.

  Args:
    batch: Pytree of numpy arrays with a leading per-process batch axis.
    mesh: The data mesh.
  """
  sharding = batch_sharding(mesh)
  local_devices = sum(d.process_index == jax.process_index() for d in mesh.devices.flat)

  def place(x):
    x = np.asarray(x)
    if x.shape[0] % local_devices:
      raise ValueError(
          f'Per-process batch of {x.shape[0]} (array shape {x.shape}) does not split over '
          f'{local_devices} local devices.')
    return jax.make_array_from_process_local_data(sharding, x)

  return jax.tree.map(place, batch)


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Copies a pytree of arrays (model or optimizer state) to every device of the mesh.

  With several processes each one supplies the copies on its own devices, so every process
  must hold the same values (as models built from the same seed do).
  """
  sharding = replicated_sharding(mesh)
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def put(x):
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(put(jax.random.key_data(x)), impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])

  return jax.tree.map(put, tree)


def fetch(tree: Any) -> Any:
  """Brings (replicated or batch-sharded) device arrays back to host numpy.

  Batch-sharded arrays spread over several processes are gathered first, so every process
  gets the full global array.
  """
  def get(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      if x.sharding.is_fully_replicated:
        return np.asarray(x.addressable_data(0))
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)

  return jax.tree.map(get, tree)


def broadcast_from_process_0(value: bool) -> bool:
  """Process 0's ``value`` on every process (a collective: all processes must call it)."""
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(value, np.int32)))
