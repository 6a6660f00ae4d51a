"""Tests for video clips in --mode=predict (inference/video.py) on the smoke model."""

import inspect
import os
import pathlib
import re
import subprocess
import sys

from absl import app
from absl import flags
from absl.testing import flagsaver
import numpy as np
import pytest

from helpers import stand_ins
from adabins_jax import main
from adabins_jax.inference import predict
from adabins_jax.inference import predictor as predictor_lib
from adabins_jax.inference import input_files
from adabins_jax.inference import output_files
from adabins_jax.inference import video as predict_video
from adabins_jax import annotate
from adabins_jax import visualize

pytest.importorskip('imageio.v2')
pytest.importorskip('imageio_ffmpeg')
# As prediction sets it up: ffmpeg started without fork()ing this JAX process.
iio = predict_video._imageio()  # pylint: disable=protected-access

_REPO = pathlib.Path(__file__).resolve().parents[2]
_HW = (64, 80)  # Frames and network input alike: one compile for every test.
_FRAMES, _FPS, _BATCH = 12, 10, 5  # 5 + 5 + 2: the short last batch is padded.


def _write_clip(path, frames=_FRAMES, fps=_FPS):
  """A gradient moving across the frame, so that every frame differs."""
  y, x = np.mgrid[0:_HW[0], 0:_HW[1]]
  with iio.get_writer(path, format='FFMPEG', fps=fps, codec='libx264', macro_block_size=16,
                      ffmpeg_log_level='error') as writer:
    for i in range(frames):
      ramp = ((3 * x + 2 * y + 12 * i) % 256).astype(np.uint8)
      writer.append_data(np.stack([ramp, 255 - ramp, np.full_like(ramp, 20 * i)], axis=-1))
  return path


def _decode(path):
  reader = iio.get_reader(path, format='FFMPEG')
  try:
    return [np.asarray(f) for f in reader.iter_data()], reader.get_meta_data()['fps']
  finally:
    reader.close()


@pytest.fixture(scope='module')
def workdir(tmp_path_factory, model):
  """A training run's folder holding the smoke model's weights."""
  return stand_ins.save_run(tmp_path_factory.mktemp('run'), model, step=7)


def _main(monkeypatch, workdir, *args):
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', '--mode=predict',
          f'--workdir={workdir}', f'--size={_HW[0]}x{_HW[1]}', f'--batch_size={_BATCH}', *args]
  monkeypatch.setattr(sys, 'argv', argv)
  with flagsaver.flagsaver():
    return main.main(flags.FLAGS(argv))


@pytest.fixture(scope='module')
def clip_run(tmp_path_factory, workdir):
  """One predict run of a 12-frame clip through main: (clip, output folder)."""
  folder = tmp_path_factory.mktemp('clip')
  clip = _write_clip(folder / 'clip.mp4')
  with pytest.MonkeyPatch.context() as monkeypatch:
    _main(monkeypatch, workdir, f'--input={clip}', f'--output={folder / "out"}')
  return clip, folder / 'out'


def test_each_frame_is_the_image_path_prediction_of_that_frame(clip_run, config, workdir):
  clip, out = clip_run
  with np.load(out / 'clip_depth.npz') as archive:
    assert list(archive) == ['depth']
    depth = archive['depth']
  assert depth.shape == (_FRAMES, *_HW) and depth.dtype == np.float16
  frames, _ = _decode(clip)
  predictor = predictor_lib.Predictor(config, workdir=str(workdir), size=_HW, batch_size=_BATCH)
  expected = np.stack([p.depth for p in predictor.predict_batch(frames)])
  # Float16 keeps 11 significant bits: half a step is 2**-11 of the value.
  np.testing.assert_allclose(depth.astype(np.float32), expected, rtol=2**-11, atol=1e-6)
  assert not np.array_equal(depth[0], depth[-1])
  assert sorted(p.name for p in out.iterdir()) == [
      output_files.MANIFEST, 'clip_depth.mp4', 'clip_depth.npz']


def test_depth_video_has_the_clips_frames_and_rate_over_the_fixed_range(clip_run, config):
  _, out = clip_run
  coloured, fps = _decode(out / 'clip_depth.mp4')
  assert len(coloured) == _FRAMES and fps == _FPS
  with np.load(out / 'clip_depth.npz') as archive:
    depth = archive['depth'].astype(np.float32)
  depth_range = config.model.min_depth_m, config.model.max_depth_m
  for frame, d in zip(coloured, depth):
    assert frame.shape == (*_HW, 3)
    # H.264 is lossy; a per-frame range would be far off the fixed-range colours.
    error = np.abs(frame.astype(np.int16) - visualize.colorize_depth(d, *depth_range))
    assert error.mean() < 8, error.mean()


def test_strip_video_shows_each_frame_beside_its_depth(tmp_path, monkeypatch, clip_run,
                                                       workdir, config):
  clip, first_out = clip_run
  _main(monkeypatch, workdir, f'--input={clip}', f'--output={tmp_path}', '--strip')
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      output_files.MANIFEST, 'clip_depth.mp4', 'clip_depth.npz', 'clip_strip.mp4']
  assert 'clip_strip.mp4' in (tmp_path / output_files.MANIFEST).read_text().split()
  strips, fps = _decode(tmp_path / 'clip_strip.mp4')
  assert len(strips) == _FRAMES and fps == _FPS
  inputs, _ = _decode(clip)
  with np.load(first_out / 'clip_depth.npz') as archive:
    depth = archive['depth'].astype(np.float32)
  depth_range = config.model.min_depth_m, config.model.max_depth_m
  # The photo's strip of each frame: titles above, the colour bar below, 2x the frame's width.
  h, w = _HW
  header = annotate.label_panels(np.zeros((h, 2 * w, 3), np.uint8),
                                 visualize.PREDICTION_TITLES).shape[0] - h
  for i, (strip, frame, d) in enumerate(zip(strips, inputs, depth)):
    colour = visualize.colorize_depth(d, *depth_range)
    expected = visualize.prediction_strip(frame, colour, *depth_range)
    expected = np.pad(expected, [(0, expected.shape[0] % 2), (0, 0), (0, 0)], mode='edge')
    assert strip.shape == expected.shape and strip.shape[1] == 2 * w, strip.shape
    # H.264 is lossy (mean errors of about 5 on this clip's sharp ramps, against 22 between
    # consecutive frames): the left panel is this frame, not its neighbour.
    assert np.abs(strip.astype(np.int16) - expected).mean() < 8, i
    left = strip[header:header + h, :w].astype(np.int16)
    error = np.abs(left - frame).mean()
    assert error < 8, (i, error)
    assert np.abs(left - inputs[(i + 1) % _FRAMES]).mean() > 3 * error, i
    assert np.abs(strip[header:header + h, w:].astype(np.int16) - colour).mean() < 8, i


def test_a_clip_of_odd_size_gets_a_strip_of_even_size(tmp_path):
  clip = tmp_path / 'odd.mp4'
  with iio.get_writer(clip, format='FFMPEG', fps=_FPS, codec='libx264', pixelformat='yuv444p',
                      macro_block_size=1, ffmpeg_log_level='error') as writer:
    for i in range(3):
      writer.append_data(np.full((33, 41, 3), 40 * i, np.uint8))
  (tmp_path / 'out').mkdir()
  options = predict.PredictOptions(str(clip), str(tmp_path / 'out'), batch_size=2, strip=True)
  written = predict_video.predict_clip(_FakeNetwork(), clip, 'odd', options)
  assert [pathlib.Path(p).name for p in written] == ['odd_depth.npz', 'odd_depth.mp4',
                                                     'odd_strip.mp4']
  strips, _ = _decode(written[2])
  height = visualize.prediction_strip(*[np.zeros((33, 41, 3), np.uint8)] * 2, 1.0, 2.0).shape[0]
  assert len(strips) == 3
  # H.264 in yuv420p needs even sides: 2 x 41 columns, and the last row repeated if odd.
  assert strips[0].shape == (height + height % 2, 82, 3)
  assert _decode(written[1])[0][0].shape == (34, 42, 3)


def test_a_video_prediction_prints_no_fork_warning(tmp_path, clip_run, workdir):
  # imageio-ffmpeg's preexec_fn made CPython fork() this multithreaded JAX process for each
  # ffmpeg; JAX warns then, from an at-fork hook, which -W error cannot turn into a failure.
  clip, _ = clip_run
  # Not inherited from this process (iio above sets it): the child must set it up itself.
  env = {k: v for k, v in os.environ.items() if k != 'IMAGEIO_FFMPEG_NO_PREVENT_SIGINT'}
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.main', '--mode=predict',
       f'--config={_REPO / "configs" / "smoke.py"}', f'--workdir={workdir}', f'--input={clip}',
       f'--output={tmp_path}', f'--size={_HW[0]}x{_HW[1]}', f'--batch_size={_BATCH}',
       '--strip'],  # A reader and two writers.
      cwd=_REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert (tmp_path / 'clip_strip.mp4').exists()
  output = result.stdout + result.stderr
  assert not re.findall(r'.*\bfork\b.*', output, re.IGNORECASE), output[-3000:]
  assert 'Depth for 1 of 1 files' in result.stdout


def test_frames_flag_writes_one_npy_per_frame(tmp_path, monkeypatch, clip_run, workdir):
  clip, first_out = clip_run
  _main(monkeypatch, workdir, f'--input={clip}', f'--output={tmp_path}', '--frames')
  folder = tmp_path / 'clip_frames'
  names = sorted(p.name for p in folder.iterdir())
  assert names == [f'{i:06d}.npy' for i in range(_FRAMES)]
  with np.load(first_out / 'clip_depth.npz') as archive:
    depth = archive['depth']
  for i, name in enumerate(names):
    frame = np.load(folder / name)
    assert frame.dtype == np.float16
    np.testing.assert_array_equal(frame, depth[i])
  assert sorted(p.name for p in tmp_path.iterdir()) == [
      output_files.MANIFEST, 'clip_depth.mp4', 'clip_frames']


def test_a_corrupt_clip_is_named_and_leaves_no_file(tmp_path, monkeypatch, workdir):
  (tmp_path / 'in').mkdir()
  (tmp_path / 'in' / 'broken.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42 not a video' * 50)
  truncated = _write_clip(tmp_path / 'whole.mp4').read_bytes()
  (tmp_path / 'in' / 'cut.mov').write_bytes(truncated[:len(truncated) // 2])
  with pytest.raises(SystemExit) as exit_info:
    _main(monkeypatch, workdir, f'--input={tmp_path / "in"}', f'--output={tmp_path / "out"}')
  message = str(exit_info.value.code)
  assert 'Depth for 0 of 2 files' in message
  assert f'{tmp_path / "in" / "broken.mp4"}: not a readable video' in message
  assert f'{tmp_path / "in" / "cut.mov"}: not a readable video' in message
  assert list((tmp_path / 'out').iterdir()) == []


class _FakeNetwork:
  """Stands in for network.DepthNetwork: depth is the frame's mean colour, no compile."""
  depth_range = (1e-3, 10.0)

  def __init__(self, fail_at_call=None):
    self.calls, self._fail_at_call = 0, fail_at_call

  def input_for(self, rgb, size=None):
    del size
    return rgb

  def run(self, inputs, image_hws, pad_to=0):
    assert len(inputs) <= pad_to
    self.calls += 1
    results = []
    for x, hw in zip(inputs, image_hws):
      depth = np.full(hw, 1.0 + x.mean(), np.float32)
      if self.calls == self._fail_at_call:
        depth = FloatingPointError('non-finite depth')
      results.append((depth, None))
    return results


def test_frames_are_read_lazily_at_most_two_batches_ahead(tmp_path):
  pulled = 0

  def endless_clip():
    nonlocal pulled
    while True:
      pulled += 1
      yield np.full((4, 6, 3), pulled % 256, np.uint8)

  depths = predict_video.depth_frames(_FakeNetwork(), endless_clip(), batch_size=3)
  assert pulled == 0  # Nothing is read before the first depth map is asked for.
  for done in range(60):
    next(depths)
    assert pulled - done <= 2 * 3, (pulled, done)
  depths.close()
  # A real clip's frames come from a generator too, its length from the container.
  info, frames = predict_video.open_clip(_write_clip(tmp_path / 'clip.mkv'))
  assert inspect.isgenerator(frames) and (info.fps, info.frames) == (_FPS, _FRAMES)
  assert next(frames).shape == (*_HW, 3)
  frames.close()


@pytest.mark.parametrize('per_frame, strip', [(False, False), (True, False), (False, True)])
def test_a_failure_mid_clip_leaves_no_file(tmp_path, per_frame, strip):
  clip = _write_clip(tmp_path / 'clip.mp4')
  (tmp_path / 'out').mkdir()
  options = predict.PredictOptions(str(clip), str(tmp_path / 'out'), batch_size=2,
                                   frames=per_frame, strip=strip)
  with pytest.raises(ValueError, match='frame 4: non-finite depth'):
    predict_video.predict_clip(_FakeNetwork(fail_at_call=3), clip, 'clip', options)
  assert list((tmp_path / 'out').iterdir()) == []
  # The same clip written whole replaces nothing half-way either.
  written = predict_video.predict_clip(_FakeNetwork(), clip, 'clip', options)
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == sorted(
      [output_files.MANIFEST, *(pathlib.Path(p).name for p in written)])


def test_without_imageio_a_clip_says_how_to_install(tmp_path, monkeypatch, model, config):
  # Written as MP4 and renamed: ffmpeg refuses libx264 in a WebM container, and whether that
  # surfaced as a broken pipe while writing depended on timing. Only the name is read here.
  clip = _write_clip(tmp_path / 'clip.mp4').rename(tmp_path / 'clip.webm')
  monkeypatch.setitem(sys.modules, 'imageio', None)
  monkeypatch.setitem(sys.modules, 'imageio.v2', None)
  options = predict.PredictOptions(str(clip), str(tmp_path / 'out'))
  with pytest.raises(SystemExit, match=r'clip.webm: .*pip install "adabins-jax\[video\]"'):
    predict.predict(config, None, options)  # Before any weights are needed.
  summary = predict.predict_images(model, config, options)
  assert summary.written == {}
  assert 'pip install "adabins-jax[video]"' in summary.failed[0][1]


def test_folders_and_globs_find_clips_but_not_their_outputs(tmp_path):
  for name in ('a.mp4', 'b.MOV', 'c.png', 'notes.txt', 'a_depth.mp4', 'a_depth.npz',
               'a_strip.mp4'):
    (tmp_path / name).write_bytes(b'')
  paths, _ = input_files.find_images(str(tmp_path), output_dir=tmp_path)
  assert [p.name for p in paths] == ['a.mp4', 'b.MOV', 'c.png']
  assert [input_files.is_video(p) for p in paths] == [True, True, False]
  paths, _ = input_files.find_images(f'{tmp_path}/*.mp4', output_dir=tmp_path)
  assert [p.name for p in paths] == ['a.mp4']


@flagsaver.flagsaver
def test_frames_flag_in_another_mode_is_a_usage_error(tmp_path, monkeypatch):
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', '--mode=eval',
          f'--workdir={tmp_path}', '--frames']
  monkeypatch.setattr(sys, 'argv', argv)
  with pytest.raises(app.UsageError, match='--frames: only for --mode=predict') as info:
    main.main(flags.FLAGS(argv))
  assert info.value.exitcode == 2
