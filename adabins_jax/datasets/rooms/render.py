"""Renders a `scene.Scene` by ray casting every pixel at once with NumPy.

Shading is Lambertian from a ceiling point light with hard shadows (one shadow ray per pixel),
a weak fill light from the camera, darkened room corners and Blinn highlights on glossy
materials: the perspective of textures, shading and shadows are what a monocular network can
learn depth from. Depth is the exact z-depth of the first hit, then, as on a Kinect, set to 0
(invalid) on very dark pixels, on specular highlights, on the far side of depth edges and in a
few random holes.
"""

import numpy as np

from adabins_jax.datasets.rooms import scene as rooms_scene

# A surface whose pixel is darker than this (0-1, after the camera curve) has no depth.
_DARK_LEVEL = 0.04
# Specular intensity above which the structured-light pattern is lost.
_SPECULAR_LEVEL = 0.6
# Relative depth jump that counts as an edge, and the chance an edge pixel loses depth.
_EDGE_JUMP, _EDGE_DROP_PROB = 0.08, 0.4

# Shading, chosen by eye for plausible indoor pictures. Room corners are darkened by up to this
# fraction, fading over this distance in metres (a cheap ambient occlusion).
_CORNER_DARKENING, _CORNER_FADE_M = 0.35, 0.3
# The ceiling light's power falls off as 1 / (1 + (distance / this many metres)^2).
_LIGHT_FALLOFF_M = 3.0
# Strength of the fill light from the camera, relative to a surface facing it.
_FILL_LIGHT = 0.15
# Blinn highlights of glossy materials: strength and exponent (higher: smaller, sharper).
_SPECULAR_STRENGTH, _SPECULAR_EXPONENT = 0.8, 200
# Shadow rays start this far (metres) off the surface, so a surface does not shadow itself.
_SHADOW_OFFSET_M = 1e-3

# The camera: auto-exposure maps this percentile of the image's radiance to this level, the
# vignette darkens the corners by this fraction, then a display gamma and sensor noise (standard
# deviation, on the 0-1 scale).
_EXPOSURE_PERCENTILE, _EXPOSURE_LEVEL = 97, 0.92
_VIGNETTE = 0.25
_GAMMA = 2.2
_SENSOR_NOISE = 0.01


def _hash(tables, i, j):
  """Pseudo-random value in [0, 1) for integer lattice points (i, j)."""
  perm, values = tables
  return values[(perm[i & 255] + j) & 255]


def value_noise(tables, u, v, octaves=3):
  """Smooth fractal noise in [0, 1) at real coordinates (u, v) (lattice spacing 1)."""
  total, amplitude, norm = 0.0, 1.0, 0.0
  for _ in range(octaves):
    iu, iv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    fu, fv = u - iu, v - iv
    fu, fv = fu * fu * (3 - 2 * fu), fv * fv * (3 - 2 * fv)  # smoothstep: no lattice creases
    top = _hash(tables, iu, iv) * (1 - fu) + _hash(tables, iu + 1, iv) * fu
    bottom = _hash(tables, iu, iv + 1) * (1 - fu) + _hash(tables, iu + 1, iv + 1) * fu
    total = total + amplitude * (top * (1 - fv) + bottom * fv)
    norm += amplitude
    u, v, amplitude = u * 2.03, v * 2.03, amplitude * 0.5
  return total / norm


def albedo(material: rooms_scene.Material, uv: np.ndarray, tables) -> np.ndarray:
  """Linear RGB albedo (3, M) of `material` at texture coordinates `uv` (2, M) in metres."""
  u, v = uv[0] / material.scale, uv[1] / material.scale
  a, b = material.color_a[:, None], material.color_b[:, None]
  grain = value_noise(tables, u, v)
  if material.kind == 'plain':
    return a * (0.95 + 0.1 * grain)
  if material.kind == 'noise':
    return a + (b - a) * grain
  if material.kind == 'stripes':
    return np.where(np.floor(u) % 2 == 0, a, b) * (0.9 + 0.2 * grain)
  if material.kind == 'checker':
    parity = (np.floor(u) + np.floor(v)) % 2 == 0
    return np.where(parity, a, b) * (0.9 + 0.2 * grain)
  if material.kind == 'tiles':
    fu, fv = u - np.floor(u), v - np.floor(v)
    grout = (np.minimum(fu, 1 - fu) < 0.03) | (np.minimum(fv, 1 - fv) < 0.03)
    jitter = _hash(tables, np.floor(u).astype(np.int64), np.floor(v).astype(np.int64))
    return np.where(grout, b, a * (0.85 + 0.3 * jitter))
  # Planks: boards of width `scale` along v with their own shade and grain stretched along u.
  board = np.floor(v).astype(np.int64)
  shade = 0.75 + 0.5 * _hash(tables, board, board * 7)
  wood = value_noise(tables, u * 0.3, v * 6.0, octaves=2)
  return np.where(v - board < 0.04, b * 0.5, (a + (b - a) * wood) * shade)


def camera_rays(camera: rooms_scene.Camera) -> np.ndarray:
  """World directions (3, H*W) of the pixel centres, scaled to unit forward component."""
  xs = (np.arange(camera.width, dtype=np.float32) + 0.5 - camera.center_px[0]) / camera.focal_px
  ys = (np.arange(camera.height, dtype=np.float32) + 0.5 - camera.center_px[1]) / camera.focal_px
  x, y = np.meshgrid(xs, ys)
  r = camera.rotation
  return r[:, 0:1] * x.ravel() + r[:, 1:2] * y.ravel() + r[:, 2:3]


def _screen_rect(camera, corners):
  """Pixel rectangle (rows, cols slices) that holds the projection of `corners` (3, 8).

  None when a corner lies behind the camera, where the projection does not bound the solid.
  """
  cam = camera.rotation.T @ (corners - camera.position[:, None])
  if np.any(cam[2] < 1e-2):
    return None
  x = camera.focal_px * cam[0] / cam[2] + camera.center_px[0]
  y = camera.focal_px * cam[1] / cam[2] + camera.center_px[1]
  x0, x1 = max(int(np.floor(x.min())) - 1, 0), min(int(np.ceil(x.max())) + 1, camera.width)
  y0, y1 = max(int(np.floor(y.min())) - 1, 0), min(int(np.ceil(y.max())) + 1, camera.height)
  return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _camera_hits(camera, prim, rays):
  """`prim.intersect` for camera rays, tested only inside the solid's screen rectangle."""
  rect = _screen_rect(camera, prim.corners())
  if rect is None:
    return prim.intersect(camera.position, rays)
  t = np.full((camera.height, camera.width), np.inf, np.float32)
  inside = rays.reshape(3, camera.height, camera.width)[:, rect[0], rect[1]]
  t[rect] = prim.intersect(camera.position, inside.reshape(3, -1)).reshape(inside.shape[1:])
  return t.ravel()


def _first_hits(scene, origin, rays):
  """Nearest hit per ray: distance t, point, normal, albedo, glossiness."""
  t, room_surface = scene.room.intersect(origin, rays)
  which = np.zeros(t.shape, np.int32)  # 0: the room, k: solid k - 1
  for k, (prim, _) in enumerate(scene.solids, start=1):
    t_k = _camera_hits(scene.camera, prim, rays)
    closer = t_k < t
    t = np.where(closer, t_k, t)
    which[closer] = k
  points = origin[:, None] + t * rays
  normals = np.zeros_like(points)
  colours = np.zeros_like(points)
  glossy = np.zeros(t.shape, bool)
  tables = (scene.noise_perm, scene.noise_values)
  on_room = which == 0
  surface_id = room_surface[on_room]
  # Room surfaces: one material per surface, corners darkened as a cheap ambient occlusion.
  normals[:, on_room], uv = scene.room.surface(points[:, on_room], surface_id)
  room_colour = np.zeros((3, len(surface_id)), np.float32)
  for sid, material in enumerate(scene.room_materials):
    m = surface_id == sid
    room_colour[:, m] = albedo(material, uv[:, m], tables)
  corner = scene.room.corner_distance(points[:, on_room], surface_id)
  # A ray that slips through an edge of the room meets a wall plane ~1e9 m away (its depth is
  # invalid): its distance is hugely negative and would overflow exp.
  corner = np.maximum(corner, -1.0)
  colours[:, on_room] = room_colour * (1.0 - _CORNER_DARKENING * np.exp(-corner / _CORNER_FADE_M))
  for k, (prim, material) in enumerate(scene.solids, start=1):
    m = which == k
    if m.any():
      normals[:, m], uv = prim.surface(points[:, m])
      colours[:, m] = albedo(material, uv, tables)
      glossy[m] = material.glossy
  return t, points, normals, colours, glossy


def _shadowed(scene, points, normals, to_light):
  """Whether the segment from each point to the light is blocked by a solid."""
  blocked = np.zeros(points.shape[1], bool)
  origin = points + _SHADOW_OFFSET_M * normals
  for prim, _ in scene.solids:
    blocked |= prim.intersect(origin, to_light) < 1.0
  return blocked


def _shade(scene, rays, points, normals, colours, glossy):
  """Linear radiance (3, N) and the specular part (N,)."""
  to_light = scene.light_position[:, None] - points
  dist = np.sqrt((to_light * to_light).sum(axis=0))
  light_dir = to_light / dist
  cos_light = (normals * light_dir).sum(axis=0)
  lit = cos_light > 0
  visible = np.zeros(lit.shape, bool)
  visible[lit] = ~_shadowed(scene, points[:, lit], normals[:, lit], to_light[:, lit])
  falloff = scene.light_power / (1.0 + (dist / _LIGHT_FALLOFF_M) ** 2)
  direct = np.where(visible, cos_light * falloff, 0.0)
  view = -rays / np.sqrt((rays * rays).sum(axis=0))
  fill = _FILL_LIGHT * np.clip((normals * view).sum(axis=0), 0.0, None)
  radiance = colours * (scene.ambient + direct + fill)
  half = light_dir + view
  half /= np.sqrt((half * half).sum(axis=0))
  cos_half = np.clip((normals * half).sum(axis=0), 0.0, None)
  specular = np.where(glossy & visible,
                      _SPECULAR_STRENGTH * falloff * cos_half**_SPECULAR_EXPONENT, 0.0)
  return radiance + specular, specular


def _edge_pixels(depth, rng):
  """Far-side pixels of depth discontinuities, each kept with `_EDGE_DROP_PROB`."""
  edge = np.zeros(depth.shape, bool)
  for axis in (0, 1):
    a = np.moveaxis(depth, axis, 0)
    e = np.moveaxis(edge, axis, 0)
    jump = a[1:] - a[:-1]
    threshold = _EDGE_JUMP * np.minimum(a[1:], a[:-1])
    e[1:] |= jump > threshold
    e[:-1] |= -jump > threshold
  return edge & (rng.random(depth.shape) < _EDGE_DROP_PROB)


def _holes(shape, rng):
  """A few random small discs, like missing returns on a real sensor."""
  h, w = shape
  yy, xx = np.mgrid[:h, :w]
  mask = np.zeros(shape, bool)
  for _ in range(rng.integers(0, 6)):
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    radius = rng.uniform(1.0, 4.0) * w / 320.0
    mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
  return mask


def render(scene: rooms_scene.Scene, rng: np.random.Generator):
  """Renders `scene`.

  Args:
    scene: from `rooms_scene.sample_scene`.
    rng: draws the sensor noise and the invalid-depth pixels.

  Returns:
    image: uint8 (H, W, 3).
    depth: float32 (H, W), z-depth in metres, 0 where invalid.
  """
  camera = scene.camera
  shape = (camera.height, camera.width)
  rays = camera_rays(camera)
  t, points, normals, colours, glossy = _first_hits(scene, camera.position, rays)
  radiance, specular = _shade(scene, rays, points, normals, colours, glossy)
  exposure = _EXPOSURE_LEVEL / max(
      np.percentile(radiance.mean(axis=0), _EXPOSURE_PERCENTILE), 1e-6)
  yy, xx = np.mgrid[:camera.height, :camera.width]
  vignette = 1.0 - _VIGNETTE * (
      (xx - camera.width / 2) ** 2 + (yy - camera.height / 2) ** 2) / (camera.width / 2) ** 2
  linear = np.moveaxis(radiance.reshape(3, *shape), 0, -1)
  pixel = np.clip(linear * (exposure * vignette)[..., None], 0.0, 1.0) ** (1 / _GAMMA)
  pixel = pixel + rng.normal(0.0, _SENSOR_NOISE, pixel.shape)
  image = np.clip(np.round(pixel * 255.0), 0, 255).astype(np.uint8)
  depth = t.reshape(shape).astype(np.float32)
  invalid = ((pixel.mean(-1) < _DARK_LEVEL)
             | (specular.reshape(shape) * exposure > _SPECULAR_LEVEL)
             | _edge_pixels(depth, rng) | _holes(shape, rng))
  return image, np.where(invalid, 0.0, depth).astype(np.float32)


def render_example(seed: tuple[int, ...], height: int, width: int,
                   fov_deg: float | None = None):
  """Scene and rendering for one example: (image, depth, focal length in pixels).

  ``fov_deg``: the camera's horizontal field of view (default: a Kinect-like focal length);
  the room, its furniture and the camera's pose are the seed's either way.
  """
  rng = np.random.default_rng(seed)
  scene = rooms_scene.sample_scene(rng, height, width, fov_deg)
  image, depth = render(scene, rng)
  return image, depth, scene.camera.focal_px
