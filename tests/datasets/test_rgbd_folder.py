"""rgbd_folder: a user's own RGB-D frames (tiny generated folders in both layouts)."""

import dataclasses
import subprocess
import sys
import pathlib

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

from adabins_jax.configs import validation as config_validation
from adabins_jax import input_pipeline
from adabins_jax.configs import smoke
from adabins_jax.datasets import rgbd_folder

# An odd frame size: nothing may assume NYU's 480x640.
HW = (36, 52)


def _image(seed, hw=HW):
  return np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8)


def _depth_mm(seed, hw=HW):
  depth = np.random.default_rng(100 + seed).integers(300, 15000, hw, dtype=np.uint16)
  depth[:2, :3] = 0
  depth[-1, -4:] = 65535  # A sensor's "no depth" marker.
  return depth


def _write_png(path, array):
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(array).save(path)


def write_list_layout(root: pathlib.Path, n_train=8, n_test=4):
  """lists/<split>.txt naming frames/<split>/ mm PNGs relative to lists/ (some absolute), with
  a focal on every other line; returns {split: [(image, depth mm, focal or None)]}."""
  frames = {}
  (root / 'lists').mkdir()
  for split, n in (('train', n_train), ('test', n_test)):
    lines, frames[split] = ['# rgb depth [focal]'], []
    for i in range(n):
      seed = i + (100 if split == 'test' else 0)
      image, depth = _image(seed), _depth_mm(seed)
      _write_png(root / 'frames' / split / f'c{i}.png', image)
      _write_png(root / 'frames' / split / f'd{i}.png', depth)
      focal = 500.0 + i if i % 2 else None
      rgb = f'../frames/{split}/c{i}.png' if i % 3 else str(root / 'frames' / split / f'c{i}.png')
      lines.append(f'{rgb} ../frames/{split}/d{i}.png' + (f' {focal}' if focal else ''))
      frames[split].append((image, depth, focal))
    (root / 'lists' / f'{split}.txt').write_text('\n'.join(lines) + '\n')
  return frames


def write_folder_layout(root: pathlib.Path, suffix='.npy', n_train=8, n_test=4):
  """train|test/rgb/<stem>.png with depth/<stem><suffix> in metres; returns
  {split: [(image, depth m)]} in stem order."""
  frames = {}
  for split, n in (('train', n_train), ('test', n_test)):
    frames[split] = []
    for i in range(n):
      seed = i + (100 if split == 'test' else 0)
      image = _image(seed)
      depth = (_depth_mm(seed) / 1000.0).astype(np.float32)
      depth[0, -1] = np.nan  # No depth, as float formats mark it.
      _write_png(root / split / 'rgb' / f'f{i:02d}.png', image)
      write_float_depth(root / split / 'depth' / f'f{i:02d}{suffix}', depth)
      frames[split].append((image, depth))
  return frames


def write_float_depth(path, depth):
  path.parent.mkdir(parents=True, exist_ok=True)
  if path.suffix == '.npy':
    np.save(path, depth)
  else:
    Image.fromarray(depth, mode='F').save(path)


def data_config(tmp_path, folder, **rgbd):
  data = smoke.get_config().data
  data.dataset = 'rgbd_folder'
  data.tfds_data_dir = str(tmp_path / 'tfds')
  data.frame_size = HW
  data.crop_size = (32, 48)
  data.rgbd.folder = str(folder)
  data.rgbd.update(rgbd)
  return data


def _examples(builder, split):
  return list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))


def test_list_layout_reads_millimetres_invalid_values_and_focal(tmp_path):
  frames = write_list_layout(tmp_path)
  data = data_config(tmp_path, tmp_path, train_list='lists/train.txt',
                     test_list=str(tmp_path / 'lists' / 'test.txt'), invalid_depth=65535.0,
                     focal_px=518.5)
  builder = input_pipeline.get_builder(data)
  assert {s: builder.info.splits[s].num_examples for s in ('train', 'test')} == {
      'train': 8, 'test': 4}
  for split in ('train', 'test'):
    examples = sorted(_examples(builder, split), key=lambda e: int(e['name'][-5:-4]))
    for example, (image, depth_mm, focal) in zip(examples, frames[split]):
      np.testing.assert_array_equal(example['image'], image)
      expected = np.where(depth_mm == 65535, 0, depth_mm / 1000.0).astype(np.float16)
      np.testing.assert_array_equal(example['depth'], expected)
      assert example['focal'] == np.float32(focal if focal else 518.5)
  assert (examples[0]['depth'][-1, -4:] == 0).all() and (examples[0]['depth'] > 10).any()


def test_folder_layout_reads_npy_metres_and_feeds_the_pipeline(tmp_path):
  frames = write_folder_layout(tmp_path / 'mine', '.npy')
  data = data_config(tmp_path, tmp_path / 'mine', focal_px=0.0)
  builder = input_pipeline.get_builder(data)
  examples = _examples(builder, 'test')
  examples.sort(key=lambda e: e['name'])
  assert [e['name'].decode() for e in examples] == [f'test/f{i:02d}.png' for i in range(4)]
  for example, (image, depth) in zip(examples, frames['test']):
    np.testing.assert_array_equal(example['image'], image)
    np.testing.assert_array_equal(example['depth'],
                                  np.nan_to_num(depth, nan=0.0).astype(np.float16))
    assert example['focal'] == 0.0
  train = next(input_pipeline.create_train_dataset(data, 2, seed=0))
  assert train['image'].shape == (2, 32, 48, 3) and train['depth'].shape == (2, 32, 48, 1)
  evaluation = list(input_pipeline.create_eval_dataset(data, 4))
  assert evaluation[0]['depth'].shape == (4, *HW, 1)


@pytest.mark.parametrize('suffix', ['.tif', '.tiff'])
def test_float_tiff_is_metres(tmp_path, suffix):
  depth = np.linspace(0.5, 30.0, HW[0] * HW[1], dtype=np.float32).reshape(HW)
  depth[3, 4] = np.inf
  path = tmp_path / f'd{suffix}'
  write_float_depth(path, depth)
  config = rgbd_folder.RgbdFolderConfig(name='t', frame_hw=HW, depth_scale=256.0)
  read = rgbd_folder.read_depth(path, config)
  assert read[3, 4] == 0.0
  depth[3, 4] = 0.0
  np.testing.assert_array_equal(read, depth.astype(np.float16))


def test_kitti_style_png_scale_and_no_invalid_value(tmp_path):
  depth = _depth_mm(0)
  _write_png(tmp_path / 'd.png', depth)
  config = rgbd_folder.RgbdFolderConfig(name='t', frame_hw=HW, depth_scale=256.0,
                                        invalid_depth=None)
  read = rgbd_folder.read_depth(tmp_path / 'd.png', config)
  np.testing.assert_array_equal(read, (depth / 256.0).astype(np.float16))
  assert read[-1, -1] == np.float16(65535 / 256)  # Kept: evaluation's range masks it.


def test_exr_is_read_with_openexr(tmp_path):
  openexr = pytest.importorskip('OpenEXR', reason='OpenEXR is not installed')
  if not hasattr(openexr, 'File'):
    pytest.skip('OpenEXR older than 3.3, whose File reader rgbd_folder uses')
  depth = np.linspace(0.5, 9.0, HW[0] * HW[1], dtype=np.float32).reshape(HW)
  header = {'compression': openexr.ZIP_COMPRESSION, 'type': openexr.scanlineimage}
  with openexr.File(header, {'Z': depth}) as exr:
    exr.write(str(tmp_path / 'd.exr'))
  config = rgbd_folder.RgbdFolderConfig(name='t', frame_hw=HW)
  np.testing.assert_array_equal(rgbd_folder.read_depth(tmp_path / 'd.exr', config),
                                depth.astype(np.float16))


def test_exr_without_openexr_says_what_to_install(tmp_path, monkeypatch):
  monkeypatch.setitem(__import__('sys').modules, 'OpenEXR', None)  # As if not installed.
  (tmp_path / 'd.exr').write_bytes(b'\x76\x2f\x31\x01')
  config = rgbd_folder.RgbdFolderConfig(name='t', frame_hw=HW)
  with pytest.raises(ValueError, match=r'd\.exr: .*pip install OpenEXR'):
    rgbd_folder.read_depth(tmp_path / 'd.exr', config)


def test_cache_key_follows_every_setting_and_the_frames(tmp_path):
  write_folder_layout(tmp_path / 'a', n_train=2, n_test=1)
  write_folder_layout(tmp_path / 'b', n_train=2, n_test=1)
  data = data_config(tmp_path, tmp_path / 'a')
  name = rgbd_folder.builder_config(data).name
  assert name.startswith('a_') and rgbd_folder.builder_config(data).name == name
  assert rgbd_folder.builder_config(data_config(tmp_path, tmp_path / 'b')).name != name
  for key, value in [('depth_scale', 256.0), ('invalid_depth', 65535.0), ('focal_px', 500.0)]:
    changed = data_config(tmp_path, tmp_path / 'a', **{key: value})
    assert rgbd_folder.builder_config(changed).name != name, key
  resized = data_config(tmp_path, tmp_path / 'a')
  resized.frame_size = (40, 52)
  assert rgbd_folder.builder_config(resized).name != name
  write_float_depth(tmp_path / 'a' / 'train' / 'depth' / 'extra.npy', np.ones(HW, np.float32))
  _write_png(tmp_path / 'a' / 'train' / 'rgb' / 'extra.png', _image(9))
  assert rgbd_folder.builder_config(data).name != name


def test_changed_depth_scale_prepares_a_new_copy(tmp_path):
  write_list_layout(tmp_path, n_train=2, n_test=1)
  lists = {'train_list': 'lists/train.txt', 'test_list': 'lists/test.txt'}
  mm = input_pipeline.get_builder(data_config(tmp_path, tmp_path, **lists))
  cm = input_pipeline.get_builder(data_config(tmp_path, tmp_path, depth_scale=100.0, **lists))
  assert mm.data_dir != cm.data_dir
  depth_mm, depth_cm = (_examples(b, 'test')[0]['depth'].astype(np.float32) for b in (mm, cm))
  np.testing.assert_allclose(depth_cm, depth_mm * 10, rtol=2e-3)


def _config(folder, **fields):
  return dataclasses.replace(rgbd_folder.RgbdFolderConfig(name='t', folder=str(folder),
                                                          frame_hw=HW), **fields)


def _lines(tmp_path, *lines):
  write_list_layout(tmp_path, n_train=1, n_test=1)
  (tmp_path / 'bad.txt').write_text('\n'.join(lines) + '\n')
  return tmp_path / 'bad.txt'  # Beside frames/, so its paths start there.


@pytest.mark.parametrize('line, match', [
    ('frames/train/c0.png', r'bad\.txt:2: expected "rgb_path depth_path \[focal\]", got 1'),
    ('frames/train/c0.png frames/train/d0.png 5 6', r'bad\.txt:2: .* got 4 fields'),
    ('frames/train/c0.png frames/train/d0.png f=5', r'bad\.txt:2: .* got 3 fields'),
])
def test_a_malformed_list_line_names_file_and_line(tmp_path, line, match):
  path = _lines(tmp_path, 'frames/train/c0.png frames/train/d0.png', line)
  with pytest.raises(ValueError, match=match):
    rgbd_folder.read_file_list(path, 0.0)


def test_a_missing_listed_file_names_it_and_the_line(tmp_path):
  path = _lines(tmp_path, '', 'frames/train/c0.png frames/train/nothing.png')
  with pytest.raises(FileNotFoundError, match=r'nothing\.png: listed in .*bad\.txt:2 but missing'):
    rgbd_folder.read_file_list(path, 0.0)
  with pytest.raises(FileNotFoundError, match=r'absent\.txt: list missing'):
    rgbd_folder.read_file_list(tmp_path / 'absent.txt', 0.0)


def test_an_unreadable_image_or_depth_is_named(tmp_path):
  (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
  with pytest.raises(ValueError, match=r'broken\.png: cannot be decoded'):
    rgbd_folder.read_image(tmp_path / 'broken.png', HW)
  with pytest.raises(ValueError, match=r'broken\.png: cannot be decoded'):
    rgbd_folder.read_depth(tmp_path / 'broken.png', _config(tmp_path))
  (tmp_path / 'broken.npy').write_bytes(b'nonsense')
  with pytest.raises(ValueError, match=r'broken\.npy: cannot be read as a \.npy'):
    rgbd_folder.read_depth(tmp_path / 'broken.npy', _config(tmp_path))


def test_a_frame_of_another_size_names_file_and_both_sizes(tmp_path):
  _write_png(tmp_path / 'big.png', _image(0, (40, 52)))
  with pytest.raises(ValueError, match=r'big\.png: 40x52 pixels, but data.frame_size is 36x52'):
    rgbd_folder.read_image(tmp_path / 'big.png', HW)
  np.save(tmp_path / 'small.npy', np.ones((36, 50), np.float32))
  with pytest.raises(ValueError, match=r'small\.npy: 36x50 pixels, but .* is 36x52'):
    rgbd_folder.read_depth(tmp_path / 'small.npy', _config(tmp_path))


def test_depth_of_the_wrong_kind_is_named(tmp_path):
  np.save(tmp_path / 'rgb.npy', np.ones((*HW, 3), np.float32))
  with pytest.raises(ValueError, match=r'rgb\.npy: expected one depth value per pixel.*36, 52, 3'):
    rgbd_folder.read_depth(tmp_path / 'rgb.npy', _config(tmp_path))
  _write_png(tmp_path / 'eight.png', np.zeros(HW, np.uint8))
  with pytest.raises(ValueError, match=r'eight\.png: expected 16-bit integer or float depth, '
                     r'got an 8-bit image \(mode L\)'):
    rgbd_folder.read_depth(tmp_path / 'eight.png', _config(tmp_path))
  np.save(tmp_path / 'negative.npy', -np.ones(HW, np.float32))
  with pytest.raises(ValueError, match=r'negative\.npy: .* negative'):
    rgbd_folder.read_depth(tmp_path / 'negative.npy', _config(tmp_path))


def test_folder_layout_errors_name_the_file(tmp_path):
  write_folder_layout(tmp_path, n_train=2, n_test=1)
  config = _config(tmp_path)
  (tmp_path / 'test' / 'depth' / 'f00.npy').rename(tmp_path / 'test' / 'depth' / 'g00.npy')
  with pytest.raises(FileNotFoundError, match=r'rgb/f00\.png: no file named f00\.\* in .*depth'):
    rgbd_folder.split_frames(config, 'test')
  (tmp_path / 'train' / 'rgb' / 'notes.txt').write_text('x')
  with pytest.raises(ValueError, match=r'notes\.txt: not one of the accepted kinds'):
    rgbd_folder.split_frames(config, 'train')
  with pytest.raises(FileNotFoundError, match=r'nowhere/train/rgb: folder missing'):
    rgbd_folder.split_frames(_config(tmp_path / 'nowhere'), 'train')


def test_the_dataset_is_not_built_by_name_alone(tmp_path):
  with pytest.raises(ValueError, match=r'rgbd_folder is built from config\.data\.rgbd'):
    tfds.builder('rgbd_folder', data_dir=str(tmp_path))


def test_config_is_checked_naming_key_and_value():
  config = smoke.get_config()
  config.data.dataset = 'rgbd_folder'
  config.data.rgbd.train_list = 'train.txt'
  config.data.crop_white_border = True
  config.eval.crop = 'eigen'
  config.data.frame_size = HW
  found = '\n'.join(config_validation.problems(config))
  for expected in ("data.rgbd.folder=None: data.dataset='rgbd_folder' needs",
                   "data.rgbd.train_list='train.txt', data.rgbd.test_list=None: set both",
                   'data.crop_white_border=True: ', "eval.crop='eigen': ",
                   'data.crop_size=(64, 80): must fit in data.frame_size=(36, 52)'):
    assert expected in found, (expected, found)
  config.data.rgbd.depth_scale = 0.0
  assert config_validation.problems(config) == [
      'data.rgbd.depth_scale=0.0: must be in (0.0, inf]']
  # The defaults leave the other datasets' configs valid.
  assert config_validation.problems(smoke.get_config()) == []


@pytest.mark.slow  # Subprocess end-to-end: the build command writes a dataset in a child process.
def test_the_build_command_prepares_what_a_config_trains_on(tmp_path, monkeypatch):
  """`datasets.build --config=...` (before a multi-host run) leaves nothing for training to do."""
  write_folder_layout(tmp_path / 'frames')
  (tmp_path / 'my_rgbd.py').write_text(
      'from adabins_jax.configs import smoke\n\n\n'
      'def get_config():\n'
      '  config = smoke.get_config()\n'
      "  config.data.dataset = 'rgbd_folder'\n"
      f"  config.data.tfds_data_dir = {str(tmp_path / 'tfds')!r}\n"
      f'  config.data.frame_size = {HW}\n'
      '  config.data.crop_size = (32, 48)\n'
      f"  config.data.rgbd.folder = {str(tmp_path / 'frames')!r}\n"
      '  return config\n')
  subprocess.run([sys.executable, '-m', 'adabins_jax.datasets.build',
                  f'--config={tmp_path / "my_rgbd.py"}'], check=True, cwd=tmp_path)

  def rebuilt(*args, **kwargs):
    raise AssertionError('training prepared the frames again')

  monkeypatch.setattr(rgbd_folder.RgbdFolder, '_generate_examples', rebuilt)
  builder = input_pipeline.get_builder(data_config(tmp_path, tmp_path / 'frames'))
  assert len(_examples(builder, 'train')) == 8 and len(_examples(builder, 'test')) == 4


def test_the_build_command_takes_a_config_or_names_not_both(tmp_path):
  result = subprocess.run([sys.executable, '-m', 'adabins_jax.datasets.build', 'synthetic_rooms',
                           '--config=adabins_jax/configs/smoke.py'],
                          capture_output=True, text=True, cwd=pathlib.Path(__file__).parents[2])
  assert result.returncode != 0
  assert 'give no dataset names' in result.stderr
