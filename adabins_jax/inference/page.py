"""A web page for depth from photos: upload one, see its depth, click for metres, download.

  pip install -e ".[app]"
  python -m adabins_jax.inference.app --config=demo --workdir=runs/demo
  python -m adabins_jax.inference.app --config=effnet_b5_256 --weights=AdaBins_nyu.pt --share

Then open http://127.0.0.1:7860. The page shows the photo and its depth coloured over the
model's range (or that of an example room, rendered by this project: ``inference/examples``);
clicking the depth map reads the depth in metres at that pixel; the depth is
offered as float32 ``.npy`` metres, a 16-bit PNG (``output_files.png_scale`` units: millimetres,
or 1/256 m for KITTI-range models) and a coloured PLY point cloud. The numbers are those of
``adabins_jax.Predictor`` and ``--mode=predict``. The page's logic is in plain functions
(``predict_photo``, ``depth_at``, ``read_photo``); ``build_app`` only lays them out.

The page reads only files uploaded to it, photos above ``--max_pixels`` are downscaled first,
and the command keeps everything it writes in one temporary folder, removed when it stops
(Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import atexit
import dataclasses
import math
import os
import pathlib
import re
import shutil
import tempfile
import time
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image
from PIL import ImageOps

from adabins_jax import files
from adabins_jax.inference import app as app_command
from adabins_jax.inference import predictor as predictor_lib
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import examples as examples_lib
from adabins_jax.inference import focal as focal_lib
from adabins_jax import network_input
from adabins_jax.inference import output_files
from adabins_jax.inference import photos
from adabins_jax import visualize

# Larger photos get a strided point cloud: a 12-megapixel photo at stride 1 is a 180 MB PLY.
MAX_PLY_POINTS = 1_000_000
# Each photo's files live in their own folder, removed after this long (the page's state only
# points at them, so a click on a depth map older than this asks for a new upload).
KEEP_FILES_S = 3600
# Photos with more pixels are downscaled first (the command's --max_pixels).
MAX_PIXELS = app_command.MAX_PIXELS
_HINT = ('Upload a photo or pick an example; then click on the depth map to read the depth at '
         'a pixel.')
# The names of /predict's results in its API (gradio_client's view_api, /gradio_api/info): each
# output component's label, which gradio would otherwise make `value_<id>`.
PREDICT_RETURNS = ('Depth map', 'Depth files', 'Summary')


@dataclasses.dataclass
class DepthView:
  """What the page shows for one photo.

  Attributes:
    depth: (H, W) float32 metres at the photo's size.
    colorized: (H, W, 3) uint8, the depth coloured over the model's range.
    files: Paths of the ``.npy``, the 16-bit ``.png`` and the ``.ply``, in that order.
    summary: One line of markdown: the depth's range and what to do next.
  """
  depth: np.ndarray
  colorized: np.ndarray
  files: list[str]
  summary: str


def ply_stride(hw: tuple[int, int], max_points: int = MAX_PLY_POINTS) -> int:
  """The smallest pixel stride that keeps a point cloud of an ``hw`` image to ``max_points``."""
  return max(1, math.ceil(math.sqrt(hw[0] * hw[1] / max_points)))


def write_depth_files(out_dir: str | os.PathLike, name: str, rgb: np.ndarray,
                      depth: np.ndarray, max_depth_m: float,
                      camera: camera_lib.Camera = camera_lib.NYU_CAMERA,
                      intrinsics: tuple = (None,) * 4) -> list[str]:
  """Writes ``<name>_depth.npy``, ``<name>_depth.png`` and ``<name>.ply``; returns their paths.

  All or nothing (``files.write_all``), as ``--mode=predict --ply`` writes them, with its default
  intrinsics: those of the model's training dataset's camera (NYU's Kinect or KITTI's), scaled to
  the photo.

  Args:
    out_dir: An existing folder.
    name: Base name of the files.
    rgb: (H, W, 3) float photo in [0, 1], the point colours.
    depth: (H, W) float32 metres.
    max_depth_m: The model's range, which picks the PNG's units (``output_files.png_scale``).
    camera: The camera whose intrinsics, scaled to the photo, back-project the point cloud:
      the model's (``Predictor.camera``), unless
    intrinsics: (fx, fy, cx, cy) of the photo, None entries defaulted
      (``camera.intrinsics_for``).
  """
  base = os.path.join(os.fspath(out_dir), name)
  return files.write_all({
      f'{base}_depth.npy': lambda p: np.save(p, depth),
      f'{base}_depth.png': lambda p: visualize.save_png(
          p, visualize.depth_to_uint16(depth, output_files.png_scale(max_depth_m))),
      f'{base}.ply': lambda p: output_files.write_ply(
          p, depth, network_input.to_uint8(rgb),
          camera_lib.intrinsics_for(depth.shape, intrinsics, camera), ply_stride(depth.shape)),
  })


def _summary(depth: np.ndarray) -> str:
  return (f'Depth from {depth.min():.2f} m to {depth.max():.2f} m (median '
          f'{np.median(depth):.2f} m). Click on the depth map to read one pixel.')


def predict_photo(predictor: predictor_lib.Predictor, image: Any, out_dir: str | os.PathLike,
                  name: str = 'photo', *, fov_deg: float | None = None,
                  exif_from: Any = None) -> DepthView:
  """Depth of one photo, and its files written into ``out_dir``.

  Args:
    predictor: The model.
    image: A path, PIL image or array (``photos.as_rgb``).
    out_dir: An existing folder for the files.
    name: Base name of the files.
    fov_deg: The photo's horizontal field of view in degrees, if known.
    exif_from: The file (or PIL image) whose EXIF gives the focal length when ``fov_deg`` is
      None; default ``image``.

  Raises:
    ValueError: the image cannot be read, the field of view is not in (0, 180), or the
      network's depth is not finite.
  """
  rgb = photos.as_rgb(image)
  focal = focal_lib.photo_focal(image if exif_from is None else exif_from, rgb.shape[1],
                                fov_deg=fov_deg)
  result = predictor.predict(rgb, fx=focal.fx_px)
  intrinsics = (focal.fx_px, None, None, None)
  paths = write_depth_files(out_dir, name, rgb, result.depth,
                            float(predictor.config.model.max_depth_m), predictor.camera,
                            intrinsics)
  return DepthView(result.depth, result.colorized, paths,
                   f'{_summary(result.depth)} '
                   f'{focal_lib.note(focal, predictor.camera.name, result.depth_scale)}')


def depth_at(depth: np.ndarray | str | os.PathLike | None, x: int, y: int) -> str:
  """Markdown naming the depth at pixel column ``x``, row ``y``.

  Args:
    depth: The (H, W) depth in metres, or the ``.npy`` holding it; None before any photo.
    x, y: Pixel coordinates from the left and from the top.
  """
  if depth is None:
    return _HINT
  if not isinstance(depth, np.ndarray):
    try:
      depth = np.load(depth, mmap_mode='r')  # Reads one pixel, not the whole map.
    except OSError:
      return 'That depth map has expired; upload the photo again.'
  h, w = depth.shape
  if not (0 <= x < w and 0 <= y < h):
    return f'Pixel (x={x}, y={y}) is outside the {w}x{h} depth map.'
  return f'Depth at pixel (x={x}, y={y}): **{float(depth[y, x]):.3f} m**'


def upload_name(upload: Any) -> str:
  """A base name for the files of an upload: its file name's stem, made safe, or 'photo'."""
  original = upload.get('orig_name') if isinstance(upload, dict) else None
  if original is None and isinstance(upload, (str, os.PathLike)):
    original = os.fspath(upload)
  stem = re.sub(r'[^\w.-]+', '_', pathlib.Path(original or '').stem).strip('._')
  return stem[:80] or 'photo'


def request_folder(root: str | os.PathLike, keep_s: float = KEEP_FILES_S) -> str:
  """A new folder under ``root`` for one photo's files; removes those older than ``keep_s``."""
  now = time.time()
  for entry in os.scandir(root):
    try:
      if entry.is_dir() and now - entry.stat().st_mtime > keep_s:
        shutil.rmtree(entry.path, ignore_errors=True)
    except FileNotFoundError:  # Another request removed it first.
      pass
  return tempfile.mkdtemp(dir=root)


class PhotoTooLargeError(ValueError):
  """A photo with too many pixels to decode, or too narrow to downscale to the pixel cap."""


def fit_pixels(hw: tuple[int, int], max_pixels: int) -> tuple[int, int]:
  """The largest (rows, columns) of ``hw``'s aspect ratio within ``max_pixels``; ``hw`` if it fits.

  Raises:
    PhotoTooLargeError: a side would shrink below one pixel.
  """
  h, w = hw
  if h * w <= max_pixels:
    return hw
  scale = math.sqrt(max_pixels / (h * w))
  # Rounding down keeps the area within the cap.
  fitted = math.floor(h * scale), math.floor(w * scale)
  if min(fitted) < 1:
    raise PhotoTooLargeError(f'{w}x{h} is {h * w:,} pixels, more than this page takes '
                             f'({max_pixels:,}), and too narrow to downscale to that.')
  return fitted


def _decode_at(picture: Image.Image, hw: tuple[int, int]) -> Image.Image:
  """``picture`` (opened, not decoded) decoded upright at ``hw``, its stored (rows, columns)."""
  h, w = hw
  picture.draft(picture.mode, (w, h))  # JPEGs decode at 1/2..1/8 scale: faster, less memory.
  if picture.mode not in ('L', 'RGB', 'I', 'F'):
    # Palettes and 1-bit images resize only by nearest pixel; 16-bit keeps its precision as 'I'.
    picture = picture.convert('I' if picture.mode.startswith('I;16') else 'RGB')
  picture.load()
  stored = picture.size
  # In place: the full-size pixels are not copied, and the orientation tag goes, so
  # photos.as_rgb does not turn the result a second time.
  ImageOps.exif_transpose(picture, in_place=True)
  if picture.size != stored:
    h, w = w, h
  return picture.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=3.0)


def read_photo(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> tuple[np.ndarray, str]:
  """An image file as ``photos.read_image`` reads it, downscaled to ``max_pixels`` if larger.

  The size comes from the file's header, so a larger photo is never held at full size in
  float32, and one above Pillow's decompression-bomb limit is never decoded.

  Returns:
    (H, W, 3) float32 RGB in [0, 1], and a sentence saying it was downscaled (else '').

  Raises:
    PhotoTooLargeError: more pixels than Pillow decodes, or too narrow to downscale.
    ValueError: the file is not a readable image.
  """
  try:
    with Image.open(path) as picture:
      w, h = picture.size
      if Image.MAX_IMAGE_PIXELS and h * w > Image.MAX_IMAGE_PIXELS:
        raise PhotoTooLargeError(f'{w}x{h} is {h * w:,} pixels, more than this page decodes '
                                 f'({Image.MAX_IMAGE_PIXELS:,}).')
      fitted = fit_pixels((h, w), max_pixels)
      small = None if fitted == (h, w) else _decode_at(picture, fitted)
  except PhotoTooLargeError:
    raise
  except Image.DecompressionBombError as e:
    raise PhotoTooLargeError(str(e)) from None
  except (OSError, ValueError, SyntaxError) as e:
    raise ValueError(f'{os.fspath(path)}: not a readable image ({e}).') from e
  if small is None:
    return photos.read_image(path), ''
  rgb = photos.as_rgb(small)
  if rgb.shape[:2] != fitted:  # Turned upright: name the sizes as the page shows them.
    w, h = h, w
  return rgb, (f'Downscaled from {w}x{h} to {rgb.shape[1]}x{rgb.shape[0]} pixels (this page '
               f'takes at most {max_pixels:,}).')


def uploaded_path(upload: Any, upload_dir: str | os.PathLike) -> str:
  """The real path of an upload if it lies in ``upload_dir``, else a gr.Error.

  The page's API takes a file's path from the client as it stands, so without this any
  client could have the app read any image on the server's disk.
  """
  path = upload.get('path') if isinstance(upload, dict) else upload
  if not path or not isinstance(path, (str, os.PathLike)):
    raise gr.Error('No file arrived; upload the photo again.')
  try:
    # Symlinks and '..' resolved first: either could lead out of the folder.
    real = pathlib.Path(os.path.realpath(path))
    folder = pathlib.Path(os.path.realpath(upload_dir))
  except (OSError, ValueError):  # A NUL byte, for one.
    real = folder = None
  if real is None or real == folder or not real.is_relative_to(folder):
    raise gr.Error(f'{upload_name(upload)}: not an upload of this page. Upload the photo on the '
                   'page (or through /gradio_api/upload).')
  return os.fspath(real)


def _read_upload(upload: Any, upload_dir: str | os.PathLike,
                 max_pixels: int) -> tuple[np.ndarray, str]:
  """``read_photo`` of an upload (gradio's file data or a path), or a gr.Error a person reads."""
  path = uploaded_path(upload, upload_dir)
  try:
    return read_photo(path, max_pixels)
  except PhotoTooLargeError as e:
    raise gr.Error(f'{upload_name(upload)}: {e}') from None
  except ValueError:
    raise gr.Error(f'{upload_name(upload)}: not an image this page can read. Upload a photo '
                   '(JPEG, PNG, WebP, TIFF, ...).') from None


def _header(predictor: predictor_lib.Predictor) -> str:
  model = predictor.config.model
  return ('# AdaBins depth\n'
          f'Model `{model.name}` with {model.n_bins} bins, weights from `{predictor.source}`. '
          f'Colours span its range, {model.min_depth_m:g} m (blue, near) to '
          f'{model.max_depth_m:g} m (red, far). The downloads hold depth in metres (`.npy`), '
          f'a 16-bit PNG (x{output_files.png_scale(model.max_depth_m):g} per metre) and a '
          f'point cloud (`.ply`, {predictor.camera.name} camera).')


def build_app(predictor: predictor_lib.Predictor, files_root: str | None = None,
              max_pixels: int = MAX_PIXELS) -> gr.Blocks:
  """The page: photo and coloured depth side by side, the clicked depth, the files.

  Its API endpoint ``/predict`` takes an image file and returns (coloured depth image,
  [.npy, .png, .ply], summary text), named ``PREDICT_RETURNS`` in its API. Below the photo, the
  shipped example rooms (``examples_lib.paths``): gradio copies them into its cache as the page
  is built, so a click sends that copy to ``/predict`` as an upload would, and ``uploaded_path``
  takes it like one.

  Args:
    predictor: The model, shared by every visitor (gradio runs one prediction at a time).
    files_root: Folder for the files offered for download; default a new temporary folder.
    max_pixels: Photos with more pixels are downscaled to this many (``read_photo``).
  """
  if files_root is None:
    files_root = tempfile.mkdtemp(prefix='adabins-app-')
    atexit.register(shutil.rmtree, files_root, ignore_errors=True)

  def on_photo(upload, fov_deg=None):
    if upload is None:  # The photo was cleared.
      return None, None, None, _HINT
    # Where /gradio_api/upload puts files; `demo` is bound before any call arrives.
    rgb, note = _read_upload(upload, demo.GRADIO_CACHE, max_pixels)
    try:
      view = predict_photo(predictor, rgb, request_folder(files_root), upload_name(upload),
                           fov_deg=fov_deg or None,
                           exif_from=uploaded_path(upload, demo.GRADIO_CACHE))
    except ValueError as e:
      raise gr.Error(str(e)) from None
    return view.colorized, view.files, view.files[0], f'{view.summary} {note}'.strip()

  def on_click(npy_path, event: gr.SelectData):
    return depth_at(npy_path, *(int(v) for v in event.index[:2]))

  with gr.Blocks(title='AdaBins depth', delete_cache=(KEEP_FILES_S, KEEP_FILES_S)) as demo:
    gr.Markdown(_header(predictor))
    depth_file = gr.State(None)  # The .npy path: a click reads one pixel, not a stored map.
    with gr.Row():
      photo = gr.Image(label='Photo', type='filepath')
      coloured = gr.Image(label=PREDICT_RETURNS[0], format='png', interactive=False)
    # Filling the photo fires its change event, /predict, as an upload does.
    gr.Examples(examples_lib.paths(), photo, label='Example rooms (rendered by this project)')
    fov = gr.Number(label='Horizontal field of view in degrees, Enter to apply (optional; '
                    "default: the photo's EXIF, else the training camera)", value=None)
    # A markdown's label names it only in the API.
    reading = gr.Markdown(_HINT, label=PREDICT_RETURNS[2])
    downloads = gr.File(label=PREDICT_RETURNS[1], file_count='multiple', interactive=False)
    # Unpreprocessed: gradio's own image decoding would turn a non-image into a bare "Error";
    # _read_upload says what went wrong, and takes only uploads (uploaded_path).
    photo.change(on_photo, photo, [coloured, downloads, depth_file, reading], api_name='predict',
                 preprocess=False)
    # A second, private event: /predict keeps its one input for HTTP clients.
    fov.submit(on_photo, [photo, fov], [coloured, downloads, depth_file, reading],
               preprocess=False, api_visibility='private')
    coloured.select(on_click, depth_file, reading, api_visibility='private')
  return demo
