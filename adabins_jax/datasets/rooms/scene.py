"""Random indoor scenes for `synthetic_rooms`: room, camera, furniture, materials and light.

Sizes follow ordinary rooms (2.3-3.2 m high, up to 7 x 8.5 m) and the camera follows NYU Depth
V2's Kinect (about 518 px focal length at 640x480, held at 1-1.7 m, looking slightly down).
Every draw comes from one `numpy.random.Generator`, so a scene is a function of its seed.
"""

import colorsys
import dataclasses

import numpy as np

from adabins_jax.datasets.rooms import geometry as geo

# z-depth must stay below NYU's 10 m cap; every visible point is nearer than the room's
# farthest corner, so rooms are redrawn until that corner is within this distance.
MAX_CORNER_DISTANCE_M = 9.8
# Objects keep this clearance from the camera so none fills the whole view.
_CAMERA_CLEARANCE_M = 0.5


@dataclasses.dataclass
class Material:
  """A procedural surface: `kind` picks the pattern, `scale` its period in metres."""
  kind: str  # 'plain', 'noise', 'checker', 'stripes', 'tiles' or 'planks'
  color_a: np.ndarray
  color_b: np.ndarray
  scale: float
  glossy: bool = False


@dataclasses.dataclass
class Camera:
  """Pinhole camera; `rotation` columns are the camera's right, down and forward axes."""
  position: np.ndarray
  rotation: np.ndarray
  focal_px: float
  center_px: tuple[float, float]  # principal point (x, y)
  height: int
  width: int


@dataclasses.dataclass
class Scene:
  """Everything the renderer needs."""
  room: geo.Room
  room_materials: list[Material]  # one per room surface, see geo.Room
  solids: list  # (primitive, Material) pairs: geo.Box, geo.Cylinder or geo.Sphere
  camera: Camera
  light_position: np.ndarray
  light_power: float
  ambient: float
  noise_perm: np.ndarray  # lattice hash tables of the value noise
  noise_values: np.ndarray


def _color(rng, hue=None, sat=(0.1, 0.6), val=(0.3, 0.9)):
  """A linear-RGB colour drawn in HSV (hue in [0, 1); None draws any hue)."""
  h = rng.random() if hue is None else hue % 1.0
  rgb = colorsys.hsv_to_rgb(h, rng.uniform(*sat), rng.uniform(*val))
  return np.asarray(rgb, np.float32) ** 2.2  # sRGB-ish to linear


def _wall_material(rng, base_hue):
  kind = rng.choice(['plain', 'noise', 'stripes', 'plain'])
  a = _color(rng, base_hue, sat=(0.03, 0.35), val=(0.6, 0.95))
  b = _color(rng, base_hue + rng.uniform(-0.1, 0.1), sat=(0.05, 0.4), val=(0.5, 0.9))
  return Material(kind, a, b, scale=rng.uniform(0.08, 0.4))


def _floor_material(rng):
  kind = rng.choice(['planks', 'tiles', 'checker', 'noise'])
  if kind == 'planks':
    hue = rng.uniform(0.04, 0.11)
    a = _color(rng, hue, sat=(0.4, 0.75), val=(0.3, 0.75))
    return Material(kind, a, a * rng.uniform(0.6, 0.85), scale=rng.uniform(0.1, 0.25))
  if kind == 'tiles':
    a = _color(rng, sat=(0.0, 0.25), val=(0.5, 0.95))
    return Material(kind, a, a * 0.45, scale=rng.uniform(0.25, 0.6))
  if kind == 'checker':
    a = _color(rng, sat=(0.0, 0.3), val=(0.7, 0.95))
    b = _color(rng, sat=(0.0, 0.5), val=(0.1, 0.4))
    return Material(kind, a, b, scale=rng.uniform(0.25, 0.5))
  a = _color(rng, sat=(0.1, 0.6), val=(0.2, 0.7))  # carpet
  return Material(kind, a, a * 0.7, scale=rng.uniform(0.05, 0.2))


def _object_material(rng):
  kind = rng.choice(['plain', 'noise', 'stripes', 'checker', 'planks'])
  dark = rng.random() < 0.1  # black furniture: the sensor loses depth on it
  val = (0.03, 0.1) if dark else (0.15, 0.9)
  a = _color(rng, sat=(0.05, 0.85), val=val)
  b = _color(rng, sat=(0.05, 0.85), val=val)
  return Material(kind, a, b, scale=rng.uniform(0.05, 0.3), glossy=rng.random() < 0.25)


def _camera(rng, size, height, width, fov_deg=None):
  """A camera standing in the near part of the room, looking at its far part.

  ``fov_deg``: a fixed horizontal field of view instead of the Kinect-like focal length; the
  random draws are the same either way, so a seed gives the same room and pose.
  """
  w, h, d = size
  position = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(1.0, 1.7),
                       rng.uniform(0.3, max(0.4, 0.35 * d))], np.float32)
  target = np.array([rng.uniform(0.1, 0.9) * w, rng.uniform(0.6, 1.0) * d])
  yaw = np.arctan2(target[0] - position[0], target[1] - position[2])
  pitch = np.radians(rng.uniform(-25.0, 5.0))
  roll = np.radians(rng.uniform(-3.0, 3.0))
  forward = np.array([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
  right0 = np.array([np.cos(yaw), 0.0, -np.sin(yaw)])
  down0 = np.cross(right0, forward)
  right = np.cos(roll) * right0 + np.sin(roll) * down0
  down = -np.sin(roll) * right0 + np.cos(roll) * down0
  rotation = np.stack([right, down, forward], axis=1).astype(np.float32)
  # NYU's Kinect: 518.86 px focal length at 640 px width, principal point near the centre.
  focal = rng.uniform(480.0, 560.0) * width / 640.0
  if fov_deg is not None:
    focal = 0.5 * width / np.tan(np.radians(fov_deg) / 2.0)
  center = (width / 2 + rng.uniform(-0.02, 0.02) * width,
            height / 2 + rng.uniform(-0.02, 0.02) * height)
  return Camera(position, rotation, float(focal), center, height, width)


def _room_and_camera(rng, height, width, fov_deg=None):
  for _ in range(100):
    size = np.array([rng.uniform(2.5, 7.0), rng.uniform(2.3, 3.2), rng.uniform(3.0, 8.5)],
                    np.float32)
    camera = _camera(rng, size, height, width, fov_deg)
    corners = np.stack(np.meshgrid(*[[0.0, s] for s in size], indexing='ij'), -1).reshape(-1, 3)
    if np.linalg.norm(corners - camera.position, axis=-1).max() < MAX_CORNER_DISTANCE_M:
      return geo.Room(size), camera
  raise RuntimeError('could not draw a room within the depth limit')


def _against_wall(rng, size, half):
  """Centre (x, z) and yaw that put a box's back (its local z side) flat on a random wall."""
  w, _, d = size
  wall = rng.integers(4)
  along = lambda extent: rng.uniform(half[0], max(half[0], extent - half[0]))
  if wall == 0:
    return np.array([along(w), d - half[2]]), 0.0
  if wall == 1:
    return np.array([along(w), half[2]]), np.pi
  if wall == 2:
    return np.array([half[2], along(d)]), np.pi / 2
  return np.array([w - half[2], along(d)]), -np.pi / 2


def _furniture(rng, size):
  """One random piece of furniture as a list of (primitive, material) pairs."""
  w, h, d = size
  kind = rng.choice(['cabinet', 'table', 'bed', 'box', 'shelf', 'picture', 'cylinder',
                     'sphere'], p=[0.2, 0.15, 0.1, 0.15, 0.1, 0.1, 0.12, 0.08])
  mat = _object_material(rng)
  free_xz = lambda margin: np.array([rng.uniform(margin, w - margin),
                                     rng.uniform(margin, d - margin)])
  if kind in ('cabinet', 'bed'):
    if kind == 'cabinet':
      half = np.array([rng.uniform(0.25, 0.75), rng.uniform(0.4, 1.05), rng.uniform(0.18, 0.3)])
    else:
      half = np.array([rng.uniform(0.5, 1.0), rng.uniform(0.2, 0.3), rng.uniform(0.4, 1.0)])
    xz, yaw = _against_wall(rng, size, half)
    return [(geo.Box([xz[0], half[1], xz[1]], half, yaw), mat)]
  if kind in ('shelf', 'picture'):
    depth = rng.uniform(0.1, 0.2) if kind == 'shelf' else 0.015
    half = np.array([rng.uniform(0.2, 0.7), rng.uniform(0.02, 0.35), depth])
    xz, yaw = _against_wall(rng, size, half)
    y = rng.uniform(0.9, h - 0.4)
    return [(geo.Box([xz[0], y, xz[1]], half, yaw), mat)]
  if kind == 'table':
    top = np.array([rng.uniform(0.4, 0.9), 0.025, rng.uniform(0.3, 0.5)])
    top_y = rng.uniform(0.45, 0.8)
    xz, yaw = free_xz(1.0), rng.uniform(0, np.pi)
    rot = geo.yaw_matrix(yaw)
    parts = [(geo.Box([xz[0], top_y, xz[1]], top, yaw), mat)]
    leg_half = np.array([0.025, top_y / 2, 0.025])
    for sx in (-1, 1):
      for sz in (-1, 1):
        offset = rot @ np.array([sx * (top[0] - 0.05), 0.0, sz * (top[2] - 0.05)], np.float32)
        parts.append((geo.Box([xz[0] + offset[0], top_y / 2, xz[1] + offset[2]], leg_half,
                              yaw), mat))
    return parts
  if kind == 'box':
    half = rng.uniform(0.1, 0.35, size=3)
    xz = free_xz(0.4)
    return [(geo.Box([xz[0], half[1], xz[1]], half, rng.uniform(0, np.pi)), mat)]
  if kind == 'cylinder':
    radius, xz = rng.uniform(0.08, 0.35), free_xz(0.4)
    return [(geo.Cylinder(xz[0], xz[1], radius, 0.0, rng.uniform(0.3, 1.3)), mat)]
  radius, xz = rng.uniform(0.1, 0.4), free_xz(0.5)
  return [(geo.Sphere([xz[0], radius, xz[1]], radius), mat)]


def sample_scene(rng: np.random.Generator, height: int, width: int,
                 fov_deg: float | None = None) -> Scene:
  """Draws a room, a camera, 3-10 pieces of furniture, materials and a ceiling light."""
  room, camera = _room_and_camera(rng, height, width, fov_deg)
  size = room.size
  wall_hue = rng.random()
  walls = [_wall_material(rng, wall_hue)] * 4
  accent = rng.integers(4)
  if rng.random() < 0.3:
    walls[accent] = _wall_material(rng, rng.random())
  ceiling = Material('plain', _color(rng, sat=(0.0, 0.08), val=(0.8, 0.95)),
                     np.zeros(3, np.float32), 1.0)
  room_materials = [_floor_material(rng), ceiling] + walls
  light = np.array([rng.uniform(0.2, 0.8) * size[0], size[1] - rng.uniform(0.05, 0.3),
                    rng.uniform(0.3, 0.9) * size[2]], np.float32)
  solids = []
  for _ in range(rng.integers(3, 11)):
    piece = _furniture(rng, size)
    # A piece that would swallow the camera or the light is dropped whole.
    if any(p.contains(camera.position, _CAMERA_CLEARANCE_M) or p.contains(light, 0.1)
           for p, _ in piece):
      continue
    solids.extend(piece)
  return Scene(room=room, room_materials=room_materials, solids=solids, camera=camera,
               light_position=light, light_power=rng.uniform(0.8, 1.6),
               ambient=rng.uniform(0.12, 0.3), noise_perm=rng.permutation(256),
               noise_values=rng.random(256).astype(np.float32))
