"""nyu_depth_v2_bts on a tiny BTS/AdaBins folder written by conftest.bts_folder."""

import io
import re

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import ml_collections

from adabins_jax import network_input
from adabins_jax import input_pipeline
from adabins_jax.datasets import depth_builder
from adabins_jax.datasets import nyu_depth_v2_bts

TRAIN_LIST = 'nyudepthv2_train_files_with_gt.txt'


def _build(data_dir, manual_dir):
  builder = tfds.builder('nyu_depth_v2_bts', data_dir=data_dir)
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  return builder


def test_builds_both_splits_from_the_lists(bts_folder, tmp_path):
  root, depths = bts_folder
  builder = _build(tmp_path / 'tfds', root)
  assert builder.info.splits['train'].num_examples == 3
  assert builder.info.splits['test'].num_examples == 2
  decoders = {'image': tfds.decode.SkipDecoding()}
  for split, folder in [('train', root / 'sync'), ('test', root / 'official_splits' / 'test')]:
    for ex in tfds.as_numpy(builder.as_dataset(split, decoders=decoders)):
      name = ex['name'].decode()
      # The JPEG is stored byte for byte, so decoding it gives what PIL gives on the file.
      assert ex['image'] == (folder / name).read_bytes()
      assert np.asarray(Image.open(io.BytesIO(ex['image']))).shape == (480, 640, 3)
      expected = (depths[name] / 1000.0).astype(np.float16)
      np.testing.assert_array_equal(ex['depth'], expected)
      assert ex['depth'][0, 0] == 0.0  # invalid pixels stay 0
      assert ex['focal'] == np.float32(518.8579)
  # The evaluation pipeline decodes the JPEGs exactly as PIL (the release's reader) does.
  config = ml_collections.ConfigDict(dict(eval_split='test', input_scale=1.0))
  batch = next(iter(input_pipeline.create_eval_dataset(config, 2, builder=builder)))
  mean, std = network_input.MEAN, network_input.STD
  pixels = np.round((batch['image'] * std + mean) * 255)
  expected = [np.asarray(Image.open(root / 'official_splits' / 'test' / rgb))
              for rgb in ('kitchen/rgb_00000.jpg', 'bathroom/rgb_00001.jpg')]
  names = [_closest(p, expected) for p in pixels]
  assert sorted(names) == [0, 1]
  for p, n in zip(pixels, names):
    np.testing.assert_array_equal(p, expected[n])


def _closest(image, candidates):
  return int(np.argmin([np.abs(image - c).mean() for c in candidates]))


def test_parses_lists_with_and_without_leading_slash(tmp_path):
  path = tmp_path / 'list.txt'
  path.write_text('/a/rgb_00001.jpg /a/sync_depth_00001.png 518.8579\n\n'
                  'b/rgb_00002.jpg b/sync_depth_00002.png 500\n')
  assert depth_builder.read_file_list(path) == [
      ('a/rgb_00001.jpg', 'a/sync_depth_00001.png', 518.8579),
      ('b/rgb_00002.jpg', 'b/sync_depth_00002.png', 500.0)]


def test_optional_focal_comments_and_line_numbers(tmp_path):
  path = tmp_path / 'list.txt'
  path.write_text('# rgb depth [focal]\n/a/rgb_1.jpg a/d_1.png\n\n  # indented comment\n'
                  'b/rgb_2.jpg /b/d_2.png 500\n')
  assert depth_builder.read_file_list(path, default_focal=7.5) == [
      ('a/rgb_1.jpg', 'a/d_1.png', 7.5), ('b/rgb_2.jpg', 'b/d_2.png', 500.0)]
  assert depth_builder.read_file_list(
      path, default_focal=7.5, keep_absolute=True, line_numbers=True) == [
          (2, '/a/rgb_1.jpg', 'a/d_1.png', 7.5), (5, 'b/rgb_2.jpg', '/b/d_2.png', 500.0)]
  strict = re.escape(f'{path}:2: expected "rgb_path depth_path focal", got 2 fields')
  with pytest.raises(ValueError, match=strict):
    depth_builder.read_file_list(path)
  path.write_text('# only a comment\n')
  with pytest.raises(ValueError, match=re.escape(f'{path}: the file list names no frame')):
    depth_builder.read_file_list(path, default_focal=7.5)


@pytest.mark.parametrize('line', ['a/rgb.jpg a/depth.png', 'a/rgb.jpg a/depth.png focal'])
def test_malformed_list_line_names_file_and_line(tmp_path, line):
  path = tmp_path / 'list.txt'
  path.write_text('a/rgb_1.jpg a/d_1.png 518.8579\n' + line + '\n')
  with pytest.raises(ValueError, match=re.escape(f'{path}:2: expected')):
    depth_builder.read_file_list(path)


def test_missing_list_and_missing_frame_are_named(bts_folder, tmp_path):
  root, _ = bts_folder
  (root / TRAIN_LIST).rename(root / 'elsewhere.txt')
  with pytest.raises(FileNotFoundError, match=re.escape(str(root / TRAIN_LIST))):
    _build(tmp_path / 'tfds_a', root)
  (root / 'elsewhere.txt').rename(root / TRAIN_LIST)
  missing = root / 'sync' / 'bedroom_0004' / 'rgb_00002.jpg'
  missing.unlink()
  with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
    _build(tmp_path / 'tfds_b', root)


def test_bad_files_are_named(tmp_path, write_bts_pair):
  write_bts_pair(tmp_path, 'small/rgb_1.jpg', 'small/sync_depth_1.png', 0, size=(240, 320))
  with pytest.raises(ValueError, match=re.escape(str(tmp_path / 'small/rgb_1.jpg')) + '.*480x640'):
    nyu_depth_v2_bts.read_jpeg(tmp_path / 'small/rgb_1.jpg')
  with pytest.raises(ValueError, match=re.escape(str(tmp_path / 'small/sync_depth_1.png'))):
    nyu_depth_v2_bts.read_depth_png(tmp_path / 'small/sync_depth_1.png')
  broken = tmp_path / 'broken.jpg'
  broken.write_bytes(b'\xff\xd8\xff garbage')
  with pytest.raises(ValueError, match=re.escape(str(broken)) + '.*cannot be decoded'):
    nyu_depth_v2_bts.read_jpeg(broken)
  eight_bit = tmp_path / 'eight_bit.png'
  Image.fromarray(np.zeros((480, 640), np.uint8)).save(eight_bit)
  with pytest.raises(ValueError, match=re.escape(str(eight_bit)) + '.*16-bit'):
    nyu_depth_v2_bts.read_depth_png(eight_bit)
