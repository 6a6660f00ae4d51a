"""sun_rgbd: SUN RGB-D's on-disk layout to a 480x640 test split, and its zero-shot evaluation."""

import json
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from adabins_jax import configs
from adabins_jax import main
from adabins_jax import metrics
from adabins_jax import models
from adabins_jax import parallel
from adabins_jax.configs import smoke
from adabins_jax.datasets import build  # noqa: F401  (registers the builders)
from adabins_jax.datasets import sun_rgbd
from helpers import stand_ins

# (folder under SUNRGBD/, image (height, width), fx, depth folders written and their metres).
_FRAMES = (
    ('kv1/NYUdata/NYU0001', (36, 52), 40.0, {'depth_bfx': 2.5, 'depth': 9.0}),
    ('kv2/kinect2data/000002_rgbf000103-resize', (40, 50), 36.0, {'depth': 3.25}),
    ('realsense/sa/2014_10_21-18_13_17', (48, 64), 50.0, {'depth_bfx': 1.5}),
)


def _encode(metres: np.ndarray) -> np.ndarray:
  """Metres as the release stores them: millimetres with their bits rotated left by 3."""
  mm = np.round(metres * 1000).astype(np.uint16)
  return (mm << 3) | (mm >> 13)


def write_layout(root):
  """The release's layout with the frames above, and a test list in the toolbox's forms."""
  rng = np.random.default_rng(0)
  for name, hw, fx, depths in _FRAMES:
    folder = root / 'SUNRGBD' / name
    (folder / 'image').mkdir(parents=True)
    Image.fromarray(rng.integers(0, 256, (*hw, 3), np.uint8)).save(folder / 'image' / 'f.jpg')
    for kind, metres in depths.items():
      (folder / kind).mkdir()
      depth = np.full(hw, metres, np.float32)
      depth[hw[0] // 2, hw[1] // 2] = 0.0  # A hole, inside every crop.
      Image.fromarray(_encode(depth)).save(folder / kind / 'f.png')
    (folder / 'intrinsics.txt').write_text(f'{fx} 0 {hw[1] / 2}\n0 {fx} {hw[0] / 2}\n0 0 1\n')
  lines = [_FRAMES[0][0], f'/n/fs/sun3d/data/SUNRGBD/{_FRAMES[1][0]}/', _FRAMES[2][0]]
  (root / sun_rgbd.TEST_LIST).write_text('\n'.join(lines) + '\n')


def test_depth_decoding_undoes_the_bit_rotation():
  metres = np.array([0.0, 0.001, 1.234, 7.999, 65.535], np.float32)
  np.testing.assert_allclose(sun_rgbd.decode_depth(_encode(metres)), metres, atol=1e-6)


def test_toolbox_paths_become_folders_under_sunrgbd():
  assert sun_rgbd.frame_folder('/n/fs/sun3d/data/SUNRGBD/kv2/a/b/') == 'kv2/a/b'
  assert sun_rgbd.frame_folder('kv1/NYUdata/NYU0001') == 'kv1/NYUdata/NYU0001'


def test_builds_the_test_split_cropped_to_3_4_and_resized(tmp_path):
  write_layout(tmp_path / 'manual')
  builder = tfds.builder('sun_rgbd', data_dir=tmp_path / 'tfds')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / 'manual'))
  examples = {ex['name'].decode(): ex for ex in tfds.as_numpy(builder.as_dataset('test'))}
  assert sorted(examples) == sorted(name for name, *_ in _FRAMES)
  for name, (h, w), fx, depths in _FRAMES:
    ex = examples[name]
    assert ex['image'].shape == (480, 640, 3) and ex['depth'].shape == (480, 640)
    crop_w = min(w, round(h * 4 / 3))  # The crop keeps fx, the resize to 640 scales it.
    assert ex['focal'] == pytest.approx(fx * 640 / crop_w)
    metres = depths.get('depth_bfx', depths.get('depth'))  # depth_bfx preferred.
    valid = ex['depth'][ex['depth'] > 0]
    np.testing.assert_allclose(valid, metres, rtol=1e-3)
    assert (ex['depth'] == 0).sum() > 0  # The hole survives as invalid pixels.


def test_a_missing_folder_names_the_expected_layout(tmp_path):
  (tmp_path / 'manual').mkdir()
  builder = tfds.builder('sun_rgbd', data_dir=tmp_path / 'tfds')
  # TFDS itself refuses an empty manual folder, quoting the instructions.
  with pytest.raises((AssertionError, FileNotFoundError), match=sun_rgbd.TEST_LIST):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / 'manual'))


# Builds the split, compiles a tiny model's eval step: about 40 CPU-seconds.
@pytest.mark.slow
def test_the_eval_config_scores_the_split_through_main(tmp_path, monkeypatch):
  pytest.importorskip('torch')
  write_layout(tmp_path / 'manual')
  weights = stand_ins.save_torch_weights(models.random_model(smoke.get_config().model, seed=1),
                                         tmp_path / 'tiny.pt')
  shrink = [f'--config.model.{k}={v}' for k, v in [
      ('name', 'unet'), ('unet_widths', '(8,16,32)'), ('n_bins', 16), ('patch_size', 4),
      ('n_queries', 16), ('embed_dim', 16), ('num_heads', 2), ('num_layers', 1),
      ('ffn_dim', 32)]]
  argv = ['main', f'--config={configs.resolve("sun_rgbd_effnet_b5_256")}', '--mode=eval', f'--weights={weights}',
          f'--workdir={tmp_path}/run', f'--config.data.tfds_data_dir={tmp_path}/tfds',
          f'--config.data.manual_dir={tmp_path}/manual', '--config.data.input_scale=0.125',
          '--config.eval.batch_size=3', '--config.train.num_devices=1',
          '--config.eval.camera_transform=True', '--config.eval.boundary_metrics=True', *shrink]
  monkeypatch.setattr(parallel, 'maybe_initialize_distributed', lambda: None)
  monkeypatch.setattr(sys, 'argv', argv)  # config_flags reads overrides from sys.argv.
  with flagsaver.flagsaver():
    main.main(flags.FLAGS(argv))
  results = json.loads((tmp_path / 'run' / 'eval_test_step_0.json').read_text())
  assert results['num_images'] == 3
  assert 0.0 <= results[metrics.BOUNDARY_NAME] <= 1.0
  report = (tmp_path / 'run' / 'report.md').read_text()
  assert '| this run |' in report and 'boundary_f1' in report
  # Beside the paper's zero-shot row, whatever this tiny model scores.
  assert '| paper (EfficientNet-B5 (paper, NYU model on SUN RGB-D), 256 bins) | 0.771 |' in report
