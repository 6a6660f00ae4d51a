"""The import_torch command: a released-format .pt becomes an Orbax checkpoint others restore."""

import subprocess
import sys

import jax
import numpy as np
import pytest
import torch
from flax import nnx

from adabins_jax import checkpointing
from adabins_jax.torch_weights import importer as import_torch
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax.configs import smoke
from adabins_jax import models


@nnx.jit
def _forward(model, images):
  return model(images)


def _released_pt(model, path):
  state = torch_mapping.model_to_state_dict(model)
  torch.save({'model': {f'module.{k}': torch.from_numpy(v)
                        for k, v in state.items()}, 'epoch': 24}, path)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_import_then_restore_gives_the_same_model(tmp_path):
  config = smoke.get_config()
  source = models.random_model(config.model, seed=7)
  source.eval()
  _released_pt(source, tmp_path / 'released.pt')
  n = import_torch.import_checkpoint(config, tmp_path / 'released.pt', tmp_path / 'run')
  assert n == 182_264
  restored = models.random_model(config.model, seed=0)
  restored.eval()
  assert checkpointing.restore_model(tmp_path / 'run', restored, 'latest') == 0
  images = jax.random.normal(jax.random.key(1), (1, 64, 80, 3))
  np.testing.assert_array_equal(_forward(restored, images)[1], _forward(source, images)[1])
  with pytest.raises(FileExistsError, match='already holds checkpoints'):
    import_torch.import_checkpoint(config, tmp_path / 'released.pt', tmp_path / 'run')


@pytest.mark.slow  # Subprocess: the import command in a child process.
def test_import_command_reports_a_bad_key(tmp_path):
  config = smoke.get_config()
  source = models.random_model(config.model, seed=7)
  state = torch_mapping.model_to_state_dict(source)
  state.pop('conv_out.0.bias')
  torch.save({k: torch.from_numpy(v) for k, v in state.items()},
             tmp_path / 'partial.pt')
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.torch_weights', '--config=configs/smoke.py',
       f'--weights={tmp_path / "partial.pt"}', f'--workdir={tmp_path / "run"}'],
      capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode != 0
  assert 'missing key conv_out.0.bias' in result.stderr


@pytest.mark.slow  # End-to-end: imports, then evaluates twice (about 30 s on 2 busy cores).
def test_eval_scores_a_released_pt_as_its_imported_checkpoint(tmp_path, capsys):
  from adabins_jax import evaluate  # pylint: disable=g-import-not-at-top
  config = smoke.get_config()
  config.data.dataset = 'synthetic_rooms/tiny'
  config.data.tfds_data_dir = str(tmp_path / 'tfds')
  config.data.crop_white_border = False
  config.eval.crop = 'none'
  config.eval.batch_size = 4
  config.train.num_devices = 1
  source = models.random_model(config.model, seed=7)
  _released_pt(source, tmp_path / 'released.pt')
  direct = evaluate.evaluate(config, str(tmp_path / 'scored'), weights=tmp_path / 'released.pt')
  import_torch.import_checkpoint(config, tmp_path / 'released.pt', tmp_path / 'run')
  imported = evaluate.evaluate(config, str(tmp_path / 'run'))
  assert direct == imported and direct['num_images'] == 8
  # The progress bar knew the total: two batches of four.
  assert 'eval: 100%' in capsys.readouterr().err
  assert (tmp_path / 'scored' / 'eval_test_step_0.json').exists()
