"""The synthetic-rooms ray caster against hand-computed depths, and its sensor-like output."""

import numpy as np
import pytest

from adabins_jax.datasets.rooms import geometry as geo
from adabins_jax.datasets.rooms import render as rooms_render
from adabins_jax.datasets.rooms import scene as rooms_scene


def _scene(solids=(), size=(4.0, 3.0, 6.0), position=(2.0, 1.5, 1.0), height=30, width=40):
  """An empty, level room seen by a camera looking along +z (identity rotation, y down)."""
  rotation = np.array([[1, 0, 0], [0, -1, 0], [0, 0, 1]], np.float32)  # right, down, forward
  camera = rooms_scene.Camera(np.array(position, np.float32), rotation, focal_px=40.0,
                              center_px=(width / 2, height / 2), height=height, width=width)
  plain = rooms_scene.Material('plain', np.full(3, 0.5, np.float32), np.zeros(3, np.float32), 1.0)
  return rooms_scene.Scene(
      room=geo.Room(np.array(size, np.float32)), room_materials=[plain] * 6,
      solids=[(s, plain) for s in solids], camera=camera,
      light_position=np.array([2.0, 2.9, 3.0], np.float32), light_power=1.0, ambient=0.3,
      noise_perm=np.arange(256), noise_values=np.linspace(0, 1, 256, dtype=np.float32))


def _depth(scene):
  rays = rooms_render.camera_rays(scene.camera)
  t, *_ = rooms_render._first_hits(scene, scene.camera.position, rays)
  return t.reshape(scene.camera.height, scene.camera.width), rays


def test_far_wall_floor_and_ceiling_depths():
  scene = _scene()
  depth, _ = _depth(scene)
  cam = scene.camera
  for row in range(cam.height):
    for col in (0, 17, cam.width - 1):
      x = (col + 0.5 - cam.center_px[0]) / cam.focal_px
      y = (row + 0.5 - cam.center_px[1]) / cam.focal_px  # image y, down
      # z-depth to each plane hit by direction (x, -y, 1) from (2, 1.5, 1).
      candidates = [5.0]  # far wall z = 6
      if y > 0:
        candidates.append(1.5 / y)  # floor
      if y < 0:
        candidates.append(1.5 / -y)  # ceiling y = 3
      candidates.append((2.0 / abs(x)) if x != 0 else np.inf)  # side walls x = 0 / 4
      assert depth[row, col] == pytest.approx(min(candidates), rel=1e-5)


def test_box_cylinder_and_sphere_in_front():
  box = geo.Box([2.0, 1.5, 3.0], [0.5, 0.5, 0.25], yaw=0.0)
  depth, _ = _depth(_scene([box]))
  assert depth[15, 20] == pytest.approx(2.0 - 0.25, rel=1e-5)  # front face z = 2.75
  # Turned by 90 degrees the box's x half-extent faces the camera.
  depth, _ = _depth(_scene([geo.Box([2.0, 1.5, 3.0], [0.5, 0.5, 0.25], yaw=np.pi / 2)]))
  assert depth[15, 20] == pytest.approx(2.0 - 0.5, rel=1e-5)
  depth, _ = _depth(_scene([geo.Cylinder(2.0, 3.0, 0.4, 0.0, 2.0)]))
  # The centre pixel's ray (x, ., 1) with x = 0.5 / 40 meets the side where
  # (x t)^2 + (t - 2)^2 = r^2, t being z-depth (the axis is 2 m ahead).
  x = 0.5 / 40.0
  a, b, c = x * x + 1, -4.0, 4.0 - 0.4**2
  assert depth[15, 20] == pytest.approx((-b - np.sqrt(b * b - 4 * a * c)) / (2 * a), rel=1e-5)
  depth, _ = _depth(_scene([geo.Sphere([2.0, 1.5, 4.0], 0.5)]))
  d = np.array([x, -x, 1.0])
  oc = np.array([0.0, 0.0, -3.0])
  b, c = 2 * d @ oc, oc @ oc - 0.25
  assert depth[15, 20] == pytest.approx((-b - np.sqrt(b * b - 4 * (d @ d) * c)) / (2 * d @ d),
                                        rel=1e-5)


def test_screen_culling_changes_nothing(monkeypatch):
  scene = rooms_scene.sample_scene(np.random.default_rng(3), 48, 64)
  culled, _ = _depth(scene)
  monkeypatch.setattr(rooms_render, '_screen_rect', lambda camera, corners: None)
  full, _ = _depth(scene)
  np.testing.assert_array_equal(culled, full)


def test_rendering_is_deterministic_and_depth_is_sensor_like():
  images, valid_fractions = [], []
  for index in range(6):
    image, depth, focal = rooms_render.render_example((0, index), 60, 80)
    image2, depth2, _ = rooms_render.render_example((0, index), 60, 80)
    np.testing.assert_array_equal(image, image2)
    np.testing.assert_array_equal(depth, depth2)
    assert image.dtype == np.uint8 and image.shape == (60, 80, 3)
    assert depth.dtype == np.float32 and depth.shape == (60, 80)
    assert 480 * 80 / 640 <= focal <= 560 * 80 / 640
    valid = depth > 0
    assert depth[valid].min() > 0.2 and depth.max() < 10.0
    valid_fractions.append(valid.mean())
    images.append(image)
  assert not np.array_equal(images[0], images[1])
  # Mostly valid, with some holes like a Kinect.
  assert 0.85 < np.mean(valid_fractions) < 1.0


@pytest.mark.filterwarnings('error::RuntimeWarning')
def test_a_ray_through_a_room_edge_renders_without_overflow():
  # In this scene one ray slips through an edge of the room and meets a wall plane ~1e9 m away;
  # its corner-darkening term used to overflow exp (a RuntimeWarning, turned into an error here).
  image, depth, _ = rooms_render.render_example((0, 19), 480, 640)
  assert image.dtype == np.uint8 and np.isfinite(depth).all()
  assert depth.max() <= 10.0
