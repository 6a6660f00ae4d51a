"""Prediction.points: the depth map as 3-D points, with the intrinsics --ply uses."""

import numpy as np
import pytest

import adabins_jax
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import output_files


@pytest.fixture(scope='module')
def result(weights):
  predictor = adabins_jax.Predictor('smoke', weights=weights, size='64x80')
  photo = np.random.default_rng(0).integers(0, 256, (40, 52, 3), np.uint8)
  return predictor, predictor.predict(photo)


def test_points_back_project_with_the_training_camera_as_the_ply_does(result, tmp_path):
  predictor, prediction = result
  expected = camera_lib.intrinsics_for((40, 52), camera=predictor.camera)
  np.testing.assert_allclose(prediction.intrinsics, expected)
  xyz = prediction.points()
  assert xyz.shape == (40, 52, 3)
  np.testing.assert_array_equal(xyz[..., 2], prediction.depth)
  fx, fy, cx, cy = expected
  np.testing.assert_allclose(xyz[7, 11], [(11 - cx) * prediction.depth[7, 11] / fx,
                                          (7 - cy) * prediction.depth[7, 11] / fy,
                                          prediction.depth[7, 11]], rtol=1e-5)
  count = output_files.write_ply(tmp_path / 'p.ply', prediction.depth,
                                 np.zeros((40, 52, 3), np.uint8), expected)
  data = (tmp_path / 'p.ply').read_bytes()
  body = data[data.index(b'end_header\n') + len(b'end_header\n'):]
  vertices = np.frombuffer(body, dtype=[('x', '<f4'), ('y', '<f4'), ('z', '<f4'),
                                        ('r', 'u1'), ('g', 'u1'), ('b', 'u1')])
  flat = prediction.points(flat=True)
  assert flat.shape == (count, 3)
  np.testing.assert_allclose(np.stack([vertices['x'], vertices['y'], vertices['z']], -1), flat,
                             rtol=1e-5, atol=1e-6)


def test_points_take_a_focal_length_of_the_photo(result, weights):
  predictor, prediction = result
  xyz = prediction.points(fx=100.0)
  np.testing.assert_allclose(xyz[0, 0, 0], (0 - 25.5) * prediction.depth[0, 0] / 100.0,
                             rtol=1e-5)
  # Predicted with a focal length, the result keeps it for its points.
  with_focal = predictor.predict(np.zeros((40, 52, 3), np.uint8), fx=100.0)
  assert with_focal.intrinsics[0] == 100.0


@pytest.mark.parametrize('fx', [0.0, -1.0, float('nan'), float('inf')])
def test_points_refuse_a_bad_focal_length(result, fx):
  _, prediction = result
  with pytest.raises(ValueError):
    prediction.points(fx=fx)
