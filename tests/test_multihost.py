"""Two processes training together, as on two hosts: jax.distributed on 127.0.0.1, gloo.

Each process has one CPU device and half of the global batch, and finds the cluster from
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID, as launch.sh documents. The
reference is one process with two devices. Training data here are fixed global batches of
which each process takes its half: the real pipeline gives every host its own shard of the
data (input_pipeline), so one and two processes would see different batches by design.
Evaluation uses the real pipeline on the tiny synthetic_rooms split.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

# Subprocess end-to-end: two processes under jax.distributed train, stop and evaluate.
pytestmark = pytest.mark.slow

_REPO = pathlib.Path(__file__).resolve().parents[1]
_STEPS = 4

_CHILD = textwrap.dedent('''
    import json, os, signal, sys
    role, out, num_devices = sys.argv[1], sys.argv[2], int(sys.argv[3])
    import jax
    jax.config.update('jax_num_cpu_devices', num_devices)
    import numpy as np
    from flax import nnx
    from adabins_jax import checkpointing, errors, input_pipeline, models, parallel, train
    from helpers.stand_ins import tiny_rooms_config

    parallel.maybe_initialize_distributed()
    rank, count = jax.process_index(), jax.process_count()
    config = tiny_rooms_config(out, %(steps)d, log_every_steps=1)
    signal_at = int(os.environ.get('SIGNAL_AT_STEP', '0'))
    die_at = int(os.environ.get('DIE_AT_STEP', '0'))

    def fixed_batches(data_config, batch_size, seed, start_step=0):
      local = batch_size // count
      step = start_step
      while True:
        step += 1
        if step == signal_at and rank == count - 1:
          os.kill(os.getpid(), signal.SIGTERM)
        if step == die_at and rank == count - 1:
          os._exit(3)
        rng = np.random.default_rng(step)
        batch = {'image': rng.standard_normal((batch_size, 48, 64, 3)).astype(np.float32),
                 'depth': rng.uniform(0.5, 9.0, (batch_size, 48, 64, 1)).astype(np.float32)}
        yield {k: v[rank * local:(rank + 1) * local] for k, v in batch.items()}

    input_pipeline.create_train_dataset = fixed_batches
    workdir = os.path.join(out, role)
    report = {'rank': rank, 'count': count}
    try:
      report['metrics'] = train.train_and_evaluate(config, workdir)
    except errors.Interrupted as e:
      report['interrupted'] = e.step
    model = models.build_abstract_model(config.model)
    report['restored_step'] = checkpointing.restore_model(workdir, model, 'latest')
    params = [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]
    np.savez(os.path.join(out, f'{role}_params_{rank}.npz'), *params)
    report['steps'] = sorted(checkpointing.create_manager(workdir, read_only=True).all_steps())
    json.dump(report, open(os.path.join(out, f'{role}_report_{rank}.json'), 'w'))
''') % {'steps': _STEPS}


def _env(out, **extra):
  return dict(os.environ, PYTHONPATH=os.pathsep.join([str(_REPO), str(_REPO / 'tests')]),
              TF_CPP_MIN_LOG_LEVEL='2',
              JAX_COMPILATION_CACHE_DIR=str(out / 'jax_cache'),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
              XLA_FLAGS='--xla_backend_optimization_level=0', **extra)


def _free_port():
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _two_processes(out, role, timeout=400, **env):
  """Starts ranks 0 and 1 of ``role``; returns their (returncode, stderr) once both ended."""
  port = _free_port()
  children = [subprocess.Popen(
      [sys.executable, '-c', _CHILD, role, str(out), '1'], cwd=_REPO,
      env=_env(out, JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}', JAX_NUM_PROCESSES='2',
               JAX_PROCESS_ID=str(rank), **env),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for rank in (0, 1)]
  deadline = time.monotonic() + timeout
  results = []
  for child in children:
    try:
      _, stderr = child.communicate(timeout=max(1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      for c in children:
        c.kill()
      pytest.fail(f'{role}: a process hung past {timeout} s')
    results.append((child.returncode, stderr))
  return results


def _report(out, role, rank):
  return json.loads((out / f'{role}_report_{rank}.json').read_text())


def _params(out, role, rank):
  with np.load(out / f'{role}_params_{rank}.npz') as npz:
    return [npz[k] for k in sorted(npz.files, key=lambda k: int(k.split('_')[1]))]


@pytest.fixture(scope='module')
def out(tmp_path_factory):
  out = tmp_path_factory.mktemp('multihost')
  # The reference, one process with two devices; it also builds the tiny dataset.
  result = subprocess.run([sys.executable, '-c', _CHILD, 'reference', str(out), '2'],
                          cwd=_REPO, env=_env(out), capture_output=True, text=True, timeout=400)
  assert result.returncode == 0, result.stderr[-4000:]
  return out


def test_two_processes_train_save_restore_and_evaluate_as_one(out):
  for code, stderr in _two_processes(out, 'pair'):
    assert code == 0, stderr[-4000:]
  reference = _report(out, 'reference', 0)
  for rank in (0, 1):
    report = _report(out, 'pair', rank)
    assert report['count'] == 2
    # One checkpoint series, written by process 0 and restored by both.
    assert report['steps'] == reference['steps'] == [2, _STEPS]
    assert report['restored_step'] == _STEPS
    # Evaluation gathered over both processes: the single-process metrics.
    for key, value in reference['metrics'].items():
      np.testing.assert_allclose(report['metrics'][key], value, rtol=1e-4, err_msg=key)
    for a, b in zip(_params(out, 'pair', rank), _params(out, 'reference', 0)):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
  assert not any((out / 'pair' / 'checkpoints').glob('*/checksums.json.*'))


def test_sigterm_to_one_process_stops_both_at_the_same_saved_step(out):
  results = _two_processes(out, 'preempted', SIGNAL_AT_STEP='2')
  steps = []
  for rank, (code, stderr) in enumerate(results):
    assert code == 0, stderr[-4000:]  # The child catches Interrupted; main would exit 143.
    report = _report(out, 'preempted', rank)
    steps.append(report['interrupted'])
    assert report['restored_step'] == report['interrupted']
  assert steps[0] == steps[1] and 2 <= steps[0] < _STEPS


def test_a_dead_process_makes_the_other_fail_instead_of_hanging(out):
  started = time.monotonic()
  results = _two_processes(out, 'orphaned', timeout=300, DIE_AT_STEP='3',
                           JAX_HEARTBEAT_TIMEOUT_SECONDS='30')
  assert results[1][0] == 3
  code, stderr = results[0]
  assert code != 0 and time.monotonic() - started < 300
  assert 'another task died' in stderr, stderr[-3000:]
