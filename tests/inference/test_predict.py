"""Tests for --mode=predict (predict.py, predict_io.py) on the smoke model with random weights."""

import os
import pathlib
import sys

from absl import flags
from absl.testing import flagsaver
from flax import nnx
import numpy as np
import optax
from PIL import Image
import pytest

from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax import network_input
from adabins_jax import input_pipeline
from adabins_jax import main
from adabins_jax import metrics as metrics_lib
from adabins_jax.datasets import nyu
from adabins_jax.inference import predict
from adabins_jax.inference import flags as predict_flags
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import input_files
from adabins_jax.inference import output_files
from adabins_jax.inference import photos
from adabins_jax import steps
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax import visualize
from adabins_jax.configs import demo
from adabins_jax.datasets import synthetic_rooms
from adabins_jax import models

_REPO = pathlib.Path(__file__).resolve().parents[2]

_SIZE = (64, 80)  # One network input size for every test image: one compile.


@nnx.jit
def _two_passes(model, x):
  return model(x)[1], model(x[:, :, ::-1])[1]


def _expected_depth(model, rgb):
  """Independent path: two plain forward passes, then the evaluation post-processing."""
  x = network_input.normalize(network_input.resize_image(rgb, _SIZE))[None]
  depth, mirrored = _two_passes(model, x)
  final = metrics_lib.postprocess_prediction(depth, mirrored[:, :, ::-1], rgb.shape[:2],
                                             1e-3, 10.0)
  return np.asarray(final)[0, ..., 0]


def _write_images(folder):
  """Test images of several sizes and modes; returns {stem: (H, W)}."""
  rng = np.random.default_rng(0)
  folder.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rng.integers(0, 256, (40, 52, 3), np.uint8)).save(folder / 'rgb.png')
  Image.fromarray(rng.integers(0, 256, (40, 52, 4), np.uint8)).save(folder / 'rgba.png')
  Image.fromarray(rng.integers(0, 256, (33, 47), np.uint8)).save(folder / 'grey.png')
  Image.fromarray(rng.integers(0, 65536, (33, 47), np.uint16)).save(folder / 'grey16.png')
  (folder / 'notes.txt').write_text('not an image')
  return {'rgb': (40, 52), 'rgba': (40, 52), 'grey': (33, 47), 'grey16': (33, 47)}


def test_every_output_is_written_with_the_right_shape_and_values(tmp_path, model, config):
  shapes = _write_images(tmp_path / 'in')
  options = predict.PredictOptions(str(tmp_path / 'in'), str(tmp_path / 'out'), batch_size=3,
                                   size=_SIZE, strip=True, ply=True)
  summary = predict.predict_images(model, config, options)
  assert summary.failed == [] and len(summary.written) == 4  # notes.txt is not an input
  out = tmp_path / 'out'
  for stem, hw in shapes.items():
    depth = np.load(out / f'{stem}_depth.npy')
    assert depth.shape == hw and depth.dtype == np.float32
    rgb = photos.read_image(tmp_path / 'in' / f'{stem}.png')
    np.testing.assert_allclose(depth, _expected_depth(model, rgb), rtol=1e-5, atol=1e-5)
    png = np.asarray(Image.open(out / f'{stem}_depth.png'))
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, np.round(depth.astype(np.float64) * 1000))
    colour = np.asarray(Image.open(out / f'{stem}_color.png'))
    np.testing.assert_array_equal(colour, visualize.colorize_depth(depth, 1e-3, 10.0))
    strip = np.asarray(Image.open(out / f'{stem}_strip.png'))
    # Input | colour between the titles and the colour bar (tests/test_visualize.py).
    np.testing.assert_array_equal(strip, visualize.prediction_strip(
        network_input.to_uint8(rgb), colour, 1e-3, 10.0))
    header = (out / f'{stem}.ply').read_bytes().split(b'end_header\n')[0].decode()
    assert f'element vertex {hw[0] * hw[1]}' in header
  rgb_in = np.asarray(Image.open(tmp_path / 'in' / 'rgb.png'))
  strip = np.asarray(Image.open(out / 'rgb_strip.png'))
  assert any(np.array_equal(strip[top:top + 40, :52], rgb_in) for top in range(len(strip) - 39))


def test_read_image_modes(tmp_path):
  rgba = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4) * 5
  Image.fromarray(rgba).save(tmp_path / 'a.png')
  np.testing.assert_allclose(photos.read_image(tmp_path / 'a.png'), rgba[..., :3] / 255.0)
  grey16 = np.array([[0, 32768, 65535]], np.uint16)
  Image.fromarray(grey16).save(tmp_path / 'g16.png')
  got = photos.read_image(tmp_path / 'g16.png')
  assert got.shape == (1, 3, 3)
  np.testing.assert_allclose(got[..., 1], grey16 / 65535.0, rtol=1e-6)
  palette = Image.new('P', (2, 1))
  palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
  palette.putdata([0, 1])
  palette.save(tmp_path / 'p.png')
  np.testing.assert_allclose(photos.read_image(tmp_path / 'p.png') * 255,
                             [[[10, 20, 30], [200, 100, 50]]], atol=1e-4)
  # A phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise).
  exif = Image.Exif()
  exif[0x0112] = 6
  Image.new('RGB', (40, 20), (255, 0, 0)).save(tmp_path / 'r.jpg', exif=exif)
  assert photos.read_image(tmp_path / 'r.jpg').shape == (40, 20, 3)
  (tmp_path / 'bad.jpg').write_bytes(b'\xff\xd8\xff garbage')
  with pytest.raises(ValueError, match='bad.jpg: not a readable image'):
    photos.read_image(tmp_path / 'bad.jpg')


def test_find_images_expands_folders_globs_and_lists(tmp_path):
  for sub in ('a', 'b'):
    (tmp_path / sub).mkdir()
    for name in ('x.png', 'y.jpg', 'readme.txt', '.hidden.png'):
      (tmp_path / sub / name).write_bytes(b'')
  paths, problems = input_files.find_images(
      f'{tmp_path / "a"}, {tmp_path}/*/x.png,{tmp_path / "missing.png"},{tmp_path}/*.gif')
  assert [p.relative_to(tmp_path).as_posix() for p in paths] == ['a/x.png', 'a/y.jpg', 'b/x.png']
  assert problems == [(str(tmp_path / 'missing.png'), 'no such file'),
                      (f'{tmp_path}/*.gif', 'the pattern matches no file')]
  # Two files called x: their outputs must not overwrite each other.
  assert input_files.output_names(paths) == ['a_x', 'y', 'b_x']


def _write_pt(model, path):
  torch = pytest.importorskip('torch')
  state = torch_mapping.model_to_state_dict(model)
  torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)


@flagsaver.flagsaver
def test_main_with_pt_weights_skips_a_corrupt_file_and_exits_non_zero(
    tmp_path, monkeypatch, model, config):
  _write_pt(model, tmp_path / 'w.pt')
  (tmp_path / 'in').mkdir()
  rgb = np.random.default_rng(2).integers(0, 256, (40, 52, 3), np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'in' / 'good.png')
  (tmp_path / 'in' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n truncated')
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', '--mode=predict',
          f'--weights={tmp_path / "w.pt"}', f'--input={tmp_path / "in"}',
          f'--output={tmp_path / "out"}', f'--size={_SIZE[0]}x{_SIZE[1]}', '--batch_size=3']
  monkeypatch.setattr(sys, 'argv', argv)
  with pytest.raises(SystemExit) as exit_info:
    main.main(flags.FLAGS(argv))
  message = str(exit_info.value.code)  # A string code exits with status 1.
  assert 'Depth for 1 of 2 images' in message and 'broken.png' in message
  depth = np.load(tmp_path / 'out' / 'good_depth.npy')
  expected = _expected_depth(model, photos.read_image(tmp_path / 'in' / 'good.png'))
  np.testing.assert_allclose(depth, expected, atol=1e-5)
  assert not (tmp_path / 'out' / 'broken_depth.npy').exists()


def test_predict_from_an_orbax_workdir(tmp_path, model, config):
  manager = checkpointing.create_manager(tmp_path / 'run')
  checkpointing.save(manager, 7, model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param),
                     force=True)
  checkpointing.finish(manager)
  manager.close()
  rgb = np.random.default_rng(3).random((40, 52, 3)).astype(np.float32)
  np.save(tmp_path / 'x.npy', rgb)  # Not an image: reported, not fatal.
  Image.fromarray(network_input.to_uint8(rgb)).save(tmp_path / 'x.png')
  options = predict.PredictOptions([str(tmp_path / 'x.png')], str(tmp_path / 'out'),
                                   size=_SIZE, flip_average=False, per_image_range=True)
  summary = predict.predict(config, str(tmp_path / 'run'), options)
  assert list(summary.written) == [str(tmp_path / 'x.png')]
  depth = np.load(tmp_path / 'out' / 'x_depth.npy')
  rgb = photos.read_image(tmp_path / 'x.png')
  x = network_input.normalize(network_input.resize_image(rgb, _SIZE))
  no_flip = _two_passes(model, x[None])[0]
  expected = metrics_lib.postprocess_prediction(no_flip, None, (40, 52), 1e-3, 10.0)
  np.testing.assert_allclose(depth, np.asarray(expected)[0, ..., 0], atol=1e-5)
  colour = np.asarray(Image.open(tmp_path / 'out' / 'x_color.png'))
  table = visualize.colormap('turbo')
  np.testing.assert_array_equal(colour[np.unravel_index(depth.argmin(), depth.shape)], table[0])
  np.testing.assert_array_equal(colour[np.unravel_index(depth.argmax(), depth.shape)],
                                table[255])


def _demo_test_frames(data_dir):
  """The first test frames of synthetic_rooms/demo, built alone: example i of a split is
  rendered from the seed (split, i) at the frame size, whatever the split's length."""
  h, w = demo.get_config().data.frame_size
  builder = synthetic_rooms.SyntheticRooms(
      config=synthetic_rooms.SyntheticRoomsConfig(name='demo_first_frames', height=h, width=w,
                                                  num_train=1, num_test=2),
      data_dir=str(data_dir))
  builder.download_and_prepare()
  return builder


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_a_frame_of_the_demo_data_gets_evaluations_depth(tmp_path):
  config = demo.get_config()
  config.model.conv3x3_impl = 'xla'  # Same numbers, compiles several times faster on a CPU.
  builder = _demo_test_frames(tmp_path / 'tfds')
  batch = next(iter(input_pipeline.create_eval_dataset(
      config.data, 2, builder=builder, process_index=0, process_count=1)))
  model = models.random_model(config.model, seed=1)
  model.eval()
  # The demo network sees the 120x160 frames at 48x64 (data.input_scale 0.4).
  assert batch['image'].shape == (2, 48, 64, 3)
  _, evaluated = steps.make_eval_step(config, nnx.graphdef(model))(nnx.state(model), batch)
  assert config.eval.flip_average
  (tmp_path / 'in').mkdir()
  for i, example in enumerate(builder.as_dataset('test').as_numpy_iterator()):
    Image.fromarray(example['image']).save(tmp_path / 'in' / f'{i}.png')
  options = predict.PredictOptions(str(tmp_path / 'in'), str(tmp_path / 'out'), batch_size=2)
  assert predict.predict_images(model, config, options).failed == []
  for i in range(2):
    # Both after the protocol's clip, flip average, resize to the frame and clip.
    np.testing.assert_allclose(np.load(tmp_path / 'out' / f'{i}_depth.npy'),
                               np.asarray(evaluated)[i, ..., 0], rtol=1e-5, atol=1e-5)


def test_write_outputs_uses_the_kitti_scale_for_outdoor_ranges(tmp_path):
  depth = np.array([[1.0, 2.5], [79.9, 0.0123]], np.float32)
  rgb = np.zeros((2, 2, 3), np.float32)
  files = output_files.write_outputs(tmp_path, 'k', rgb, depth, depth_range=(1e-3, 80.0))
  assert [os.path.basename(f) for f in files] == ['k_depth.npy', 'k_depth.png', 'k_color.png']
  np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / 'k_depth.png')),
                                [[256, 640], [20454, 3]])


def test_ply_geometry_and_intrinsics(tmp_path):
  depth = np.full((2, 3), 2.0, np.float32)
  depth[0, 0] = np.nan  # left out
  rgb = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
  n = output_files.write_ply(tmp_path / 'c.ply', depth, rgb, (100.0, 50.0, 1.0, 0.5))
  data = (tmp_path / 'c.ply').read_bytes()
  header, body = data.split(b'end_header\n')
  assert n == 5 and b'element vertex 5' in header and b'binary_little_endian' in header
  vertices = np.frombuffer(body, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                                        ('r', 'u1'), ('g', 'u1'), ('b', 'u1')])
  last = vertices[-1]  # pixel (u=2, v=1)
  np.testing.assert_allclose([last['x'], last['y'], last['z']], [0.02, 0.02, 2.0], rtol=1e-6)
  assert (last['r'], last['g'], last['b']) == (15, 16, 17)
  assert output_files.write_ply(tmp_path / 's.ply', np.ones((5, 7)), np.zeros((5, 7, 3), np.uint8),
                              (1, 1, 0, 0), stride=2) == 3 * 4
  np.testing.assert_allclose(camera_lib.intrinsics_for((240, 320)),
                             np.array(nyu.INTRINSICS) / 2)
  assert camera_lib.intrinsics_for((100, 201), (300.0, None, None, None)) == (300, 300, 100, 49.5)
  np.testing.assert_allclose(camera_lib.intrinsics_for((750, 621), camera=camera_lib.KITTI_CAMERA),
                             [721.5377 / 2, 721.5377 * 2, 609.5593 / 2, 172.854 * 2])
  # A given focal length wins over the camera.
  assert camera_lib.intrinsics_for((100, 201), (300.0, None, None, None),
                                   camera_lib.KITTI_CAMERA) == (300, 300, 100, 49.5)
  with pytest.raises(ValueError, match='need --fx'):
    predict.PredictOptions('a.png', 'out', intrinsics=(None, 400.0, None, None))
  with pytest.raises(ValueError, match='480x640'):
    predict.PredictOptions('a.png', 'out', size='480by640')


def test_the_default_camera_is_the_training_datasets(config):
  assert camera_lib.dataset_camera(configs.load('kitti_effnet_b5_256')) == camera_lib.KITTI_CAMERA
  for name in ('effnet_b5_256', 'demo'):
    assert camera_lib.dataset_camera(configs.load(name)) == camera_lib.NYU_CAMERA
  assert camera_lib.dataset_camera(config) == camera_lib.NYU_CAMERA


def test_a_kitti_models_point_cloud_uses_kittis_camera(tmp_path, model, config):
  kitti_config = config.copy_and_resolve_references()
  kitti_config.data.dataset = 'kitti_eigen'
  (tmp_path / 'in').mkdir()
  hw = (36, 124)  # A tenth of KITTI's 375x1242 frame, about.
  rgb = np.random.default_rng(0).integers(0, 256, (*hw, 3), np.uint8)
  Image.fromarray(rgb).save(tmp_path / 'in' / 'road.png')
  options = predict.PredictOptions(str(tmp_path / 'in'), str(tmp_path / 'out'), size=_SIZE,
                                   ply=True)
  assert predict.predict_images(model, kitti_config, options).failed == []
  # KITTI's colour camera (fx = fy = 721.5377, cx 609.5593, cy 172.854 at 375x1242), scaled.
  sy, sx = hw[0] / 375, hw[1] / 1242
  fx, fy, cx, cy = 721.5377 * sx, 721.5377 * sy, 609.5593 * sx, 172.854 * sy
  header, body = (tmp_path / 'out' / 'road.ply').read_bytes().split(b'end_header\n')
  assert f'fx={fx:.4f} fy={fy:.4f}'.encode() in header
  vertices = np.frombuffer(body, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                                        ('r', 'u1'), ('g', 'u1'), ('b', 'u1')])
  depth = np.load(tmp_path / 'out' / 'road_depth.npy')
  v, u = np.mgrid[0:hw[0], 0:hw[1]]
  np.testing.assert_allclose(vertices['x'], ((u - cx) * depth / fx).ravel(), rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(vertices['y'], ((v - cy) * depth / fy).ravel(), rtol=1e-4, atol=1e-5)


# One set of files per input; outputs never read as inputs; output problems and
# non-finite predictions named (docs/training.md, "What happens when things go wrong").

def _image(path, seed=0, size=(40, 50)):
  rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)
  return path


def _options(inputs, output, **kw):
  return predict.PredictOptions(inputs, str(output), size='64x80', **kw)


def test_predict_writes_one_set_of_files_per_input(tmp_path, model, config):
  inputs = [_image(tmp_path / 'in' / p, i) for i, p in
            enumerate(('x.png', 'x.jpg', 'a/x.png', 'b/x.png', 'a_x.png'))]
  out = tmp_path / 'out'
  summary = predict.predict_images(model, config, _options(
      [str(tmp_path / 'in'), str(tmp_path / 'in/a/x.png'), str(tmp_path / 'in/b/x.png')], out))
  assert not summary.failed and len(summary.written) == len(inputs)
  written = [f for files_ in summary.written.values() for f in files_]
  assert len(set(written)) == len(written) == 4 * len(inputs)  # .npy, .png, colour, camera
  assert sorted(os.listdir(out)) == sorted(
      [output_files.MANIFEST, *(os.path.basename(f) for f in written)])
  # Every depth file holds its own image's prediction, not a later one's.
  depths = {p: np.load(f[0]) for p, f in summary.written.items()}
  assert len({d.tobytes() for d in depths.values()}) == len(inputs)


def test_repeated_input_flag_and_input_list_reach_the_options(tmp_path):
  listing = tmp_path / 'list.txt'
  listing.write_text('x.png\n')
  with flagsaver.flagsaver():
    flags.FLAGS(['main', f'--config={_REPO / "configs" / "smoke.py"}', '--input=a.png',
                 '--input=b,c.png', f'--input_list={listing}', '--output=o'])
    values = predict_flags.values()
  assert values['inputs'] == ['a.png', 'b,c.png'] and values['input_list'] == str(listing)


def test_outputs_are_never_taken_as_inputs(tmp_path, model, config):
  folder = tmp_path / 'photos'
  _image(folder / 'ok.jpg')
  first = predict.predict_images(model, config, _options(str(folder), folder))
  assert len(first.written) == 1
  before = sorted(os.listdir(folder))
  second = predict.predict_images(model, config, _options(str(folder), folder))
  # Rerun into the same folder: the same image again, the same files replaced, no *_depth_depth.
  assert list(second.written) == list(first.written) and not second.failed
  assert sorted(os.listdir(folder)) == before
  _, problems = input_files.find_images(str(folder / 'ok_depth.png'), output_dir=folder)
  assert 'an output of this run' in problems[0][1]


def test_output_problems_are_named_before_the_model_loads(tmp_path, config, monkeypatch):
  def no_model(*args, **kwargs):
    raise AssertionError('the model was loaded before the output was checked')

  monkeypatch.setattr(predict.checkpointing, 'load_model', no_model)
  _image(tmp_path / 'x.png')
  (tmp_path / 'taken').write_text('a file')
  with pytest.raises(ValueError, match='is a file, not a folder'):
    predict.predict(config, None, _options(str(tmp_path / 'x.png'), tmp_path / 'taken'))
  # No input found: exit non-zero, and no empty output folder left behind.
  with pytest.raises(SystemExit, match='no image to read'):
    predict.predict(config, None, _options(str(tmp_path / 'nothing*.png'), tmp_path / 'new'))
  assert not (tmp_path / 'new').exists()


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write to read-only folders')
def test_read_only_output_is_named_before_the_model_loads(tmp_path, config, monkeypatch):
  monkeypatch.setattr(predict.checkpointing, 'load_model',
                      lambda *a, **k: pytest.fail('model loaded'))
  _image(tmp_path / 'x.png')
  (tmp_path / 'ro').mkdir(mode=0o555)
  with pytest.raises(ValueError, match='not writable'):
    predict.predict(config, None, _options(str(tmp_path / 'x.png'), tmp_path / 'ro'))


def test_a_nan_prediction_fails_its_image_instead_of_becoming_min_depth(tmp_path, config):
  broken = models.random_model(config.model, seed=1)
  broken.eval()
  kernel = broken.conv_out.kernel
  kernel.set_value(kernel.get_value() * np.nan)
  _image(tmp_path / 'x.png')
  summary = predict.predict_images(broken, config, _options(str(tmp_path / 'x.png'),
                                                            tmp_path / 'out'))
  assert not summary.written and 'non-finite depth' in summary.failed[0][1]
  assert os.listdir(tmp_path / 'out') == []
