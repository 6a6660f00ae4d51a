"""Tests for adabins_jax.checkpointing: round trips, which checkpoints are kept, killed saves."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

from flax import nnx
import jax
import numpy as np
import optax
import pytest

from adabins_jax import checkpointing
from adabins_jax import errors
from adabins_jax import parallel
from helpers.stand_ins import TinyDepthModel

_TX = optax.adam(1e-3)


def _model_and_optimizer(seed=0):
  model = TinyDepthModel(rngs=nnx.Rngs(params=seed, dropout=seed))
  return model, nnx.Optimizer(model, _TX, wrt=nnx.Param)


def _perturb(model, optimizer, amount):
  """Moves every parameter, moment and statistic off its initial value, recognisably."""
  graphdef, state = nnx.split((model, optimizer))
  state = jax.tree.map(
      lambda x: x if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x + amount, state)
  nnx.update((model, optimizer), state)


def _arrays(*nodes):
  state = nnx.state(nodes, nnx.Not(nnx.RngState))
  return [np.asarray(x) for x in jax.tree.leaves(state)]


def test_save_and_restore_round_trip(tmp_path):
  model, optimizer = _model_and_optimizer()
  _perturb(model, optimizer, 3)
  manager = checkpointing.create_manager(tmp_path)
  assert checkpointing.save(manager, 7, model, optimizer)
  manager.wait_until_finished()

  fresh_model, fresh_optimizer = _model_and_optimizer(seed=1)
  assert checkpointing.restore(checkpointing.create_manager(tmp_path), fresh_model,
                               fresh_optimizer) == 7
  for a, b in zip(_arrays(model, optimizer), _arrays(fresh_model, fresh_optimizer), strict=True):
    np.testing.assert_array_equal(a, b)
  assert int(fresh_optimizer.step[...]) == 3  # 0 + 3 from _perturb.


def test_restore_without_checkpoint_changes_nothing(tmp_path):
  model, optimizer = _model_and_optimizer()
  before = _arrays(model, optimizer)
  assert checkpointing.restore(checkpointing.create_manager(tmp_path), model, optimizer) == 0
  for a, b in zip(before, _arrays(model, optimizer)):
    np.testing.assert_array_equal(a, b)


def test_restore_lands_replicated_on_the_mesh(tmp_path):
  model, optimizer = _model_and_optimizer()
  manager = checkpointing.create_manager(tmp_path)
  checkpointing.save(manager, 1, model, optimizer)
  manager.wait_until_finished()
  mesh = parallel.create_mesh(2)
  fresh_model, fresh_optimizer = _model_and_optimizer(seed=1)
  nnx.update((fresh_model, fresh_optimizer),
             parallel.replicate(nnx.state((fresh_model, fresh_optimizer)), mesh))
  checkpointing.restore(manager, fresh_model, fresh_optimizer)
  kernel = fresh_model.encoder.kernel[...]
  assert kernel.sharding.is_fully_replicated and len(kernel.sharding.device_set) == 2
  np.testing.assert_array_equal(kernel, model.encoder.kernel[...])


def test_keeps_latest_and_best(tmp_path):
  model, optimizer = _model_and_optimizer()
  manager = checkpointing.create_manager(tmp_path, keep_latest=2, keep_best=1)
  abs_rels = {1: 0.5, 2: 0.2, 3: 0.4, 4: 0.6, 5: 0.7}
  for step, abs_rel in abs_rels.items():
    checkpointing.save(manager, step, model, optimizer,
                       metrics={'eval/abs_rel': abs_rel, 'eval/d1': 1 - abs_rel})
    manager.wait_until_finished()
  checkpointing.save(manager, 6, model, optimizer)  # No evaluation at this one.
  manager.wait_until_finished()
  assert sorted(manager.all_steps()) == [2, 5, 6]
  assert sorted(int(p.name) for p in checkpointing.checkpoint_dir(tmp_path).iterdir()
                if p.name.isdigit()) == [2, 5, 6]
  reader = checkpointing.create_manager(tmp_path, read_only=True)
  assert checkpointing.select_step(reader, 'best') == 2
  assert checkpointing.select_step(reader, 'latest') == 6
  assert checkpointing.select_step(reader, '5') == 5
  with pytest.raises(FileNotFoundError, match=r"No checkpoint '3' .* \[2, 5, 6\]"):
    checkpointing.select_step(reader, '3')
  with pytest.raises(ValueError, match="'newest'"):
    checkpointing.select_step(reader, 'newest')


def test_save_interval_force_and_duplicates(tmp_path):
  model, optimizer = _model_and_optimizer()
  manager = checkpointing.create_manager(tmp_path, save_every_steps=2)
  assert not checkpointing.save(manager, 1, model, optimizer)
  assert checkpointing.save(manager, 2, model, optimizer)
  assert checkpointing.save(manager, 3, model, optimizer, force=True)
  manager.wait_until_finished()
  assert not checkpointing.save(manager, 3, model, optimizer, force=True)
  assert sorted(manager.all_steps()) == [2, 3]


def test_restore_model_only(tmp_path):
  model, optimizer = _model_and_optimizer()
  _perturb(model, optimizer, 2)
  manager = checkpointing.create_manager(tmp_path)
  checkpointing.save(manager, 4, model, optimizer, metrics={'eval/abs_rel': 0.3})
  checkpointing.finish(manager)
  fresh = TinyDepthModel(rngs=nnx.Rngs(params=5, dropout=5))
  assert checkpointing.restore_model(tmp_path, fresh, 'best') == 4
  for a, b in zip(_arrays(model), _arrays(fresh), strict=True):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(FileNotFoundError, match='No checkpoint'):
    checkpointing.restore_model(tmp_path / 'elsewhere', fresh)


_KILLED_SAVE = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, {tests!r})
    from flax import nnx
    from orbax.checkpoint._src.path import atomicity
    from adabins_jax import checkpointing
    import test_checkpointing as t

    model, optimizer = t._model_and_optimizer()
    manager = checkpointing.create_manager({workdir!r})
    checkpointing.save(manager, 1, model, optimizer)
    manager.wait_until_finished()
    t._perturb(model, optimizer, 1)

    async def die(self):
      os._exit(17)  # Killed after writing every array, before the commit.

    atomicity.AtomicRenameTemporaryPath.finalize = die
    checkpointing.save(manager, 2, model, optimizer, force=True)
    manager.wait_until_finished()
''')


@pytest.mark.slow  # Subprocess: a child saves and is killed mid-save (about 30 s on 2 busy cores).
def test_killed_save_leaves_the_last_good_checkpoint(tmp_path):
  script = _KILLED_SAVE.format(tests=os.path.dirname(__file__), workdir=str(tmp_path))
  result = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                          timeout=120)
  assert result.returncode == 17, result.stderr[-3000:]
  leftovers = [p.name for p in checkpointing.checkpoint_dir(tmp_path).iterdir()]
  assert '1' in leftovers and any(name.startswith('2.') for name in leftovers), leftovers

  manager = checkpointing.create_manager(tmp_path)
  assert manager.all_steps() == [1]
  model, optimizer = _model_and_optimizer(seed=3)
  assert checkpointing.restore(manager, model, optimizer) == 1
  reference, reference_optimizer = _model_and_optimizer()
  for a, b in zip(_arrays(reference, reference_optimizer), _arrays(model, optimizer)):
    np.testing.assert_array_equal(a, b)
  # The manager clears the partial step (in the background; saving waits for it), so step 2
  # can be written again.
  assert checkpointing.save(manager, 2, model, optimizer, force=True)
  manager.wait_until_finished()
  assert sorted(p.name for p in checkpointing.checkpoint_dir(tmp_path).iterdir()) == ['1', '2']


def test_restore_model_into_a_shape_only_model_on_the_mesh(tmp_path):
  model, optimizer = _model_and_optimizer()
  _perturb(model, optimizer, 2)
  manager = checkpointing.create_manager(tmp_path)
  checkpointing.save(manager, 4, model, optimizer)
  checkpointing.finish(manager)
  abstract = nnx.eval_shape(lambda: TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=0)))
  mesh = parallel.create_mesh(2)
  checkpointing.restore_model(tmp_path, abstract, 'latest',
                              sharding=parallel.replicated_sharding(mesh))
  for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param)),
                  jax.tree.leaves(nnx.state(abstract, nnx.Param)), strict=True):
    assert b.sharding.is_fully_replicated and len(b.sharding.device_set) == 2
    np.testing.assert_array_equal(a, b)


# Integrity: corrupt and truncated files are named; disk-full saves end in one line.

def _saved_steps(workdir, steps):
  model = TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=0))
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  manager = checkpointing.create_manager(workdir)
  for step in steps:
    nnx.update(model, jax.tree.map(lambda x: x + 1.0, nnx.state(model, nnx.Param)))
    checkpointing.save(manager, step, model, optimizer, force=True)
  checkpointing.finish(manager)
  manager.close()
  return model


def _largest_data_file(step_dir):
  step_dir = pathlib.Path(step_dir)
  data = [p for p in step_dir.rglob('*') if p.is_file() and p.name != 'checksums.json'
          and not p.name.startswith('_')]
  return max(data, key=lambda p: p.stat().st_size)


def _flip_bytes(path, count=19):
  raw = bytearray(path.read_bytes())
  for i in range(count):
    raw[(i * 7919) % len(raw)] ^= 0xFF
  path.write_bytes(bytes(raw))


def test_a_corrupt_checkpoint_is_named_and_training_falls_back(tmp_path):
  _saved_steps(tmp_path, (1, 2))
  step_dir = checkpointing.checkpoint_dir(tmp_path) / '2'
  assert json.loads((step_dir / 'checksums.json').read_text())['step'] == 2
  victim = _largest_data_file(step_dir)
  _flip_bytes(victim)
  # Evaluation and prediction refuse it, naming the step and the file.
  model = TinyDepthModel(rngs=nnx.Rngs(params=5, dropout=5))
  with pytest.raises(errors.CheckpointError, match=f'step 2 is corrupt: .*{victim.name}'):
    checkpointing.restore_model(tmp_path, model, 'latest')
  # Training resumes from step 1 and sets step 2 aside, so that it can be trained again.
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  manager = checkpointing.create_manager(tmp_path)
  assert checkpointing.restore(manager, model, optimizer) == 1
  assert manager.all_steps() == [1]
  assert (tmp_path / checkpointing.CORRUPT_DIR / '2').is_dir()
  assert checkpointing.save(manager, 2, model, optimizer, force=True)
  checkpointing.finish(manager)


def test_every_intact_step_verifies(tmp_path):
  _saved_steps(tmp_path, (1, 2, 3))
  for step in (1, 2, 3):
    assert checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), step)


def test_a_truncated_file_is_named(tmp_path):
  _saved_steps(tmp_path, (1,))
  victim = _largest_data_file(checkpointing.checkpoint_dir(tmp_path) / '1')
  victim.write_bytes(victim.read_bytes()[:-3])
  with pytest.raises(errors.CheckpointError, match='bytes'):
    checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), 1)


def test_a_disk_full_save_ends_in_one_line_and_keeps_earlier_steps(tmp_path, monkeypatch):
  model = _saved_steps(tmp_path, (1,))
  manager = checkpointing.create_manager(tmp_path)

  def full(*args, **kwargs):  # How TensorStore reports it, under two layers of wrapping.
    inner = ValueError('Error writing "d/4f2a": [errno=28] No space left on device')
    try:
      raise inner
    except ValueError as e:
      raise RuntimeError('Orbax save failed') from e

  monkeypatch.setattr(manager, 'save', full)
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  with pytest.raises(errors.CheckpointError) as info:
    checkpointing.save(manager, 2, model, optimizer, force=True)
  message = str(info.value)
  assert '\n' not in message and 'no space left' in message and str(tmp_path) in message
  assert info.value.__cause__ is None and info.value.__suppress_context__
  assert checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), 1)


def test_a_really_full_disk_fails_one_save_in_one_line(full_disk):
  mount, fill = full_disk
  model = _saved_steps(mount, (1,))
  manager = checkpointing.create_manager(mount)
  fill()
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  with pytest.raises(errors.CheckpointError) as info:
    checkpointing.save(manager, 2, model, optimizer, force=True)
    checkpointing.finish(manager)
  assert 'no space left on device' in str(info.value) and '\n' not in str(info.value)
  os.remove(mount / 'filler')
  assert checkpointing.verify(checkpointing.checkpoint_dir(mount), 1)
