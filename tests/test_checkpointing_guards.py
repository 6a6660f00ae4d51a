"""Tests for checkpointing's refusals: unverifiable steps, renamed steps, another config."""

import os
import sys

from absl.testing import flagsaver
from flax import nnx
import optax
import pytest

from adabins_jax import checkpointing
from adabins_jax import errors
from adabins_jax import main
from adabins_jax import models
from adabins_jax.configs import smoke
from helpers.stand_ins import TinyDepthModel


def _tiny(n_bins=4, seed=0):
  return TinyDepthModel(n_bins=n_bins, rngs=nnx.Rngs(params=seed, dropout=seed))


def _save(workdir, model, step=3, *, model_config=None, record=True):
  manager = checkpointing.create_manager(workdir)
  checkpointing.save(manager, step, model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param),
                     force=True, model_config=model_config)
  if record:
    checkpointing.finish(manager)
  else:
    manager.wait_until_finished()
  manager.close()
  return checkpointing.checkpoint_dir(workdir) / str(step)


def test_a_step_without_checksums_is_refused_unless_allowed(tmp_path):
  step_dir = _save(tmp_path, _tiny())
  os.remove(step_dir / checkpointing.CHECKSUMS_FILE)
  missing = os.path.join(str(step_dir), checkpointing.CHECKSUMS_FILE)
  with pytest.raises(errors.CheckpointError, match='--allow_unverified_checkpoint') as e:
    checkpointing.restore_model(tmp_path, _tiny(seed=1), 'latest')
  assert f'{missing} is missing' in str(e.value)
  assert checkpointing.restore_model(tmp_path, _tiny(seed=1), 'latest',
                                     allow_unverified=True) == 3
  # Training resumes from it (a run preempted before recording must requeue by itself).
  model = _tiny(seed=1)
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  assert checkpointing.restore(checkpointing.create_manager(tmp_path), model, optimizer) == 3


def test_load_model_refuses_an_unverified_step_unless_allowed(tmp_path):
  config = smoke.get_config()
  config.eval.checkpoint = 'latest'
  model = models.random_model(config.model, seed=1)
  step_dir = _save(tmp_path, model, model_config=config.model)
  os.remove(step_dir / checkpointing.CHECKSUMS_FILE)
  with pytest.raises(errors.CheckpointError, match=f'step 3 cannot be verified: .*'
                                                   f'{checkpointing.CHECKSUMS_FILE} is missing'):
    checkpointing.load_model(config, str(tmp_path))
  _, source = checkpointing.load_model(config, str(tmp_path), allow_unverified=True)
  assert source.endswith('(step 3)')


def test_a_renamed_step_folder_is_refused(tmp_path):
  step_dir = _save(tmp_path, _tiny(), step=5)
  os.rename(step_dir, step_dir.parent / '7')
  with pytest.raises(errors.CheckpointError, match='holds the checkpoint of step 5, not 7'):
    checkpointing.restore_model(tmp_path, _tiny(seed=1), 'latest')
  model = _tiny(seed=1)
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  with pytest.raises(errors.CheckpointError, match='renamed'):
    checkpointing.restore(checkpointing.create_manager(tmp_path), model, optimizer)


def test_another_config_is_named_in_one_line(tmp_path):
  saved = smoke.get_config().model
  _save(tmp_path, models.random_model(saved, seed=1), model_config=saved)
  requested = smoke.get_config().model
  requested.n_bins = 8
  with pytest.raises(errors.ConfigMismatchError) as e:
    checkpointing.restore_model(tmp_path, models.build_abstract_model(requested), 'latest',
                                model_config=requested)
  message = str(e.value)
  assert '\n' not in message
  assert 'saved name=unet n_bins=16' in message and 'requested name=unet n_bins=8' in message
  assert 'differ: n_bins' in message


def test_a_checkpoint_without_config_fields_still_restores_or_fails_in_one_line(tmp_path):
  _save(tmp_path, _tiny(n_bins=4))
  assert checkpointing.restore_model(tmp_path, _tiny(n_bins=4, seed=1), 'latest') == 3
  with pytest.raises(errors.ConfigMismatchError, match='another model config') as e:
    checkpointing.restore_model(tmp_path, _tiny(n_bins=5), 'latest')
  assert '\n' not in str(e.value)

  class Other(nnx.Module):

    def __init__(self):
      self.encoder = nnx.Conv(3, 8, (3, 3), rngs=nnx.Rngs(0))

  with pytest.raises(errors.ConfigMismatchError, match='variables differ') as e:
    checkpointing.restore_model(tmp_path, Other(), 'latest')
  assert '\n' not in str(e.value)


@flagsaver.flagsaver
def test_main_exits_2_for_a_checkpoint_of_another_config(tmp_path, monkeypatch, capsys):
  def mismatch(*_, **__):
    raise errors.ConfigMismatchError('saved n_bins=16; requested n_bins=8')

  monkeypatch.setattr(main, '_dispatch', lambda mode: mismatch)
  config_file = os.path.join(os.path.dirname(smoke.__file__), 'smoke.py')
  argv = ['main', f'--config={config_file}', f'--workdir={tmp_path}', '--mode=eval',
          '--allow_unverified_checkpoint']
  monkeypatch.setattr(sys, 'argv', argv)
  with pytest.raises(SystemExit) as e:
    main.main(main.flags.FLAGS(argv))
  assert e.value.code == 2
  assert 'requested n_bins=8' in capsys.readouterr().err
