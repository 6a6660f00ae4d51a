"""The KITTI protocol: KB-cropped frames scored as the uncropped ones, Garg crop, 1e-3 to 80 m.

The expected numbers come from numpy written here after the BTS / AdaBins evaluation (the
prediction pasted into the full frame, Garg's crop on the full frame), not from the code under
test.
"""

import pathlib
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest
import tensorflow_datasets as tfds

from adabins_jax import input_pipeline
from adabins_jax.datasets import kitti
from adabins_jax import main
from adabins_jax import metrics
from adabins_jax.configs import kitti_effnet_b5_256
from helpers import kitti_layout

_REPO = pathlib.Path(__file__).resolve().parents[1]
_SIZES = [(375, 1242), (370, 1224), (374, 1238), (376, 1241)]


def _garg(height, width):
  return (slice(int(0.40810811 * height), int(0.99189189 * height)),
          slice(int(0.03594771 * width), int(0.96405229 * width)))


def _kb(height, width):
  top, left = int(height - 352), int((width - 1216) / 2)
  return slice(top, top + 352), slice(left, left + 1216)


def _numpy_errors(gt, pred):
  """The release's compute_errors on valid pixels (1e-3 < gt < 80) inside Garg's crop."""
  valid = (gt > 1e-3) & (gt < 80.0)
  crop = np.zeros_like(valid)
  crop[_garg(*gt.shape)] = True
  gt, pred = gt[valid & crop].astype(np.float64), pred[valid & crop].astype(np.float64)
  thresh = np.maximum(gt / pred, pred / gt)
  err = np.log(pred) - np.log(gt)
  return {'d1': (thresh < 1.25).mean(), 'abs_rel': np.mean(np.abs(gt - pred) / gt),
          'sq_rel': np.mean((gt - pred) ** 2 / gt), 'rmse': np.sqrt(np.mean((gt - pred) ** 2)),
          'rmse_log': np.sqrt(np.mean(err ** 2)),
          'silog': 100 * np.sqrt(np.mean(err ** 2) - np.mean(err) ** 2)}


def test_garg_crop_lies_inside_the_kb_crop_for_every_kitti_frame_size():
  assert sorted(kitti.FRAME_SIZES) == sorted(_SIZES)
  for height, width in _SIZES:
    garg, kb = _garg(height, width), _kb(height, width)
    for g, k in zip(garg, kb):
      assert k.start <= g.start < g.stop <= k.stop, (height, width, garg, kb)


@pytest.mark.parametrize('height, width', _SIZES)
def test_crop_in_source_frame_is_garg_on_the_uncropped_frame(height, width):
  full = np.zeros((height, width), bool)
  full[_garg(height, width)] = True
  rows, cols = _kb(height, width)
  source = np.array([[rows.start, cols.start, height, width], [0, 0, 0, 0]])
  masks = np.asarray(metrics.source_frame_crop_masks((352, 1216), 'garg', source))
  np.testing.assert_array_equal(masks[0], full[rows, cols])
  assert masks[0].sum() == full.sum()  # Nothing of the crop is lost with the KB crop.
  assert not masks[1].any()  # A padding example keeps no pixel.
  assert (kitti.kb_crop_offset(height, width), kitti.garg_crop(height, width)) == (
      (rows.start, cols.start), tuple((s.start, s.stop) for s in _garg(height, width)))


def test_other_crops_in_source_frame():
  source = np.array([[0, 0, 480, 640], [5, 3, 490, 650]])
  eigen = np.asarray(metrics.source_frame_crop_masks((480, 640), 'eigen', source))
  np.testing.assert_array_equal(eigen[0], metrics.crop_mask((480, 640), 'eigen'))
  # Shifted by the stored frame's corner: Eigen's rows 45..470, columns 41..600 of the original.
  assert np.argwhere(eigen[1]).min(0).tolist() == [40, 38]
  assert np.argwhere(eigen[1]).max(0).tolist() == [465, 597]
  assert np.asarray(metrics.source_frame_crop_masks((4, 6), 'none', source)).all()
  with pytest.raises(ValueError, match="'center'"):
    metrics.source_frame_crop_masks((4, 6), 'center', source)


def test_fractions_of_the_stored_frame_would_not_be_garg():
  # Why the source frame is needed: the crop taken on the 352x1216 frame differs.
  full = np.zeros((375, 1242), bool)
  full[_garg(375, 1242)] = True
  naive = metrics.crop_mask((352, 1216), 'garg')
  assert (naive != full[_kb(375, 1242)]).any()


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_metrics_of_the_stored_frames_equal_the_releases_on_the_original_frames(tmp_path):
  folder = kitti_layout.write_kitti_folder(tmp_path / 'kitti')
  builder = tfds.builder('kitti_eigen', data_dir=tmp_path / 'tfds')
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=folder.root))
  data = kitti_effnet_b5_256.get_config().data
  batch = next(iter(input_pipeline.create_eval_dataset(data, 2, builder=builder)))
  by_shape = {f.depth_png.shape: f for f in folder.test}
  # A prediction at the stored size (the resize is then the identity), from 0.5 to 90 m so
  # that clipping to 1e-3..80 matters.
  yy, xx = np.mgrid[:352, :1216]
  pred = (0.5 + 89.5 * xx / 1215 * (0.5 + yy / 703))[None, ..., None]
  pred = np.repeat(pred.astype(np.float32), 2, axis=0)
  sums, _ = metrics.score_batch(batch['depth'], pred, None, min_depth=1e-3, max_depth=80.0,
                                crop='garg', source_frame=batch['source_frame'])
  expected = []
  for source in batch['source_frame']:
    frame = by_shape[tuple(source[2:])]
    gt = frame.depth_png / 256.0
    # As the release's evaluate.py: the KB-cropped prediction pasted into the full frame.
    full_pred = np.zeros(gt.shape, np.float32)
    full_pred[_kb(*gt.shape)] = np.clip(pred[0, ..., 0], 1e-3, 80.0)
    expected.append(_numpy_errors(gt.astype(np.float16).astype(np.float32), full_pred))
  result = sums.compute()
  assert result['num_images'] == 2
  for name in expected[0]:
    np.testing.assert_allclose(result[name], np.mean([e[name] for e in expected]),
                               rtol=2e-5, err_msg=name)


@pytest.mark.slow  # End-to-end: trains and evaluates through main.
@flagsaver.flagsaver
def test_main_trains_and_evaluates_the_kitti_config_shrunk(tmp_path, monkeypatch):
  kitti_layout.write_kitti_folder(tmp_path / 'kitti')
  # The KITTI config with the smoke model's sizes; the network sees a quarter of each side
  # (16x32 training crops, 88x304 test frames) and the depth is scored at 352x1216.
  argv = [
      'main', f'--config={_REPO / "configs" / "kitti_effnet_b5_256.py"}',
      f'--workdir={tmp_path / "run"}', f'--config.data.manual_dir={tmp_path / "kitti"}',
      f'--config.data.tfds_data_dir={tmp_path / "tfds"}', '--config.data.crop_size=(64, 128)',
      '--config.data.input_scale=0.25', '--config.model.name=unet',
      '--config.model.unet_widths=(8, 16, 32)', '--config.model.n_bins=16',
      '--config.model.patch_size=2', '--config.model.n_queries=16', '--config.model.embed_dim=16',
      '--config.model.num_heads=2', '--config.model.num_layers=1', '--config.model.ffn_dim=32',
      '--config.model.pos_table_size=2000', '--config.train.batch_size=2',
      '--config.eval.batch_size=2', '--config.train.num_steps=2',
      '--config.train.checkpoint_every_steps=2', '--config.eval.num_images_to_show=0']
  monkeypatch.setattr(sys, 'argv', argv)
  results = []
  dispatch = main._dispatch
  monkeypatch.setattr(main, '_dispatch', lambda mode: lambda *args, **kwargs: results.append(
      dispatch(mode)(*args, **kwargs)))
  main.main(flags.FLAGS(argv))
  config = flags.FLAGS.config
  assert (config.model.max_depth_m, config.eval.crop) == (80.0, 'garg')
  # The evaluation after the last step: the two test frames with ground truth (the 'None'
  # line and the missing PNG are skipped).
  assert results[0]['num_images'] == 2
  assert all(np.isfinite(results[0][k]) for k in metrics.METRIC_NAMES)
  assert (tmp_path / 'run' / 'checkpoints' / '2').is_dir()
