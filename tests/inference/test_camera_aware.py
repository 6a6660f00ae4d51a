"""Depth rescaled to a photo's camera: explicit fx, field of view, EXIF, and their failures."""

import json
import math

from absl import logging
import numpy as np
from PIL import Image
import pytest

import adabins_jax
from adabins_jax import configs
from adabins_jax.configs import smoke
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import focal as focal_lib
from adabins_jax.inference import predict
from adabins_jax.inference import video as predict_video

_SIZE = '64x80'
_HW = (40, 52)
_EXIF_IFD, _ORIENTATION, _F35, _FOCAL_MM, _PLANE_X, _PLANE_UNIT = (
    0x8769, 0x0112, 0xA405, 0x920A, 0xA20E, 0xA210)


@pytest.fixture(scope='module')
def predictor(weights):
  return adabins_jax.Predictor('smoke', weights=weights, size=_SIZE)


def _photo(seed=0, size=_HW):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def _jpeg(path, photo, tags, orientation=None):
  exif = Image.Exif()
  if orientation is not None:
    exif[_ORIENTATION] = orientation
  sub = exif.get_ifd(_EXIF_IFD)
  sub.update(tags)
  Image.fromarray(photo).save(path, exif=exif, quality=95)
  return str(path)


def test_twice_the_focal_length_gives_exactly_twice_the_depth(predictor):
  photo = _photo()
  near = predictor(photo, fx=40.0)
  far = predictor(photo, fx=80.0)
  np.testing.assert_allclose(far / near, 2.0, rtol=1e-6)
  result = predictor.predict(photo, fx=40.0)
  assert result.focal.source == focal_lib.EXPLICIT and result.depth_scale != 1.0


def test_the_scale_is_f_photo_over_f_train_at_the_network_input(predictor):
  photo = _photo()
  plain = predictor(photo)
  # The smoke model learns NYU's Kinect at 80 px wide inputs: 518.8579 * 80 / 640 px.
  train_fx = 518.8579 * 80 / 640
  assert predictor.train_fx_input_px == pytest.approx(train_fx)
  fx = 33.0  # At the photo's 52 px width; the network sees it 80 px wide.
  np.testing.assert_allclose(predictor(photo, fx=fx), plain * (fx * 80 / 52) / train_fx,
                             rtol=1e-6)


def test_a_field_of_view_is_the_focal_length_it_implies(predictor):
  photo = _photo()
  fx = 0.5 * _HW[1] / math.tan(math.radians(60.0) / 2)
  np.testing.assert_allclose(predictor(photo, fov_deg=60.0), predictor(photo, fx=fx), rtol=1e-6)


def test_exif_35mm_equivalent_gives_the_depth_of_the_explicit_fx(predictor, tmp_path):
  path = _jpeg(tmp_path / 'exif.jpg', _photo(), {_F35: 28})
  result = predictor.predict(path)
  assert result.focal.source == focal_lib.EXIF_35MM
  np.testing.assert_allclose(result.depth, predictor(path, fx=28 * _HW[1] / 36), rtol=1e-6)


def test_exif_of_a_rotated_photo_uses_the_upright_width(predictor, tmp_path):
  # Stored 40x52 with orientation 6 (turned 90 degrees): upright it is 52 high and 40 wide.
  path = _jpeg(tmp_path / 'turned.jpg', _photo(), {_F35: 28}, orientation=6)
  result = predictor.predict(path)
  assert result.depth.shape == (52, 40)
  np.testing.assert_allclose(result.depth, predictor(path, fx=28 * 40 / 36), rtol=1e-6)


def test_exif_focal_plane_resolution_is_the_fallback(tmp_path):
  # 4 mm lens, 250 sensor pixels per mm: fx = 1000 px, a 52 px wide photo: 5.96 degrees.
  path = _jpeg(tmp_path / 'plane.jpg', _photo(),
               {_FOCAL_MM: 4.0, _PLANE_X: 250.0, _PLANE_UNIT: 4})
  focal = focal_lib.photo_focal(path, _HW[1])
  assert focal.source == focal_lib.EXIF_FOCAL_PLANE
  assert focal.fx_px == pytest.approx(1000.0)


def test_without_exif_depth_is_exactly_todays(predictor, tmp_path):
  photo = _photo()
  path = tmp_path / 'plain.png'
  Image.fromarray(photo).save(path)
  result = predictor.predict(str(path))
  assert result.focal == focal_lib.PhotoFocal(None, focal_lib.TRAINING)
  assert result.depth_scale == 1.0
  np.testing.assert_array_equal(result.depth, predictor(photo))


@pytest.mark.parametrize('tags', [{_F35: 0}, {_F35: 100000}, {_FOCAL_MM: -3.0, _PLANE_X: 10.0}])
def test_corrupt_exif_warns_and_falls_back(predictor, tmp_path, tags, monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda *a: warnings.append(a[0] % a[1:]))
  photo = _photo()
  path = _jpeg(tmp_path / 'bad.jpg', photo, tags)
  result = predictor.predict(path)
  assert result.focal.source == focal_lib.TRAINING and result.depth_scale == 1.0
  assert any('bad.jpg' in w for w in warnings)


def test_unreadable_exif_warns_and_falls_back(tmp_path, monkeypatch):
  warnings = []
  monkeypatch.setattr(logging, 'warning', lambda *a: warnings.append(a[0] % a[1:]))
  (tmp_path / 'broken.jpg').write_bytes(b'\xff\xd8 not a jpeg')
  assert focal_lib.photo_focal(str(tmp_path / 'broken.jpg'), 52).source == focal_lib.TRAINING
  assert warnings


@pytest.mark.parametrize('bad', [0, -1, float('nan'), float('inf')])
def test_bad_focal_lengths_are_refused(predictor, bad):
  with pytest.raises(focal_lib.FocalLengthError, match='fx'):
    predictor(_photo(), fx=bad)
  with pytest.raises(focal_lib.FocalLengthError, match='fov_deg'):
    predictor(_photo(), fov_deg=bad)


@pytest.mark.parametrize('bad', [180, 200, -10])
def test_fields_of_view_outside_0_to_180_are_refused(bad):
  with pytest.raises(focal_lib.FocalLengthError):
    focal_lib.fx_from_fov(bad, 100)
  with pytest.raises(focal_lib.FocalLengthError):
    predict.PredictOptions('x.png', 'out', fov_deg=bad)


def test_predict_mode_rescales_and_says_which_camera(tmp_path, weights, predictor):
  photo = _photo()
  Image.fromarray(photo).save(tmp_path / 'p.png')
  out = tmp_path / 'out'
  options = predict.PredictOptions(str(tmp_path / 'p.png'), str(out), size=_SIZE,
                                   weights=weights, fov_deg=70.0, ply=True)
  predict.predict(smoke.get_config(), None, options)
  np.testing.assert_allclose(np.load(out / 'p_depth.npy'), predictor(photo, fov_deg=70.0),
                             rtol=1e-6)
  info = json.loads((out / 'p_camera.json').read_text())
  assert info['focal_source'] == focal_lib.FOV
  assert info['training_camera'] == 'NYU Kinect'
  assert info['fx_px'] == pytest.approx(focal_lib.fx_from_fov(70.0, _HW[1]))
  assert info['intrinsics'][0] == pytest.approx(info['fx_px'])
  assert b'fx=%.4f' % info['fx_px'] in (out / 'p.ply').read_bytes()[:300]


def test_training_focal_lengths_of_the_shipped_configs():
  demo = configs.load('demo')  # 120x160 frames at 0.4: 64 px wide inputs.
  assert camera_lib.training_focal_px(demo) == pytest.approx(518.8579 * 64 / 640)
  # KITTI's frames are KB crops, which keep fx.
  assert camera_lib.training_focal_px(configs.load('kitti_effnet_b5_256')) == pytest.approx(
      721.5377)
  assert camera_lib.training_focal_px(configs.load('effnet_b5_256')) == pytest.approx(518.8579)


class _Network:
  """Depth 2 m everywhere, whatever the frame: only the rescale is under test."""

  def __init__(self):
    self.config = smoke.get_config()

  def input_for(self, rgb, size=None):
    return np.zeros((64, 80, 3), np.float32)

  def run(self, inputs, hws, pad_to=0):
    return [(np.full(hw, 2.0, np.float32), None) for hw in hws]


def test_a_clips_field_of_view_rescales_every_frame():
  frames = [_photo(i) for i in range(3)]
  train_fx = camera_lib.training_focal_px(smoke.get_config())
  fx = focal_lib.fx_from_fov(50.0, _HW[1])
  depths = list(predict_video.depth_frames(_Network(), frames, 2, fov_deg=50.0))
  assert len(depths) == 3
  for depth in depths:
    np.testing.assert_allclose(depth, 2.0 * (fx * 80 / _HW[1]) / train_fx, rtol=1e-6)


def test_the_web_demo_rescales_by_its_field_of_view_and_shows_the_exif_value(predictor,
                                                                           tmp_path):
  pytest.importorskip('gradio')
  from adabins_jax.inference import page  # pylint: disable=g-import-not-at-top
  photo = _photo()
  path = _jpeg(tmp_path / 'exif.jpg', photo, {_F35: 28})
  view = page.predict_photo(predictor, path, tmp_path, 'a', fov_deg=70.0)
  np.testing.assert_allclose(view.depth, predictor(path, fov_deg=70.0), rtol=1e-6)
  assert 'field of view' in view.summary and 'EXIF focal length 40 px' in view.summary
  view = page.predict_photo(predictor, path, tmp_path, 'b')
  np.testing.assert_allclose(view.depth, predictor(path), rtol=1e-6)
  assert focal_lib.EXIF_35MM in view.summary
  plain = page.predict_photo(predictor, photo, tmp_path, 'c')
  assert 'assumed (no EXIF focal length' in plain.summary
