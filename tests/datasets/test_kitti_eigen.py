"""kitti_eigen on a tiny KITTI folder written by tests/helpers/kitti_layout.py."""

import logging
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from adabins_jax import input_pipeline
from adabins_jax.configs import kitti_effnet_b5_256
from adabins_jax.datasets import kitti_eigen
from helpers import kitti_layout


@pytest.fixture(scope='module')
def kitti_folder(tmp_path_factory):
  return kitti_layout.write_kitti_folder(tmp_path_factory.mktemp('kitti'))


@pytest.fixture(scope='module')
def built(kitti_folder, tmp_path_factory):
  builder = tfds.builder('kitti_eigen', data_dir=tmp_path_factory.mktemp('tfds'))
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=kitti_folder.root))
  return builder


def _expected(frame):
  # The release's do_kb_crop, written out here: the bottom 352 rows, the middle 1216 columns.
  height, width = frame.depth_png.shape
  top, left = height - 352, int((width - 1216) / 2)
  window = np.s_[top:top + 352, left:left + 1216]
  return frame.image[window], frame.depth_png[window] / 256.0, (top, left, height, width)


@pytest.mark.parametrize('split', ['train', 'test'])
def test_frames_are_kb_cropped_and_say_where_they_came_from(kitti_folder, built, split):
  frames = getattr(kitti_folder, split)
  examples = list(tfds.as_numpy(built.as_dataset(split=split, shuffle_files=False)))
  assert built.info.splits[split].num_examples == len(frames) == len(examples)
  by_name = {e['name'].decode(): e for e in examples}
  assert sorted(by_name) == sorted(f.rgb for f in frames)
  for frame in frames:
    example = by_name[frame.rgb]
    image, depth_m, source = _expected(frame)
    np.testing.assert_array_equal(example['image'], image)
    assert example['depth'].dtype == np.float16
    np.testing.assert_array_equal(example['depth'], depth_m.astype(np.float16))
    assert tuple(example['source_frame']) == source
    assert example['focal'] == np.float32(kitti_layout.FOCAL)
  # Sparse: most pixels carry no depth, as in the real ground truth.
  assert np.mean([(e['depth'] == 0).mean() for e in examples]) > 0.9


def test_lines_without_ground_truth_are_skipped_and_counted(kitti_folder, tmp_path, caplog):
  builder = kitti_eigen.KittiEigen(data_dir=tmp_path)
  # On the absl logger itself: another test in this process may have lowered its verbosity.
  with caplog.at_level(logging.INFO, logger='absl'):
    examples = list(builder._generate_examples(kitti_folder.root, kitti_layout.TEST_LIST))
  assert [e['name'] for _, e in examples] == [f.rgb for f in kitti_folder.test]
  assert 'skipped 2 of 4 lines whose ground truth is None or missing' in caplog.text


def test_eval_batches_carry_the_source_frame_and_training_crops_are_the_releases(built):
  data = kitti_effnet_b5_256.get_config().data
  evaluation = list(input_pipeline.create_eval_dataset(data, 4, builder=built))
  assert len(evaluation) == 1 and evaluation[0]['depth'].shape == (4, 352, 1216, 1)
  np.testing.assert_array_equal(evaluation[0]['example_mask'], [True, True, False, False])
  sources = {tuple(s) for s in evaluation[0]['source_frame'][:2]}
  assert sources == {(23, 13, 375, 1242), (18, 4, 370, 1224)}
  assert not evaluation[0]['source_frame'][2:].any()  # Padding: an empty crop.
  batch = next(input_pipeline.create_train_dataset(data, 2, seed=0, builder=built))
  assert batch['image'].shape == (2, 352, 704, 3) and batch['depth'].shape == (2, 352, 704, 1)
  assert 'source_frame' not in batch


def _save(path, array):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path)


def test_bad_frames_are_named(tmp_path):
  image, depth = kitti_layout.frame(0, 375, 1242)
  _save(tmp_path / 'a.png', image)
  _save(tmp_path / 'short.png', depth[:300])
  with pytest.raises(ValueError, match=re.escape(f'{tmp_path / "short.png"}: depth of 300x1242')):
    kitti_eigen.read_frame(tmp_path / 'a.png', tmp_path / 'short.png')
  small_image, small_depth = kitti_layout.frame(0, 350, 1242)
  _save(tmp_path / 'small.png', small_image)
  _save(tmp_path / 'small_depth.png', small_depth)
  with pytest.raises(ValueError, match=re.escape(f'{tmp_path / "small.png"}: A 350x1242 frame')):
    kitti_eigen.read_frame(tmp_path / 'small.png', tmp_path / 'small_depth.png')
  _save(tmp_path / 'eight_bit.png', (depth > 0).astype(np.uint8))
  with pytest.raises(ValueError, match=re.escape(f'{tmp_path / "eight_bit.png"}: expected a '
                                                 '16-bit PNG')):
    kitti_eigen.read_frame(tmp_path / 'a.png', tmp_path / 'eight_bit.png')
  with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'gone.png'))):
    kitti_eigen.read_frame(tmp_path / 'gone.png', tmp_path / 'short.png')


def test_missing_folders_are_named(tmp_path):
  (tmp_path / 'raw').mkdir()
  builder = tfds.builder('kitti_eigen', data_dir=tmp_path / 'tfds')
  with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'data_depth_annotated'))):
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path))
