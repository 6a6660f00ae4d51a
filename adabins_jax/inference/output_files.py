"""What a prediction writes: depth as .npy and 16-bit PNG, a coloured map, a strip, a point cloud.

Every file of one input is written all or nothing (``files.write_all``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import json
import os

import numpy as np

from adabins_jax import files
from adabins_jax import network_input
from adabins_jax import visualize
from adabins_jax.inference import camera as camera_lib
from adabins_jax.datasets import kitti
from adabins_jax.datasets import nyu


# Depth PNG scale: millimetres (NYU convention); KITTI's is kitti.DEPTH_PNG_SCALE.
MM_PER_M = 1000.0


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
  files.write_bytes(path, header.encode('ascii') + vertices.tobytes())
  return len(vertices)


def png_scale(max_depth_m: float) -> float:
  """Depth PNG units per metre: 1000 (millimetres), or 256 for KITTI-range models."""
  # Ranges beyond NYU's are outdoor (KITTI-like) ones.
  return kitti.DEPTH_PNG_SCALE if max_depth_m > nyu.MAX_DEPTH_M else MM_PER_M


def write_outputs(out_dir: str | os.PathLike, name: str, rgb: np.ndarray, depth: np.ndarray, *,
                  depth_range: tuple[float, float], per_image_range: bool = False,
                  cmap: str = 'turbo', strip: bool = False, ply: bool = False,
                  ply_stride: int = 1,
                  intrinsics: Sequence[float | None] = (None,) * 4,
                  camera: camera_lib.Camera = camera_lib.NYU_CAMERA,
                  camera_info: dict | None = None) -> list[str]:
  """Writes one image's depth files into ``out_dir``; returns their paths.

  ``<name>_depth.npy`` (float32 metres), ``<name>_depth.png`` (uint16, see ``png_scale``),
  ``<name>_color.png`` (coloured over ``depth_range``, or the map's own range), and optionally
  ``<name>_strip.png`` (input | colour, titled, with the colour bar in metres),
  ``<name>.ply`` and ``<name>_camera.json`` (``camera_info``: the camera assumed, where its
  focal length came from, the depth scale applied).

  All or nothing: every file is written under a temporary name first and renamed into place
  only once all of them are complete, so a failure (a full disk, say) leaves no partial file.

  Args:
    out_dir: existing output folder.
    name: base name of the files.
    rgb: (H, W, 3) float input image in [0, 1].
    depth: (H, W) depth in metres at the input's size, finite.
    depth_range: the model's (min_depth_m, max_depth_m).
    per_image_range, cmap, strip, ply, ply_stride, intrinsics: see predict.PredictOptions.
    camera: The camera whose intrinsics, scaled, fill in ``intrinsics`` when none is given:
      the model's training dataset's (``camera.dataset_camera``).
    camera_info: JSON-serialisable facts of the camera (``focal.describe``), or None for no
      sidecar.
  """
  depth = np.asarray(depth, np.float32)
  if depth.shape != rgb.shape[:2]:
    raise ValueError(f'{name}: depth {depth.shape} and image {rgb.shape} differ in size.')
  if not np.isfinite(depth).all():
    raise ValueError(f'{name}: the depth map holds non-finite values; nothing written.')
  base = os.path.join(os.fspath(out_dir), name)
  vmin, vmax = depth_range
  if per_image_range:
    vmin, vmax = float(depth.min()), float(depth.max())
    vmax = max(vmax, vmin * (1 + 1e-6) + 1e-6)  # A flat map still needs vmax > vmin.
  colour = visualize.colorize_depth(depth, vmin, vmax, cmap)
  writers = {
      f'{base}_depth.npy': lambda p: np.save(p, depth),
      f'{base}_depth.png': lambda p: visualize.save_png(
          p, visualize.depth_to_uint16(depth, png_scale(depth_range[1]))),
      f'{base}_color.png': lambda p: visualize.save_png(p, colour),
  }
  if strip:
    writers[f'{base}_strip.png'] = lambda p: visualize.save_png(
        p, visualize.prediction_strip(network_input.to_uint8(rgb), colour, vmin, vmax, cmap=cmap))
  if ply:
    writers[f'{base}.ply'] = lambda p: write_ply(
        p, depth, network_input.to_uint8(rgb), camera_lib.intrinsics_for(depth.shape, intrinsics, camera), ply_stride)
  if camera_info is not None:
    writers[f'{base}_camera.json'] = lambda p: files.write_bytes(
        p, json.dumps(camera_info, indent=2, sort_keys=True).encode())
  return files.write_all(writers)


def format_failures(failures: Iterable[tuple[str, str]]) -> str:
  return ''.join(f'\n  {path}: {reason}' for path, reason in failures)
