"""Weights trained for one depth range are refused in another: released .pt files by name,
Orbax checkpoints by the range they record."""

import logging
import re
import subprocess
import sys

from absl import flags
from absl.testing import flagsaver
import jax
import numpy as np
import pytest
import torch
from flax import nnx
from PIL import Image

from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax.torch_weights import importer as import_torch
from adabins_jax import optim
from adabins_jax.torch_weights import release as release_weights
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax.configs import smoke
from adabins_jax.models import build_abstract_model
from adabins_jax.inference.predictor import Predictor
from adabins_jax import models

_NYU_RANGE = '0.001..10 m'
_KITTI_RANGE = '0.001..80 m'


def _config(max_depth_m=10.0, allow_range_mismatch=False):
  """The smoke model in the NYU (10 m) or KITTI (80 m) range of the release."""
  config = smoke.get_config()
  config.model.max_depth_m = max_depth_m
  config.model.allow_range_mismatch = allow_range_mismatch
  return config


def _save_release_pt(config, path, seed=7):
  """A release-format .pt ({"model": DDP-prefixed state_dict}) of a fresh model; the model."""
  model = models.random_model(config.model, seed=seed)
  model.eval()
  state = torch_mapping.model_to_state_dict(model)
  torch.save({'model': {f'module.{k}': torch.from_numpy(v) for k, v in state.items()},
              'epoch': 24}, path)
  return model


@nnx.jit
def _forward(model, images):
  return model(images)


def _same_depth(a, b):
  images = jax.random.normal(jax.random.key(1), (1, 64, 80, 3))
  np.testing.assert_array_equal(_forward(a, images)[1], _forward(b, images)[1])


@pytest.mark.parametrize('name,dataset', [
    ('AdaBins_nyu.pt', 'nyu'), ('AdaBins_kitti.pt', 'kitti'), ('ADABINS_KITTI.PT', 'kitti'),
    ('kitti_finetuned.pth', 'kitti'), ('runs/nyu/weights.pt', None), ('weights.pt', None),
    ('nyu_then_kitti.pt', None),
])
def test_the_range_a_file_name_says(name, dataset):
  found = release_weights.range_from_name(name)
  assert (found and found[0]) == dataset
  if dataset:
    assert found[1] == release_weights.RELEASE_RANGES_M[dataset]


@pytest.mark.parametrize('config_name,accepted,refused', [
    ('effnet_b5_256', 'AdaBins_nyu.pt', 'AdaBins_kitti.pt'),
    ('kitti_effnet_b5_256', 'AdaBins_kitti.pt', 'AdaBins_nyu.pt'),
])
def test_each_release_file_fits_its_shipped_config(config_name, accepted, refused):
  if config_name not in configs.names():
    pytest.skip(f'configs/{config_name}.py is not in this checkout')
  model = configs.load(config_name).model
  depth_range = (model.min_depth_m, model.max_depth_m)
  release_weights.check_file_range(accepted, depth_range)
  with pytest.raises(release_weights.DepthRangeError, match=refused):
    release_weights.check_file_range(refused, depth_range)


def test_kitti_weights_are_refused_by_the_nyu_config_on_every_path(tmp_path):
  path = tmp_path / 'AdaBins_kitti.pt'
  _save_release_pt(_config(80.0), path)
  config = _config(10.0)
  expected = (rf'{re.escape(str(path))}: the file name says KITTI weights, trained for depth '
              rf'{_KITTI_RANGE}, but the config reads them in {_NYU_RANGE}.*'
              'allow_range_mismatch=True')
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    torch_mapping.load_torch_checkpoint(build_abstract_model(config.model), path)
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    checkpointing.load_torch_checkpoint(build_abstract_model(config.model), path)
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    checkpointing.load_model(config, None, str(path))  # Also export's.
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    Predictor(config, weights=str(path))  # Also the web app's.
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    import_torch.import_checkpoint(config, path, tmp_path / 'run')
  assert not (tmp_path / 'run' / 'checkpoints').exists()


def test_evaluate_refuses_them_before_reading_data(tmp_path):
  from adabins_jax import evaluate  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'AdaBins_nyu.pt'
  _save_release_pt(_config(10.0), path)
  config = _config(80.0)
  config.data.tfds_data_dir = str(tmp_path / 'no_data')
  config.train.num_devices = 1
  with pytest.raises(release_weights.DepthRangeError, match=f'NYU weights.*{_NYU_RANGE}'):
    evaluate.evaluate(config, str(tmp_path / 'scored'), weights=str(path))
  assert not (tmp_path / 'no_data').exists()


def test_kitti_weights_load_under_a_kitti_range_config(tmp_path):
  path = tmp_path / 'AdaBins_kitti.pt'
  source = _save_release_pt(_config(80.0), path)
  model, loaded_from = checkpointing.load_model(_config(80.0), None, str(path))
  assert loaded_from == str(path)
  _same_depth(model, source)


def test_the_override_loads_them_with_a_warning(tmp_path, caplog):
  path = tmp_path / 'AdaBins_nyu.pt'
  source = _save_release_pt(_config(10.0), path)
  with caplog.at_level(logging.WARNING):
    model, _ = checkpointing.load_model(_config(80.0, allow_range_mismatch=True), None, str(path))
  assert any(f'{path}: the file name says NYU weights' in r.getMessage()
             and 'Loading them anyway' in r.getMessage() for r in caplog.records)
  images = jax.random.normal(jax.random.key(1), (1, 64, 80, 3))
  ours, theirs = _forward(model, images)[0], _forward(source, images)[0]
  # The same weights, read in the wider range: edges stretch by (80 - 1e-3) / (10 - 1e-3).
  np.testing.assert_allclose(ours - 1e-3, (theirs - 1e-3) * (80 - 1e-3) / (10 - 1e-3),
                             rtol=1e-5, atol=1e-5)


def test_a_file_that_names_no_range_warns_once(tmp_path, caplog):
  path = tmp_path / 'my_weights.pt'
  source = _save_release_pt(_config(80.0), path)
  with caplog.at_level(logging.WARNING):
    model, _ = checkpointing.load_model(_config(80.0), None, str(path))
    checkpointing.load_model(_config(80.0), None, str(path))
  warnings = [r.getMessage() for r in caplog.records if 'says no depth range' in r.getMessage()]
  assert len(warnings) == 1, warnings
  assert str(path) in warnings[0] and f'read as depth in {_KITTI_RANGE}' in warnings[0]
  _same_depth(model, source)


def test_an_orbax_checkpoint_is_refused_by_a_config_of_another_range(tmp_path):
  path = tmp_path / 'weights.pt'
  _save_release_pt(_config(10.0), path)
  import_torch.import_checkpoint(_config(10.0), path, tmp_path / 'run')
  step_dir = tmp_path / 'run' / 'checkpoints' / '0'
  expected = (rf'Checkpoint {re.escape(str(step_dir))} was saved by a model of depth range '
              rf'{_NYU_RANGE}, but the config builds one of {_KITTI_RANGE}')
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    checkpointing.restore_model(tmp_path / 'run', build_abstract_model(_config(80.0).model))
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    checkpointing.load_model(_config(80.0), str(tmp_path / 'run'))
  # Training resumes through restore(), which checks the same.
  model = models.random_model(_config(80.0).model)
  optimizer = nnx.Optimizer(model, optim.create_optimizer(_config().optim, total_steps=1),
                            wrt=nnx.Param)
  manager = checkpointing.create_manager(tmp_path / 'run', read_only=True)
  with pytest.raises(release_weights.DepthRangeError, match=expected):
    checkpointing.restore(manager, model, optimizer)
  manager.close()
  # The same range restores.
  assert checkpointing.restore_model(tmp_path / 'run',
                                     build_abstract_model(_config(10.0).model)) == 0


@pytest.mark.slow  # Subprocess: the import command twice in child processes.
def test_import_command_refuses_then_takes_the_override(tmp_path):
  path = tmp_path / 'AdaBins_kitti.pt'
  _save_release_pt(_config(80.0), path)
  command = [sys.executable, '-m', 'adabins_jax.torch_weights', '--config=smoke',
             f'--weights={path}', f'--workdir={tmp_path / "run"}']
  refused = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
  assert refused.returncode == 1, refused.stderr
  assert f'error: {path}: the file name says KITTI weights' in refused.stderr
  assert 'Traceback' not in refused.stderr
  taken = subprocess.run(command + ['--config.model.allow_range_mismatch=True'],
                         capture_output=True, text=True, timeout=300, check=False)
  assert taken.returncode == 0, taken.stderr
  assert 'Imported 182,264 parameters' in taken.stdout


@flagsaver.flagsaver
def test_main_says_why_in_one_line(tmp_path, monkeypatch, capsys):
  from adabins_jax import main  # pylint: disable=g-import-not-at-top
  path = tmp_path / 'AdaBins_kitti.pt'
  _save_release_pt(_config(80.0), path)
  Image.fromarray(np.zeros((64, 80, 3), np.uint8)).save(tmp_path / 'photo.png')
  argv = ['main', '--config=smoke', '--mode=predict', f'--weights={path}',
          f'--input={tmp_path / "photo.png"}', f'--output={tmp_path / "depth"}']
  argv = configs.resolve_argv(argv)
  monkeypatch.setattr(sys, 'argv', argv)  # config_flags reads --config.* from sys.argv.
  with pytest.raises(SystemExit) as exit_info:
    main.main(flags.FLAGS(argv))
  assert exit_info.value.code == 1
  assert f'error: {path}: the file name says KITTI weights' in capsys.readouterr().err
