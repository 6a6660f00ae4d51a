"""The NYU Depth V2 configs run on the local-folder builders (tiny generated NYU)."""

import numpy as np
import pytest

from adabins_jax import input_pipeline
from adabins_jax import train
from adabins_jax.configs import smoke, unet128, unet128_dws_75


def _tiny_model(config, patch_size):
  """``config`` with the smoke model's sizes, keeping its data and eval settings."""
  model = smoke.get_config().model
  model.patch_size = patch_size
  config.model = model
  return config


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_75_percent_config_trains_and_evaluates_on_local_bts_folder(bts_folder, tmp_path):
  root, _ = bts_folder
  config = _tiny_model(unet128_dws_75.get_config(), patch_size=12)
  assert config.data.dataset == 'nyu_depth_v2_bts' and config.eval.crop == 'eigen'
  config.data.manual_dir = str(root)
  config.data.tfds_data_dir = str(tmp_path / 'tfds')
  config.train.batch_size = config.eval.batch_size = 2
  config.train.num_steps = 2
  config.train.eval_every_steps = 2
  results = train.train_and_evaluate(config, str(tmp_path / 'run'))
  # Two official test frames, scored at full 480x640 resolution inside the Eigen crop.
  assert results['num_images'] == 2
  assert all(np.isfinite(results[k]) for k in ('d1', 'abs_rel', 'rmse', 'silog'))
  assert 0.0 <= results['d1'] <= 1.0
  assert (tmp_path / 'run' / 'checkpoints').is_dir()


def test_h5_layout_feeds_the_paper_pipeline(h5_folder, tmp_path):
  root, _ = h5_folder
  data = unet128.get_config().data
  data.dataset = 'nyu_depth_v2_h5'
  data.manual_dir = str(root)
  data.tfds_data_dir = str(tmp_path / 'tfds')
  batch = next(iter(input_pipeline.create_train_dataset(data, 2, seed=0)))
  # The paper's 416x544 random crop of the white-border-cropped 480x640 frames.
  assert batch['image'].shape == (2, 416, 544, 3)
  assert batch['depth'].shape == (2, 416, 544, 1)
  assert abs(float(batch['image'].mean())) < 3.0  # ImageNet-normalised, not [0, 255].
  evaluation = list(input_pipeline.create_eval_dataset(data, 2))
  assert sum(int(b['example_mask'].sum()) for b in evaluation) == 2
  assert evaluation[0]['depth'].shape[1:3] == (480, 640)
