"""Files of ``--mode=predict``: finding and reading users' images, writing depth maps and clouds.

Host-side only (numpy and Pillow); predict.py runs the network between the two halves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import glob
import os
import pathlib

import numpy as np
from PIL import Image
from PIL import ImageOps

from adabins_jax import visualize

# NYU Depth V2's Kinect colour camera (the release's intrinsics), for a 480x640 frame.
NYU_INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)  # fx, fy, cx, cy in pixels
NYU_FRAME_HW = (480, 640)
# Depth PNG scale: millimetres (NYU convention); KITTI stores depth x 256.
MM_PER_M = 1000.0
KITTI_PNG_SCALE = 256.0
# Depth ranges beyond this many metres are outdoor (KITTI-like) and use the KITTI PNG scale.
KITTI_RANGE_ABOVE_M = 10.0

_GLOB_CHARS = frozenset('*?[')


def _image_extensions() -> frozenset[str]:
  return frozenset(ext.lower() for ext in Image.registered_extensions())


def find_images(inputs: str | Sequence[str]) -> tuple[list[pathlib.Path], list[tuple[str, str]]]:
  """Expands files, folders (their image files, not recursive) and globs into image paths.

  Args:
    inputs: one spec or several; a string may hold several separated by commas.

  Returns:
    (paths, problems): the files in the order given (folders and globs sorted, duplicates
    dropped), and (spec, reason) for each spec that names no file.
  """
  specs = [inputs] if isinstance(inputs, str) else list(inputs)
  specs = [s.strip() for spec in specs for s in str(spec).split(',') if s.strip()]
  extensions = _image_extensions()
  paths, problems, seen = [], [], set()
  for spec in specs:
    spec = os.path.expanduser(spec)
    if _GLOB_CHARS & set(spec):
      found = [p for p in sorted(glob.glob(spec, recursive=True)) if os.path.isfile(p)]
      reason = 'the pattern matches no file'
    elif os.path.isdir(spec):
      found = [os.path.join(spec, n) for n in sorted(os.listdir(spec))
               if not n.startswith('.') and os.path.splitext(n)[1].lower() in extensions
               and os.path.isfile(os.path.join(spec, n))]
      reason = 'the folder holds no image file'
    else:
      found = [spec] if os.path.isfile(spec) else []
      reason = 'no such file'
    if not found:
      problems.append((spec, reason))
    for p in found:
      key = os.path.realpath(p)
      if key not in seen:
        seen.add(key)
        paths.append(pathlib.Path(p))
  return paths, problems


def output_names(paths: Sequence[pathlib.Path]) -> list[str]:
  """Output base names: the file stem, or for clashing stems the path below the common folder."""
  stems = [p.stem for p in paths]
  clashes = {s for s in stems if stems.count(s) > 1}
  if not clashes:
    return stems
  absolute = [os.path.abspath(p) for p in paths]
  root = os.path.commonpath([os.path.dirname(a) for a in absolute])
  names = []
  for stem, path in zip(stems, absolute):
    if stem in clashes:
      stem = os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, '_')
    names.append(stem)
  return names


def read_image(path: str | os.PathLike) -> np.ndarray:
  """Reads any image Pillow can, upright (EXIF orientation applied), as RGB in [0, 1].

  Greyscale is repeated over the channels, alpha is dropped, palettes are expanded, and
  16-bit images keep their precision (divided by 65535).

  Returns:
    (H, W, 3) float32.

  Raises:
    ValueError: naming the file, if it cannot be read as an image.
  """
  try:
    with Image.open(path) as picture:
      picture.load()  # Truncated or corrupt data fails here, not later.
      picture = ImageOps.exif_transpose(picture)
      return _to_rgb(picture)
  except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
    raise ValueError(f'{os.fspath(path)}: not a readable image ({e}).') from e


def _to_rgb(picture: Image.Image) -> np.ndarray:
  if picture.mode.startswith('I;16') or picture.mode == 'I':
    grey = np.asarray(picture).astype(np.float32) / 65535.0  # 16-bit greyscale
  elif picture.mode == 'F':
    grey = np.asarray(picture, np.float32)
    grey = grey / max(float(np.nanmax(grey)), 1.0)  # Already [0, 1] unless it says otherwise.
  else:
    rgb = np.asarray(picture.convert('RGB'), np.float32) / 255.0
    return rgb
  grey = np.clip(np.nan_to_num(grey), 0.0, 1.0)
  return np.repeat(grey[..., None], 3, axis=-1)


def resize_image(rgb: np.ndarray, hw: Sequence[int]) -> np.ndarray:
  """Bilinear resize of an (H, W, 3) float image (antialiased when shrinking, as photos need)."""
  h, w = (int(s) for s in hw)
  if rgb.shape[:2] == (h, w):
    return rgb
  # A 2-D float32 array is a mode 'F' picture, which Pillow resizes in float precision.
  channels = [np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c], np.float32))
                         .resize((w, h), Image.Resampling.BILINEAR)) for c in range(3)]
  return np.stack(channels, axis=-1)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
  return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def intrinsics_for(hw: Sequence[int],
                   given: Sequence[float | None] = (None,) * 4) -> tuple[float, ...]:
  """Pinhole (fx, fy, cx, cy) in pixels of an image of size ``hw``.

  None given: NYU's Kinect intrinsics scaled from 480x640 to the image. Otherwise ``fx`` is
  needed; ``fy`` defaults to ``fx`` and the principal point to the image centre.
  """
  fx, fy, cx, cy = given
  h, w = hw
  if all(v is None for v in given):
    sy, sx = h / NYU_FRAME_HW[0], w / NYU_FRAME_HW[1]
    nfx, nfy, ncx, ncy = NYU_INTRINSICS
    return nfx * sx, nfy * sy, ncx * sx, ncy * sy
  if fx is None:
    raise ValueError(f'Camera intrinsics {given}: --fy/--cx/--cy need --fx as well.')
  fy = fx if fy is None else fy
  if not (fx > 0 and fy > 0):
    raise ValueError(f'Focal lengths must be positive, got fx={fx}, fy={fy}.')
  return (float(fx), float(fy), (w - 1) / 2 if cx is None else float(cx),
          (h - 1) / 2 if cy is None else float(cy))


def write_ply(path: str | os.PathLike, depth: np.ndarray, rgb: np.ndarray,
              intrinsics: Sequence[float], stride: int = 1) -> int:
  """Writes a coloured point cloud (binary PLY) of a depth map; returns the vertex count.

  Camera frame as OpenCV's: x right, y down, z forward, metres; pixel (u, v) at depth z goes
  to ((u - cx) z / fx, (v - cy) z / fy, z). Pixels without a finite positive depth are left out.
  """
  fx, fy, cx, cy = intrinsics
  z = np.asarray(depth, np.float64)[::stride, ::stride]
  v, u = np.mgrid[0:depth.shape[0]:stride, 0:depth.shape[1]:stride]
  keep = np.isfinite(z) & (z > 0)
  vertices = np.empty(int(keep.sum()), dtype=[
      ('x', '<f4'), ('y', '<f4'), ('z', '<f4'), ('red', 'u1'), ('green', 'u1'), ('blue', 'u1')])
  vertices['x'] = ((u - cx) * z / fx)[keep]
  vertices['y'] = ((v - cy) * z / fy)[keep]
  vertices['z'] = z[keep]
  colours = rgb[::stride, ::stride][keep]
  for i, c in enumerate(('red', 'green', 'blue')):
    vertices[c] = colours[:, i]
  header = ('ply\nformat binary_little_endian 1.0\n'
            f'comment adabins-jax depth, fx={fx:.4f} fy={fy:.4f} cx={cx:.4f} cy={cy:.4f}\n'
            f'element vertex {len(vertices)}\n'
            'property float x\nproperty float y\nproperty float z\n'
            'property uchar red\nproperty uchar green\nproperty uchar blue\nend_header\n')
  with open(path, 'wb') as f:
    f.write(header.encode('ascii'))
    f.write(vertices.tobytes())
  return len(vertices)


def png_scale(max_depth_m: float) -> float:
  """Depth PNG units per metre: 1000 (millimetres), or 256 for KITTI-range models."""
  return KITTI_PNG_SCALE if max_depth_m > KITTI_RANGE_ABOVE_M else MM_PER_M


def write_outputs(out_dir: str | os.PathLike, name: str, rgb: np.ndarray, depth: np.ndarray, *,
                  depth_range: tuple[float, float], per_image_range: bool = False,
                  cmap: str = 'turbo', strip: bool = False, ply: bool = False,
                  ply_stride: int = 1,
                  intrinsics: Sequence[float | None] = (None,) * 4) -> list[str]:
  """Writes one image's depth files into ``out_dir``; returns their paths.

  ``<name>_depth.npy`` (float32 metres), ``<name>_depth.png`` (uint16, see ``png_scale``),
  ``<name>_color.png`` (coloured over ``depth_range``, or the map's own range), and optionally
  ``<name>_strip.png`` (input | colour) and ``<name>.ply``.

  Args:
    out_dir: existing output folder.
    name: base name of the files.
    rgb: (H, W, 3) float input image in [0, 1].
    depth: (H, W) depth in metres at the input's size.
    depth_range: the model's (min_depth_m, max_depth_m).
    per_image_range, cmap, strip, ply, ply_stride, intrinsics: see predict.PredictOptions.
  """
  depth = np.asarray(depth, np.float32)
  if depth.shape != rgb.shape[:2]:
    raise ValueError(f'{name}: depth {depth.shape} and image {rgb.shape} differ in size.')
  base = os.path.join(os.fspath(out_dir), name)
  written = [f'{base}_depth.npy', f'{base}_depth.png', f'{base}_color.png']
  np.save(written[0], depth)
  visualize.save_png(written[1], visualize.depth_to_uint16(depth, png_scale(depth_range[1])))
  vmin, vmax = depth_range
  if per_image_range:
    vmin, vmax = float(depth.min()), float(depth.max())
    vmax = max(vmax, vmin * (1 + 1e-6) + 1e-6)  # A flat map still needs vmax > vmin.
  colour = visualize.colorize_depth(depth, vmin, vmax, cmap)
  visualize.save_png(written[2], colour)
  if strip:
    written.append(f'{base}_strip.png')
    visualize.save_png(written[-1], np.concatenate([to_uint8(rgb), colour], axis=1))
  if ply:
    written.append(f'{base}.ply')
    write_ply(written[-1], depth, to_uint8(rgb), intrinsics_for(depth.shape, intrinsics),
              ply_stride)
  return written


def format_failures(failures: Iterable[tuple[str, str]]) -> str:
  return ''.join(f'\n  {path}: {reason}' for path, reason in failures)
