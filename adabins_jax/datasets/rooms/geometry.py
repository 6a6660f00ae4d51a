"""Vectorised ray casting against the solids of a synthetic room (NumPy, all rays at once).

World frame: x right, y up, z forward; the floor is y = 0. Arrays are component-major, (3, N),
so every arithmetic step runs over long contiguous rows. Rays are `o + t * d` with `o` (3,) or
(3, N) and `d` (3, N); camera rays carry a unit forward component, so their `t` is z-depth.
Every primitive answers `intersect(o, d)` -> `t` (N,) (`inf` on a miss) and `surface(p)` ->
(unit normals (3, M), texture coordinates in metres (2, M)) at hit points `p` (3, M).
"""

import dataclasses

import numpy as np

# Hits closer than this are ignored, so shadow rays do not hit their own surface.
_EPS = 1e-4


def _inverse(d: np.ndarray) -> np.ndarray:
  """1 / d, with zero components nudged so slab tests give +-inf instead of nan."""
  return 1.0 / np.where(np.abs(d) < 1e-9, np.float32(1e-9), d)


def _column(o: np.ndarray) -> np.ndarray:
  """A (3,) point as a (3, 1) column that broadcasts against (3, N) arrays."""
  return o[:, None] if o.ndim == 1 else o


def yaw_matrix(yaw: float) -> np.ndarray:
  """Rotation about the vertical axis; columns are the local axes in world coordinates."""
  c, s = np.cos(yaw), np.sin(yaw)
  return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]], np.float32)


@dataclasses.dataclass
class Room:
  """The inside of an axis-aligned box [0, size]: floor, ceiling and four walls.

  Surfaces are numbered 0 floor, 1 ceiling, 2 wall x=0, 3 wall x=W, 4 wall z=0, 5 wall z=D.
  """
  size: np.ndarray  # (3,) width x, height y, depth z in metres

  def intersect(self, o, d):
    """Distance to the room's boundary from a point inside it, and which surface is hit."""
    size = self.size[:, None]
    far = np.where(d > 0, size, np.float32(0.0))
    t_axis = (far - _column(o)) * _inverse(d)  # where each pair of parallel planes is left
    axis = np.where(t_axis[1] < t_axis[0], 1, 0)
    t = np.minimum(t_axis[0], t_axis[1])
    axis = np.where(t_axis[2] < t, 2, axis)
    t = np.minimum(t, t_axis[2])
    positive = np.choose(axis, d) > 0
    # Axis 0 (x) -> walls 2/3, axis 1 (y) -> floor 0 / ceiling 1, axis 2 (z) -> walls 4/5.
    return t, np.array([2, 0, 4])[axis] + positive

  def surface(self, p, surface_id):
    """Normals facing into the room and (horizontal, vertical) texture coordinates."""
    axis = np.array([1, 1, 0, 0, 2, 2])[surface_id]
    sign = np.where(surface_id % 2 == 0, 1.0, -1.0).astype(np.float32)
    normal = (np.arange(3)[:, None] == axis[None]) * sign
    # Floor/ceiling use (x, z); walls x=const use (z, y); walls z=const use (x, y).
    u = np.where(axis == 0, p[2], p[0])
    v = np.where(axis == 1, p[2], p[1])
    return normal.astype(np.float32), np.stack([u, v])

  def corner_distance(self, p, surface_id):
    """Distance from each point to the nearest edge of its surface (for corner darkening)."""
    axis = np.array([1, 1, 0, 0, 2, 2])[surface_id]
    gaps = np.minimum(p, self.size[:, None] - p)  # distances to the two planes of each axis
    gaps = np.where(np.arange(3)[:, None] == axis[None], np.inf, gaps)
    return gaps.min(axis=0)


def _box_corners(center, half, rot=None):
  """The 8 corners (3, 8) of a box, optionally rotated by `rot` about its centre."""
  signs = np.array(np.meshgrid([-1, 1], [-1, 1], [-1, 1], indexing='ij')).reshape(3, 8)
  offsets = signs * np.asarray(half, np.float32)[:, None]
  if rot is not None:
    offsets = rot @ offsets
  return np.asarray(center, np.float32)[:, None] + offsets


class _Solid:
  """Shared interface of the closed solids."""

  def contains(self, p, margin=0.0) -> bool:
    """Whether point `p` (3,) lies inside the solid grown by `margin` metres."""
    raise NotImplementedError

  def corners(self) -> np.ndarray:
    """Corners (3, 8) of a box that bounds the solid, to cull rays that cannot hit it."""
    raise NotImplementedError


@dataclasses.dataclass
class Box(_Solid):
  """A box of half-extents `half` (3,) centred at `center`, turned by `yaw` about y."""
  center: np.ndarray
  half: np.ndarray
  yaw: float = 0.0

  def __post_init__(self):
    self.center = np.asarray(self.center, np.float32)
    self.half = np.asarray(self.half, np.float32)
    self.rot = yaw_matrix(self.yaw)

  def _local(self, v):
    """World vectors (3, N) in the box's frame, R^T v written out (a 3x3 matmul is slower)."""
    c, s = self.rot[0, 0], self.rot[0, 2]
    return np.stack([c * v[0] - s * v[2], v[1], s * v[0] + c * v[2]])

  def _world(self, v):
    """Local vectors (3, N) in the world frame, R v."""
    c, s = self.rot[0, 0], self.rot[0, 2]
    return np.stack([c * v[0] + s * v[2], v[1], -s * v[0] + c * v[2]])

  def intersect(self, o, d):
    ol = self._local(_column(o) - self.center[:, None])
    inv = _inverse(self._local(d))
    half = self.half[:, None]
    t1 = (-half - ol) * inv
    t2 = (half - ol) * inv
    t_near = np.minimum(t1, t2).max(axis=0)
    t_far = np.maximum(t1, t2).min(axis=0)
    hit = (t_near <= t_far) & (t_near > _EPS)
    return np.where(hit, t_near, np.float32(np.inf))

  def surface(self, p):
    pl = self._local(p - self.center[:, None])
    axis = np.argmax(np.abs(pl) / self.half[:, None], axis=0)
    on_face = np.arange(3)[:, None] == axis[None]
    local_n = np.where(on_face, np.sign(pl), 0.0).astype(np.float32)
    # Texture on the face's two other local axes, from the box corner so patterns stay put.
    corner = pl + self.half[:, None]
    u = np.where(axis == 0, corner[2], corner[0])
    v = np.where(axis == 1, corner[2], corner[1])
    return self._world(local_n), np.stack([u, v])

  def corners(self):
    return _box_corners(self.center, self.half, self.rot)

  def contains(self, p, margin=0.0):
    pl = self.rot.T @ (np.asarray(p, np.float32) - self.center)
    return bool(np.all(np.abs(pl) < self.half + margin))


@dataclasses.dataclass
class Cylinder(_Solid):
  """An upright cylinder of `radius` over the footprint centre (x, z), from y0 to y1."""
  x: float
  z: float
  radius: float
  y0: float
  y1: float

  def intersect(self, o, d):
    o = _column(o)
    ox, oy, oz = o[0] - self.x, o[1], o[2] - self.z
    dx, dy, dz = d[0], d[1], d[2]
    a = np.maximum(dx * dx + dz * dz, 1e-12)
    b = 2.0 * (ox * dx + oz * dz)
    c = ox * ox + oz * oz - self.radius**2
    disc = b * b - 4.0 * a * c
    t_side = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    y_side = oy + t_side * dy
    side_ok = (disc >= 0) & (t_side > _EPS) & (y_side >= self.y0) & (y_side <= self.y1)
    t = np.where(side_ok, t_side, np.inf)
    inv_dy = _inverse(dy)
    for y_cap in (self.y0, self.y1):
      t_cap = (y_cap - oy) * inv_dy
      r2 = (ox + t_cap * dx) ** 2 + (oz + t_cap * dz) ** 2
      t = np.minimum(t, np.where((t_cap > _EPS) & (r2 <= self.radius**2), t_cap, np.inf))
    return t.astype(np.float32)

  def surface(self, p):
    rx, rz = p[0] - self.x, p[2] - self.z
    on_cap = np.minimum(np.abs(p[1] - self.y1), np.abs(p[1] - self.y0)) < 1e-3
    cap_sign = np.where(p[1] > 0.5 * (self.y0 + self.y1), 1.0, -1.0)
    zeros = np.zeros_like(rx)
    normal = np.where(on_cap, np.stack([zeros, cap_sign, zeros]),
                      np.stack([rx, zeros, rz]) / self.radius)
    u = np.where(on_cap, rx, np.arctan2(rz, rx) * self.radius)
    v = np.where(on_cap, rz, p[1])
    return normal.astype(np.float32), np.stack([u, v])

  def corners(self):
    center = [self.x, 0.5 * (self.y0 + self.y1), self.z]
    return _box_corners(center, [self.radius, 0.5 * (self.y1 - self.y0), self.radius])

  def contains(self, p, margin=0.0):
    r2 = (p[0] - self.x) ** 2 + (p[2] - self.z) ** 2
    return bool(r2 < (self.radius + margin) ** 2 and self.y0 - margin < p[1] < self.y1 + margin)


@dataclasses.dataclass
class Sphere(_Solid):
  """A sphere of `radius` centred at `center`."""
  center: np.ndarray
  radius: float

  def __post_init__(self):
    self.center = np.asarray(self.center, np.float32)

  def intersect(self, o, d):
    oc = _column(o) - self.center[:, None]
    a = (d * d).sum(axis=0)
    b = 2.0 * (oc * d).sum(axis=0)
    c = (oc * oc).sum(axis=0) - self.radius**2
    disc = b * b - 4.0 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a)
    return np.where((disc >= 0) & (t > _EPS), t, np.inf).astype(np.float32)

  def surface(self, p):
    n = (p - self.center[:, None]) / self.radius
    lon = np.arctan2(n[2], n[0]) * self.radius
    lat = np.arcsin(np.clip(n[1], -1.0, 1.0)) * self.radius
    return n.astype(np.float32), np.stack([lon, lat])

  def corners(self):
    return _box_corners(self.center, [self.radius] * 3)

  def contains(self, p, margin=0.0):
    return bool(np.sum((np.asarray(p) - self.center) ** 2) < (self.radius + margin) ** 2)
