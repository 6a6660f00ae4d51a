"""Depth for video clips: ``--mode=predict --input=clip.mp4`` (any container ffmpeg reads).

  python -m adabins_jax.main --mode=predict --config=unet128 --workdir=runs/unet128 \\
      --input=clip.mp4 --output=depth/ --batch_size=8

Frames are decoded one at a time by ffmpeg (imageio), predicted ``batch_size`` at a time by
predict.py's network exactly as a photo of the same pixels would be, and written as they come,
so memory stays bounded however long the clip. For a clip ``<name>``:

  ``<name>_depth.npz``  one float16 array ``depth`` of shape (frames, H, W), metres;
  ``<name>_frames/``    with ``--frames``, instead: ``000000.npy``, ... one (H, W) float16 each;
  ``<name>_depth.mp4``  the depth coloured over the model's fixed [min, max] depth (never a
                        per-frame range, which would flicker), at the clip's frame rate;
  ``<name>_strip.mp4``  with ``--strip``: each frame as the photos' ``<name>_strip.png`` shows
                        a photo (``visualize.prediction_strip``: frame | coloured depth, titled,
                        the colour bar in metres below), 2 x the frame's width, same frame rate.

A clip's files appear under their names only once all of them are complete. A clip that
decodes to clearly fewer frames than its container states (``is_short``: a truncated or
damaged file) fails, naming both counts, unless ``allow_partial_video``, which keeps the depth
of the frames decoded with a warning.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
import concurrent.futures
import contextlib
import dataclasses
import math
import os
import shutil
import tempfile
import time
import zipfile

from absl import logging
import numpy as np
import tqdm

from adabins_jax import files
from adabins_jax import network_input
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import focal as focal_lib
from adabins_jax.inference import output_files
from adabins_jax.inference import photos
from adabins_jax import visualize

INSTALL_HINT = 'pip install "adabins-jax[video]"'
# imageio-ffmpeg starts ffmpeg with preexec_fn=os.setpgrp (so that Ctrl-C does not reach it)
# unless this is set. A preexec_fn makes CPython fork() the whole process and run Python code
# in the child before exec: unsafe once JAX's runtime threads exist (JAX warns 'os.fork() was
# called ... will likely lead to a deadlock'; imageio-ffmpeg#58 is such a hang). Without one,
# subprocess starts ffmpeg from C (vfork on Linux) and execs it at once: no Python code and no
# at-fork handler runs in a copy of this process. ffmpeg then gets Ctrl-C with us, which costs
# nothing: an interrupted clip's files are thrown away whatever ffmpeg does.
_NO_PREEXEC_FN_ENV = 'IMAGEIO_FFMPEG_NO_PREVENT_SIGINT'
# Frame rate of the coloured video when the container states none.
_DEFAULT_FPS = 30.0
_NPZ_KEY = 'depth'
_COPY_CHUNK_BYTES = 1 << 22
# The container's frame count is duration x fps where it states no count: rounding, and an
# audio track longer than the video, make it a little high, so only a shortfall beyond both
# of these counts as a truncated clip.
_SHORT_FRAMES, _SHORT_FRACTION = 2, 0.05


def check_available() -> None:
  """Raises ImportError, saying how to install them, if the video readers are missing."""
  # pylint: disable=g-import-not-at-top,unused-import
  try:
    import imageio.v2
    import imageio_ffmpeg
  except ImportError as e:
    raise ImportError(f'reading video needs imageio and imageio-ffmpeg: {INSTALL_HINT}') from e


def _imageio():
  """imageio.v2, set up to start ffmpeg without forking this process (see above).

  The setting is the process's from then on (os.environ), which every later reader and writer,
  in any thread, needs.
  """
  check_available()
  os.environ[_NO_PREEXEC_FN_ENV] = '1'
  import imageio.v2  # pylint: disable=g-import-not-at-top
  return imageio.v2


def _ffmpeg_reason(error: Exception) -> str:
  """The gist of an imageio/ffmpeg error, whose message carries ffmpeg's whole banner."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if len(lines) > 1:
    return f'{lines[0]}: {lines[-1]}'
  return lines[0] if lines else type(error).__name__


@dataclasses.dataclass
class ClipInfo:
  """What the container says about a clip.

  Attributes:
    fps: frames per second.
    frames: the container's frame count (``nframes``), or duration x fps, an estimate (None
      where unknown).
  """
  fps: float
  frames: int | None


def open_clip(path: str | os.PathLike) -> tuple[ClipInfo, Iterator[np.ndarray]]:
  """The clip's metadata and its frames, (H, W, 3) uint8, decoded lazily one at a time.

  Raises:
    ValueError: naming the file, if ffmpeg cannot read it as a video.
    ImportError: if imageio is missing.
  """
  iio = _imageio()
  try:
    reader = iio.get_reader(os.fspath(path), format='FFMPEG')
    meta = reader.get_meta_data()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{os.fspath(path)}: not a readable video ({_ffmpeg_reason(e)}).') from e
  fps = float(meta.get('fps') or 0.0)
  if not (math.isfinite(fps) and fps > 0):
    logging.warning('%s states no frame rate; writing its depth video at %s fps.', path,
                    _DEFAULT_FPS)
    fps = _DEFAULT_FPS
  duration = float(meta.get('duration') or 0.0)
  frames = round(duration * fps) if math.isfinite(duration) and duration > 0 else None
  nframes = meta.get('nframes')
  if isinstance(nframes, (int, float)) and math.isfinite(nframes) and nframes > 0:
    frames = int(nframes)
  return ClipInfo(fps, frames), _decode(reader, os.fspath(path))


def _decode(reader, path: str) -> Iterator[np.ndarray]:
  frames = reader.iter_data()
  index = 0
  try:
    while True:
      try:
        frame = next(frames)
      except StopIteration:
        return
      except Exception as e:  # pylint: disable=broad-except
        raise ValueError(f'{path}: frame {index} cannot be decoded ({_ffmpeg_reason(e)}).'
                         ) from e
      yield np.asarray(frame)
      index += 1
  finally:
    reader.close()


def _prepared_batches(network, frames: Iterable[np.ndarray], batch_size: int,
                      size: tuple[int, int] | None, keep_frames: bool):
  """(frame sizes, network inputs, uint8 frames or Nones) per ``batch_size`` frames.

  Decoded frames are kept (as uint8, with their batch) only with ``keep_frames``.
  """
  hws, inputs, kept = [], [], []
  for frame in frames:
    rgb = photos.as_rgb(frame)
    hws.append(rgb.shape[:2])
    inputs.append(network.input_for(rgb, size))
    kept.append(network_input.to_uint8(rgb) if keep_frames else None)
    if len(inputs) == batch_size:
      yield hws, inputs, kept
      hws, inputs, kept = [], [], []
  if inputs:
    yield hws, inputs, kept


def depth_frames(network, frames: Iterable[np.ndarray], batch_size: int,
                 size: tuple[int, int] | None = None, *, fx: float | None = None,
                 fov_deg: float | None = None) -> Iterator[np.ndarray]:
  """(H, W) float32 depth in metres of each frame, in order, ``batch_size`` per network call.

  The next batch is decoded and resized in a thread while the network runs on this one, so at
  most two batches of frames are held at once, whatever the clip's length.

  Args:
    network: a ``network.DepthNetwork`` (``input_for``, ``run``).
    frames: (H, W, 3) images (anything ``photos.as_rgb`` takes), consumed lazily.
    batch_size: frames per network call; a short last batch is padded to it.
    size: network input (h, w); None: ``network_input.network_size`` of the frame.
    fx: the clip's focal length in pixels of its frames, or
    fov_deg: its horizontal field of view: depth is rescaled from the training camera to it
      (focal.py); neither: the network's depth.

  Raises:
    ValueError: naming the frame, if the network predicts non-finite depth for it.
    focal.FocalLengthError: ``fx`` or ``fov_deg`` is not a valid focal length.
  """
  with contextlib.closing(_frames_and_depths(network, frames, batch_size, size, fx=fx,
                                             fov_deg=fov_deg, keep_frames=False)) as pairs:
    for _, depth in pairs:
      yield depth


def _frames_and_depths(network, frames: Iterable[np.ndarray], batch_size: int,
                       size: tuple[int, int] | None, *, fx: float | None,
                       fov_deg: float | None, keep_frames: bool
                       ) -> Iterator[tuple[np.ndarray | None, np.ndarray]]:
  """``depth_frames``, each depth map with its frame as (H, W, 3) uint8 if ``keep_frames``
  (else None)."""
  if fx is not None:
    focal_lib.check_fx(fx)
  if fov_deg is not None:
    focal_lib.check_fov(fov_deg)
  known = fx is not None or fov_deg is not None
  train_fx = camera_lib.training_focal_px(network.config) if known else None
  batches = _prepared_batches(network, frames, batch_size, size, keep_frames)
  index = 0
  with concurrent.futures.ThreadPoolExecutor(1) as pool:
    pending = pool.submit(next, batches, None)
    try:
      while (batch := pending.result()) is not None:
        pending = pool.submit(next, batches, None)
        hws, inputs, kept = batch
        for (depth, _), hw, x, frame in zip(network.run(inputs, hws, batch_size), hws, inputs,
                                            kept):
          if isinstance(depth, Exception):
            raise ValueError(f'frame {index}: {depth}')
          if known:
            clip_fx = fx if fov_deg is None else focal_lib.fx_from_fov(fov_deg, hw[1])
            depth = depth * np.float32(focal_lib.depth_scale(clip_fx, hw[1], x.shape[1], train_fx))
          yield frame, depth
          index += 1
    finally:
      # The generator may still be running in the thread; it can be closed only after.
      pending.cancel()
      concurrent.futures.wait([pending])
      batches.close()


class _DepthArchive:
  """``<name>_depth.npz`` holding ``depth`` (frames, H, W) float16, built frame by frame.

  The .npy header, which states the frame count, comes first but the count is known only at the
  end (the container's is an estimate), so frames go to an unnamed scratch file beside the
  output and are copied behind the header once all are in.
  """

  def __init__(self, path: str, folder: str):
    self._path = path
    self._scratch = tempfile.TemporaryFile(dir=folder)
    self._hw: tuple[int, ...] | None = None
    self._count = 0

  def append(self, depth: np.ndarray) -> None:
    if self._hw is None:
      self._hw = depth.shape
    elif depth.shape != self._hw:
      raise ValueError(f'frame {self._count} is {depth.shape}, the clip {self._hw}.')
    self._scratch.write(np.ascontiguousarray(depth, '<f2').tobytes())
    self._count += 1

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    try:
      if exc_type is None and self._count:
        self._write()
    finally:
      self._scratch.close()

  def _write(self) -> None:
    self._scratch.seek(0)
    header = {'descr': '<f2', 'fortran_order': False, 'shape': (self._count, *self._hw)}
    # Stored, not deflated, as np.savez does: the array can be read without inflating it.
    with (zipfile.ZipFile(self._path, 'w', zipfile.ZIP_STORED, allowZip64=True) as archive,
          archive.open(f'{_NPZ_KEY}.npy', 'w', force_zip64=True) as member):
      np.lib.format.write_array_header_1_0(member, header)
      shutil.copyfileobj(self._scratch, member, _COPY_CHUNK_BYTES)


class _FrameFolder:
  """``<name>_frames/NNNNNN.npy``: each frame's (H, W) float16 depth, written as it comes."""

  def __init__(self, folder: str):
    self._folder = folder
    self._count = 0
    os.makedirs(folder)

  def append(self, depth: np.ndarray) -> None:
    np.save(os.path.join(self._folder, f'{self._count:06d}.npy'), depth.astype(np.float16))
    self._count += 1

  def __enter__(self):
    return self

  def __exit__(self, *_):
    pass


class _ColourVideo:
  """An H.264 .mp4 of RGB frames (the depth's colours, or strips), encoded by ffmpeg as they
  are appended."""

  def __init__(self, path: str, fps: float):
    self._writer = _imageio().get_writer(
        path, format='FFMPEG', fps=fps, codec='libx264', pixelformat='yuv420p',
        macro_block_size=2, ffmpeg_log_level='error')

  def append(self, rgb: np.ndarray) -> None:
    # yuv420p needs even sides: repeat the last row or column rather than rescale every frame.
    pad = [(0, rgb.shape[0] % 2), (0, rgb.shape[1] % 2), (0, 0)]
    self._writer.append_data(np.pad(rgb, pad, mode='edge') if any(p[1] for p in pad) else rgb)

  def __enter__(self):
    return self

  def __exit__(self, exc_type, *_):
    if exc_type is None:
      self._writer.close()
      return
    # The file is thrown away; a failing ffmpeg must not hide the error that stopped it.
    with contextlib.suppress(Exception):
      self._writer.close()


@contextlib.contextmanager
def _atomic_folder(path: str) -> Iterator[str]:
  """``files.atomic_path`` for a folder; a folder already at ``path`` is replaced whole."""
  folder, name = os.path.split(os.path.abspath(path))
  temporary = os.path.join(folder, files.temporary_name(name))
  try:
    yield temporary
    if os.path.isdir(path):
      old = os.path.join(folder, files.temporary_name(name, '-old'))
      os.replace(path, old)
      os.replace(temporary, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(temporary, path)
  except BaseException:
    shutil.rmtree(temporary, ignore_errors=True)
    raise


def is_short(decoded: int, stated: int | None) -> bool:
  """Whether ``decoded`` frames fall short of the container's ``stated`` count beyond its
  estimation error; never when the container states none."""
  if stated is None:
    return False
  return stated - decoded > max(_SHORT_FRAMES, _SHORT_FRACTION * stated)


def output_paths(output: str | os.PathLike, name: str, frames: bool, strip: bool = False
                 ) -> list[str]:
  """[depth archive or per-frame folder, coloured video, strip video if ``strip``]: the paths a
  clip ``name`` is written to."""
  base = os.path.join(os.fspath(output), name)
  paths = [f'{base}_frames' if frames else f'{base}_depth.npz', f'{base}_depth.mp4']
  return paths + ([f'{base}_strip.mp4'] if strip else [])


def predict_clip(network, path: str | os.PathLike, name: str, options) -> list[str]:
  """Predicts every frame of one clip and writes its files (see the module docstring).

  Args:
    network: a ``network.DepthNetwork``, shared with the run's images (one compile per size).
    path: the clip.
    name: output base name.
    options: ``predict.PredictOptions`` (output, batch_size, size, cmap, frames, strip, and the
      clip's focal length: ``intrinsics[0]`` or ``fov_deg``).

  Returns:
    The paths written (``output_paths``).

  Raises:
    ValueError: naming the file if it cannot be decoded, or decodes short of the frames its
      container states (unless ``options.allow_partial_video``), or the frame whose depth is
      not finite; nothing is then left under the output names.
    output_files.NotOurFileError: an output name is taken by a file prediction did not write.
  """
  paths = output_paths(options.output, name, options.frames, options.strip)
  depth_path, video_paths = paths[0], paths[1:]
  output_files.check_ours(paths)
  info, frames = open_clip(path)
  start = time.perf_counter()
  with contextlib.ExitStack() as stack:
    depth_temporary = stack.enter_context(
        _atomic_folder(depth_path) if options.frames else files.atomic_path(depth_path))
    video_temporaries = [stack.enter_context(files.atomic_path(p)) for p in video_paths]
    # Entered after the temporary paths, so that they finish before anything is renamed.
    depth_sink = stack.enter_context(
        _FrameFolder(depth_temporary) if options.frames
        else _DepthArchive(depth_temporary, os.fspath(options.output)))
    # The strip video, if any, goes through the same writer as the coloured depth.
    videos = [stack.enter_context(_ColourVideo(p, info.fps)) for p in video_temporaries]
    colour_sink, strip_sink = videos[0], (videos[1] if options.strip else None)
    frames = stack.enter_context(contextlib.closing(frames))
    pairs = stack.enter_context(contextlib.closing(
        _frames_and_depths(network, frames, options.batch_size, options.size,
                           fx=options.intrinsics[0], fov_deg=options.fov_deg,
                           keep_frames=options.strip)))
    count = _write_frames(pairs, depth_sink, colour_sink, strip_sink, network.depth_range,
                          options.cmap,
                          tqdm.tqdm(total=info.frames, unit='frame', desc=name, mininterval=1.0))
    if not count:
      raise ValueError(f'{os.fspath(path)}: the clip holds no video frame.')
    if is_short(count, info.frames):
      shortfall = (f'{os.fspath(path)}: decoded {count} of the {info.frames} frames its '
                   'container states (a truncated or damaged file?)')
      if not options.allow_partial_video:
        raise ValueError(f'{shortfall}; nothing written. Pass --allow_partial_video to keep '
                         f'the depth of those {count} frames.')
      logging.warning('%s; keeping their depth (--allow_partial_video).', shortfall)
    output_files.record(paths)
  seconds = time.perf_counter() - start
  logging.info('%s: depth for %d frames in %.1f s (%.2f frames/s).', name, count, seconds,
               count / seconds if seconds > 0 else float('nan'))
  return paths


def _write_frames(pairs: Iterable[tuple[np.ndarray | None, np.ndarray]], depth_sink,
                  colour_sink, strip_sink, depth_range: Sequence[float], cmap: str,
                  bar: tqdm.tqdm) -> int:
  """Writes each (frame, depth map) to the sinks as it comes; returns how many there were.

  ``strip_sink`` (None: no strip video) gets ``visualize.prediction_strip`` of the frame and
  its colours, the picture ``--strip`` writes for a photo.
  """
  count = 0
  with bar:
    for frame, depth in pairs:
      depth_sink.append(depth)
      colour = visualize.colorize_depth(depth, *depth_range, cmap)
      colour_sink.append(colour)
      if strip_sink is not None:
        strip_sink.append(visualize.prediction_strip(frame, colour, *depth_range, cmap=cmap))
      count += 1
      bar.update()
  # The bar keeps the container's count: a clip that ends short shows how short.
  return count
