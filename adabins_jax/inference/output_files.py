"""What a prediction writes: depth as .npy and 16-bit PNG, a coloured map, a strip, a point cloud.

Every file of one input is written all or nothing (``files.write_all``).

Prediction never replaces a file it did not write. Each output folder holds ``MANIFEST``, the
names of the files prediction wrote there, one per line, appended before each file is renamed
into place; a target that exists and is not listed (a user's own ``room_depth.png`` beside
``room.png`` when the output folder is the input folder) is refused, naming it, while a rerun
of the same command replaces its own earlier outputs.
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
# The output folder's list of the files prediction wrote there (see the module docstring).
MANIFEST = '.adabins_jax_outputs'


class NotOurFileError(FileExistsError):
  """An output would replace a file that prediction did not write."""


def _ours(out_dir: str) -> set[str]:
  try:
    with open(os.path.join(out_dir, MANIFEST), encoding='utf-8') as f:
      return {line.rstrip('\n') for line in f if line.strip()}
  except FileNotFoundError:
    return set()


def foreign_files(paths: Iterable[str | os.PathLike]) -> list[str]:
  """The paths that exist but are not listed in their folder's ``MANIFEST``."""
  listed, foreign = {}, []
  for path in map(os.fspath, paths):
    folder, name = os.path.split(os.path.abspath(path))
    if folder not in listed:
      listed[folder] = _ours(folder)
    if os.path.lexists(path) and name not in listed[folder]:
      foreign.append(path)
  return foreign


def check_ours(paths: Sequence[str | os.PathLike]) -> None:
  """Refuses to write ``paths`` if any exists that prediction did not write.

  A file found under an output's name that this project did not write is refused rather than
  written under a free name: the outputs' names are the contract scripts read them by
  (``<name>_depth.npy`` beside ``<name>.png``), and a silently renamed output would look like a
  missing one.

  Raises:
    NotOurFileError: naming the first such file.
  """
  foreign = foreign_files(paths)
  if foreign:
    raise NotOurFileError(
        f'{foreign[0]} exists and was not written by adabins-jax; not replaced (move it, or '
        'choose another --output).')


def record(paths: Sequence[str | os.PathLike]) -> None:
  """Lists ``paths`` in their folders' ``MANIFEST``, once written and before their rename.

  Listing before the rename means a run killed in between leaves at worst a name listed
  without its file, never a file of ours that a rerun would refuse; listing only once written
  leaves a failed run's folder as it was.
  """
  by_folder = {}
  for path in map(os.fspath, paths):
    folder, name = os.path.split(os.path.abspath(path))
    by_folder.setdefault(folder, []).append(name)
  for folder, names in by_folder.items():
    new = [n for n in names if n not in _ours(folder)]
    if new:
      # Appending (one short write) keeps names other runs added meanwhile.
      with open(os.path.join(folder, MANIFEST), 'a', encoding='utf-8') as f:
        f.write(''.join(f'{n}\n' for n in new))


def image_output_paths(out_dir: str | os.PathLike, name: str, *, strip: bool = False,
                       ply: bool = False) -> list[str]:
  """The paths ``write_outputs`` writes for one image, in order."""
  base = os.path.join(os.fspath(out_dir), name)
  paths = [f'{base}_depth.npy', f'{base}_depth.png', f'{base}_color.png']
  return paths + ([f'{base}_strip.png'] if strip else []) + ([f'{base}.ply'] if ply else [])


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
  A file under one of these names that prediction did not write is never replaced
  (``check_ours``).

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
        p, depth, network_input.to_uint8(rgb),
        camera_lib.intrinsics_for(depth.shape, intrinsics, camera), ply_stride)
  if camera_info is not None:
    writers[f'{base}_camera.json'] = lambda p: files.write_bytes(
        p, json.dumps(camera_info, indent=2, sort_keys=True).encode())
  paths = list(writers)
  check_ours(paths)
  return files.write_all(writers, before_rename=lambda: record(paths))


def format_failures(failures: Iterable[tuple[str, str]]) -> str:
  return ''.join(f'\n  {path}: {reason}' for path, reason in failures)
