"""Tests that a truncated clip is not passed off as whole, and that a clip's outputs replace no
file prediction did not write (inference/video.py)."""

import dataclasses
import logging
import os
import sys

from absl.testing import flagsaver
import numpy as np
import pytest

from adabins_jax import checkpointing
from adabins_jax import main
from adabins_jax.configs import smoke
from adabins_jax.inference import flags as predict_flags
from adabins_jax.inference import output_files
from adabins_jax.inference import predict
from adabins_jax.inference import video as predict_video

pytest.importorskip('imageio.v2')
pytest.importorskip('imageio_ffmpeg')
# As prediction sets it up: ffmpeg started without fork()ing this JAX process.
iio = predict_video._imageio()  # pylint: disable=protected-access

_FRAMES, _FPS, _HW = 60, 20, (16, 24)


class _MeanNetwork:
  """Stands in for network.DepthNetwork: depth is the frame's mean colour, no compile."""
  depth_range = (1e-3, 10.0)

  def input_for(self, rgb, size=None):
    del size
    return rgb

  def run(self, inputs, image_hws, pad_to=0):
    del pad_to
    return [(np.full(hw, 1.0 + x.mean(), np.float32), None) for x, hw in zip(inputs, image_hws)]


@pytest.fixture(scope='module')
def truncated_clip(tmp_path_factory):
  """A 60-frame clip whose container states its length up front, cut to a third."""
  folder = tmp_path_factory.mktemp('clips')
  whole = folder / 'whole.mp4'
  rng = np.random.default_rng(0)
  # faststart puts the index first, so the cut file still opens and states 60 frames.
  with iio.get_writer(whole, format='FFMPEG', fps=_FPS, codec='libx264', macro_block_size=8,
                      ffmpeg_log_level='error', output_params=['-movflags', '+faststart']) as w:
    for _ in range(_FRAMES):
      w.append_data((rng.random((*_HW, 3)) * 255).astype(np.uint8))
  data = whole.read_bytes()
  cut = folder / 'cut.mp4'
  cut.write_bytes(data[:len(data) // 3])
  return cut


def _options(clip, out, **kw):
  out.mkdir()
  return predict.PredictOptions(str(clip), str(out), batch_size=4, **kw)


def test_a_truncated_clip_fails_naming_both_counts(truncated_clip, tmp_path):
  options = _options(truncated_clip, tmp_path / 'out')
  with pytest.raises(ValueError, match=rf'decoded \d+ of the {_FRAMES} frames its container '
                                       'states.*--allow_partial_video'):
    predict_video.predict_clip(_MeanNetwork(), truncated_clip, 'cut', options)
  assert list((tmp_path / 'out').iterdir()) == []


def test_allow_partial_video_keeps_the_frames_with_a_warning(truncated_clip, tmp_path, caplog):
  options = _options(truncated_clip, tmp_path / 'out', allow_partial_video=True)
  with caplog.at_level(logging.WARNING):
    written = predict_video.predict_clip(_MeanNetwork(), truncated_clip, 'cut', options)
  with np.load(written[0]) as archive:
    decoded = len(archive['depth'])
  assert 0 < decoded < _FRAMES
  assert f'decoded {decoded} of the {_FRAMES} frames' in caplog.text


def test_the_progress_bar_keeps_the_containers_total(truncated_clip, tmp_path, monkeypatch):
  bars = []
  real_tqdm = predict_video.tqdm.tqdm

  def recording_tqdm(*args, **kwargs):
    bars.append(real_tqdm(*args, **kwargs))
    return bars[-1]

  monkeypatch.setattr(predict_video.tqdm, 'tqdm', recording_tqdm)
  options = _options(truncated_clip, tmp_path / 'out', allow_partial_video=True)
  predict_video.predict_clip(_MeanNetwork(), truncated_clip, 'cut', options)
  assert bars[0].total == _FRAMES and bars[0].n < _FRAMES


def test_small_estimation_errors_are_not_truncation():
  assert not predict_video.is_short(199, 200)
  assert not predict_video.is_short(5, None)
  assert predict_video.is_short(68, 200)


@flagsaver.flagsaver
def test_the_flag_reaches_the_options(monkeypatch):
  config_file = os.path.join(os.path.dirname(smoke.__file__), 'smoke.py')
  argv = ['main', f'--config={config_file}', '--mode=predict', '--allow_partial_video',
          '--input=a.mp4', '--output=o']
  monkeypatch.setattr(sys, 'argv', argv)  # config_flags reads overrides from sys.argv.
  main.flags.FLAGS(argv)
  assert predict.PredictOptions(**predict_flags.values()).allow_partial_video


def test_a_users_file_under_the_strip_videos_name_is_never_replaced(truncated_clip, tmp_path,
                                                                    monkeypatch, config):
  (tmp_path / 'in').mkdir()
  clip = tmp_path / 'in' / 'walk.mp4'
  clip.write_bytes(truncated_clip.read_bytes())
  out = tmp_path / 'out'
  out.mkdir()
  users = out / 'walk_strip.mp4'
  users.write_bytes(b'my own side-by-side video')
  monkeypatch.setattr(checkpointing, 'load_model',
                      lambda *a, **k: pytest.fail('the model was loaded'))
  options = predict.PredictOptions(str(clip), str(out), strip=True, allow_partial_video=True)
  with pytest.raises(SystemExit, match=r'not written by adabins-jax.*\n  .*walk_strip.mp4'):
    predict.predict(config, None, options)  # Before the model loads.
  with pytest.raises(output_files.NotOurFileError, match='walk_strip.mp4 exists'):
    predict_video.predict_clip(_MeanNetwork(), clip, 'walk', options)
  assert sorted(p.name for p in out.iterdir()) == ['walk_strip.mp4']
  assert users.read_bytes() == b'my own side-by-side video'
  # Without --strip that name is no output; once it is ours, a rerun replaces it.
  without = dataclasses.replace(options, strip=False)
  assert str(users) not in predict.planned_outputs(without, predict.find_inputs(without))
  users.unlink()
  written = predict_video.predict_clip(_MeanNetwork(), clip, 'walk', options)
  assert written == predict_video.predict_clip(_MeanNetwork(), clip, 'walk', options)
  assert sorted((out / output_files.MANIFEST).read_text().split()) == [
      'walk_depth.mp4', 'walk_depth.npz', 'walk_strip.mp4']
