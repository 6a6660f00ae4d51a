"""Files of ``--mode=predict``: finding and reading users' images, writing depth maps and clouds.

Host-side only (numpy and Pillow); predict.py runs the network between the two halves. Video
clips are found here too (by extension) but read and written by predict_video.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
import collections
import glob
import os
import pathlib
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from PIL import ImageOps

from adabins_jax import files
from adabins_jax import kitti
from adabins_jax import nyu
from adabins_jax import visualize

# Depth PNG scale: millimetres (NYU convention); KITTI's is kitti.DEPTH_PNG_SCALE.
MM_PER_M = 1000.0

_GLOB_CHARS = frozenset('*?[')


class Camera(NamedTuple):
  """A reference camera: pinhole (fx, fy, cx, cy) in pixels of a ``frame_hw`` frame."""
  intrinsics: tuple[float, float, float, float]
  frame_hw: tuple[int, int]
  name: str


NYU_CAMERA = Camera(nyu.INTRINSICS, nyu.FRAME_HW, 'NYU Kinect')
KITTI_CAMERA = Camera(kitti.INTRINSICS, kitti.INTRINSICS_FRAME_HW, 'KITTI')
# ``data.dataset`` names (before any '/config') whose frames come from KITTI's camera.
_KITTI_DATASETS = frozenset({'kitti_eigen'})


def _image_extensions() -> frozenset[str]:
  return frozenset(ext.lower() for ext in Image.registered_extensions())


# Containers ffmpeg reads that hold video; an input with one of these extensions is a clip
# (predict_video.py), never tried as a picture.
VIDEO_EXTENSIONS = frozenset({
    '.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts',
    '.wmv', '.flv', '.3gp', '.ogv'})


def is_video(path: str | os.PathLike) -> bool:
  """Whether ``path`` names a video clip (by its extension, as folders are searched)."""
  return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


# What write_outputs (and predict_video for clips) names its files: <name> + one of these.
# Found in the output folder, such files are this project's outputs and never taken as inputs.
OUTPUT_SUFFIXES = ('_depth.npy', '_depth.png', '_color.png', '_strip.png', '.ply',
                   '_depth.npz', '_depth.mp4')


def is_output_file(path: str | os.PathLike, output_dir: str | os.PathLike | None) -> bool:
  """Whether ``path`` is in ``output_dir`` and named like one of ``write_outputs``' files."""
  if output_dir is None:
    return False
  folder = os.path.dirname(os.path.abspath(path))
  return (os.path.basename(path).endswith(OUTPUT_SUFFIXES)
          and os.path.realpath(folder) == os.path.realpath(output_dir))


def read_input_list(path: str | os.PathLike) -> list[str]:
  """The paths in a list file: one per line, taken literally; blank lines and '#...' skipped."""
  try:
    with open(path, encoding='utf-8') as f:
      lines = [line.rstrip('\n') for line in f]
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f'{os.fspath(path)}: cannot read the input list ({e}).') from e
  return [line for line in lines if line.strip() and not line.lstrip().startswith('#')]


def _expand(spec: str, output_dir) -> tuple[list[str], str, bool]:
  """(files, reason if none, whether spec named one file) for one path, folder or glob."""
  spec = os.path.expanduser(spec)
  outputs_left_out = ' (outputs of this run not counted)' if output_dir is not None else ''
  if os.path.isdir(spec):
    extensions = _image_extensions() | VIDEO_EXTENSIONS
    found = [os.path.join(spec, n) for n in sorted(os.listdir(spec))
             if not n.startswith('.') and os.path.splitext(n)[1].lower() in extensions
             and os.path.isfile(os.path.join(spec, n))]
    found = [p for p in found if not is_output_file(p, output_dir)]
    return found, 'the folder holds no image or video file' + outputs_left_out, False
  if os.path.isfile(spec):  # An existing name is literal, even with glob characters in it.
    return [spec], '', True
  if _GLOB_CHARS & set(spec):
    found = [p for p in sorted(glob.glob(spec, recursive=True))
             if os.path.isfile(p) and not is_output_file(p, output_dir)]
    return found, 'the pattern matches no file' + outputs_left_out, False
  return [], 'no such file', True


def find_images(inputs: str | Sequence[str], *, literal: Sequence[str] = (),
                output_dir: str | os.PathLike | None = None
                ) -> tuple[list[pathlib.Path], list[tuple[str, str]]]:
  """Expands files, folders (their image and video files, not recursive) and globs into paths.

  An existing file or folder is always taken as it is named, glob characters and commas
  included. Any other string may hold several specs separated by commas.

  Args:
    inputs: one spec or several.
    literal: more paths, taken exactly as given (no comma splitting, no globbing), e.g. from
      ``read_input_list``.
    output_dir: the run's output folder: files in it named like ``write_outputs``' files are
      left out of folders and globs, and refused when named.

  Returns:
    (paths, problems): the files in the order given (folders and globs sorted, duplicates
    dropped), and (spec, reason) for each spec that names no usable file.
  """
  specs = [inputs] if isinstance(inputs, str) else list(inputs or ())
  expanded = []  # (spec, files, reason if none, whether the spec named one file)
  for spec in map(str, specs):
    parts = [spec] if os.path.exists(os.path.expanduser(spec)) else spec.split(',')
    for part in parts:
      part = part if os.path.exists(os.path.expanduser(part)) else part.strip()
      if part:
        expanded.append((part, *_expand(part, output_dir)))
  for path in literal:
    exists = os.path.isfile(os.path.expanduser(path))
    expanded.append((path, [os.path.expanduser(path)] if exists else [], 'no such file', True))
  paths, problems, seen = [], [], set()
  for spec, found, reason, named in expanded:
    if named and found and is_output_file(found[0], output_dir):
      found, reason = [], 'an output of this run (in --output, named like its depth files)'
    if not found:
      problems.append((os.path.expanduser(spec), reason))
    for p in found:
      key = os.path.realpath(p)
      if key not in seen:
        seen.add(key)
        paths.append(pathlib.Path(p))
  return paths, problems


def output_names(paths: Sequence[pathlib.Path]) -> list[str]:
  """A distinct output base name for every input path, short where nothing collides.

  1. The file's stem (``photos/kitchen.jpg`` -> ``kitchen``) when no other input has it.
  2. Else its path below the inputs' common folder, folders joined by '_' (``a/x.png`` ->
     ``a_x``), with the extension added where that is still shared (``x.png`` -> ``x_png``).
  3. A name still taken gets ``-2``, ``-3``, ... in input order.
  Names are compared ignoring case, as macOS and Windows file systems do.
  """
  def clashing(names):
    counts = collections.Counter(n.casefold() for n in names)
    return {n for n in names if counts[n.casefold()] > 1}

  absolute = [os.path.abspath(p) for p in paths]
  names = [pathlib.Path(p).stem for p in paths]
  clashes = clashing(names)
  if clashes:
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    relative = [os.path.relpath(a, root) for a in absolute]
    below = [os.path.splitext(r)[0].replace(os.sep, '_') for r in relative]
    names = [b if n in clashes else n for n, b in zip(names, below)]
    clashes = clashing(names)
    with_ext = [r.replace(os.sep, '_').replace('.', '_') for r in relative]
    names = [w if n in clashes else n for n, w in zip(names, with_ext)]
  taken, unique = set(), []
  for name in names:
    candidate, i = name, 1
    while candidate.casefold() in taken:
      i += 1
      candidate = f'{name}-{i}'
    taken.add(candidate.casefold())
    unique.append(candidate)
  return unique


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


def as_rgb(image) -> np.ndarray:
  """An image given as a path, a PIL image or an array, as (H, W, 3) float32 RGB in [0, 1].

  Arrays: (H, W, 3) or (H, W, 4) RGB(A) or (H, W) grey; uint8 (0-255), uint16 (0-65535) or
  float in [0, 1].

  Raises:
    ValueError: naming the shape, dtype or range that is not an image.
  """
  if isinstance(image, (str, os.PathLike)):
    return read_image(image)
  if isinstance(image, Image.Image):
    return _to_rgb(ImageOps.exif_transpose(image))
  array = np.asarray(image)
  if array.ndim == 2:
    array = array[..., None]
  if array.ndim != 3 or array.shape[-1] not in (1, 3, 4) or min(array.shape[:2]) < 1:
    raise ValueError(f'An image array must be (H, W), (H, W, 3) or (H, W, 4); got shape '
                     f'{array.shape}.')
  array = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
  if array.dtype == np.uint8:
    return array.astype(np.float32) / 255.0
  if array.dtype == np.uint16:
    return array.astype(np.float32) / 65535.0
  if not np.issubdtype(array.dtype, np.floating):
    raise ValueError(f'An image array must be uint8, uint16 or float in [0, 1]; got '
                     f'{array.dtype}.')
  if not np.isfinite(array).all() or array.min() < 0.0 or array.max() > 1.0:
    raise ValueError(f'A float image must hold finite values in [0, 1]; got '
                     f'[{np.nanmin(array)}, {np.nanmax(array)}] (uint8 data? pass it as uint8).')
  return array.astype(np.float32)


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


def dataset_camera(config: Any) -> Camera:
  """The camera of the frames a model's ``config.data.dataset`` holds: KITTI's or NYU's Kinect.

  Datasets other than KITTI's (NYU, synthetic rooms, your own RGB-D frames) get NYU's Kinect,
  the camera of the release's indoor models.
  """
  name = str(config.data.dataset).split('/')[0]
  return KITTI_CAMERA if name in _KITTI_DATASETS else NYU_CAMERA


def intrinsics_for(hw: Sequence[int], given: Sequence[float | None] = (None,) * 4,
                   camera: Camera = NYU_CAMERA) -> tuple[float, ...]:
  """Pinhole (fx, fy, cx, cy) in pixels of an image of size ``hw``.

  None given: ``camera``'s intrinsics (default NYU's Kinect at 480x640) scaled from its frame to
  the image, as the training dataset's camera for a model's photos (``dataset_camera``).
  Otherwise ``fx`` is needed; ``fy`` defaults to ``fx`` and the principal point to the image
  centre.
  """
  fx, fy, cx, cy = given
  h, w = hw
  if all(v is None for v in given):
    sy, sx = h / camera.frame_hw[0], w / camera.frame_hw[1]
    cfx, cfy, ccx, ccy = camera.intrinsics
    return cfx * sx, cfy * sy, ccx * sx, ccy * sy
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
                  camera: Camera = NYU_CAMERA) -> list[str]:
  """Writes one image's depth files into ``out_dir``; returns their paths.

  ``<name>_depth.npy`` (float32 metres), ``<name>_depth.png`` (uint16, see ``png_scale``),
  ``<name>_color.png`` (coloured over ``depth_range``, or the map's own range), and optionally
  ``<name>_strip.png`` (input | colour, titled, with the colour bar in metres) and
  ``<name>.ply``.

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
      the model's training dataset's (``dataset_camera``).
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
        p, visualize.prediction_strip(to_uint8(rgb), colour, vmin, vmax, cmap=cmap))
  if ply:
    writers[f'{base}.ply'] = lambda p: write_ply(
        p, depth, to_uint8(rgb), intrinsics_for(depth.shape, intrinsics, camera), ply_stride)
  return files.write_all(writers)


def format_failures(failures: Iterable[tuple[str, str]]) -> str:
  return ''.join(f'\n  {path}: {reason}' for path, reason in failures)
