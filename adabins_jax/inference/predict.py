"""Depth for your own photos: ``--mode=predict``.

From a training run (its best checkpoint, or ``config.eval.checkpoint``) or a released PyTorch
``.pt``::

  python -m adabins_jax.main --mode=predict --config=configs/unet128.py \\
      --workdir=runs/unet128 --input='photos/*.jpg' --output=depth/
  python -m adabins_jax.main --mode=predict --config=configs/effnet_b5_256.py \\
      --weights=AdaBins_nyu.pt --input=photos/ --output=depth/ --strip --ply

Each image is resized to the scale the model learned (its frames, ``data.frame_size``, x
``data.input_scale``; see network_input.py) at its own aspect, predicted with flip averaging like
the evaluation protocol, and the depth resized back to the image's size. Images whose network
inputs have the same size are batched, so the model compiles once per size. Unreadable files are
reported and skipped; the run then exits non-zero. Files written per image: see
``output_files.write_outputs``. Video clips among the inputs (``input_files.is_video``) are
predicted frame by frame by inference/video.py.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import collections
import concurrent.futures
import dataclasses
import os
import pathlib
import time
from typing import Any

from absl import logging
from flax import nnx
import numpy as np
import tqdm

from adabins_jax import checkpointing
from adabins_jax import network_input
from adabins_jax.datasets import nyu
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import focal as focal_lib
from adabins_jax.inference import input_files
from adabins_jax.inference import network
from adabins_jax.inference import output_files
from adabins_jax.inference import photos
from adabins_jax.inference import video as predict_video
from adabins_jax.inference import runtimes


@dataclasses.dataclass
class PredictOptions:
  """What to predict and what to write; the ``predict_flags`` say what each field means.

  ``size`` is the network input (h, w) or 'HxW' for every image (None: chosen per image by
  ``network_input.network_size``); ``intrinsics`` is (fx, fy, cx, cy), None entries defaulted
  (``camera_lib.intrinsics_for``; all None: the model's training dataset's camera, scaled, see
  ``camera_lib.dataset_camera``); its fx, else ``fov_deg`` (horizontal degrees), else each
  photo's EXIF, rescales depth to the photo's camera (focal.py). ``frames``: a clip's depth as one .npy per frame instead of
  one .npz (``predict_video``). ``runtime``: 'jax', or 'litert' or 'onnxruntime', which run
  the network as an exported file cached in ``runtime_cache`` (``runtimes.ExportedForward``).
  """
  inputs: str | Sequence[str]
  output: str
  input_list: str | None = None
  weights: str | None = None
  batch_size: int = 1
  flip_average: bool = True
  size: str | tuple[int, int] | None = None
  per_image_range: bool = False
  cmap: str = 'turbo'
  strip: bool = False
  ply: bool = False
  ply_stride: int = 1
  intrinsics: tuple[float | None, ...] = (None, None, None, None)
  fov_deg: float | None = None
  frames: bool = False
  runtime: str = 'jax'
  runtime_cache: str | None = None
  allow_unverified_checkpoint: bool = False
  allow_partial_video: bool = False

  def __post_init__(self):
    if not self.inputs and not self.input_list:
      raise ValueError('predict: --input (an image, a folder or a glob) or --input_list (a '
                       'file of paths) is required.')
    if not self.output:
      raise ValueError('predict: --output is required (a folder for the depth maps).')
    if self.batch_size < 1 or self.ply_stride < 1:
      raise ValueError(f'predict: batch_size={self.batch_size} and ply_stride='
                       f'{self.ply_stride} must be at least 1.')
    self.size = network_input.parse_size(self.size, 'predict: size')
    if len(self.intrinsics) != 4:
      raise ValueError(f'predict: intrinsics must be (fx, fy, cx, cy), got {self.intrinsics}.')
    camera_lib.intrinsics_for(nyu.FRAME_HW, self.intrinsics)  # Fails early on a bad combination.
    if self.intrinsics[0] is not None:
      focal_lib.check_fx(self.intrinsics[0], 'predict: fx')
    if self.fov_deg is not None:
      focal_lib.check_fov(self.fov_deg)
    runtimes.check(self.runtime, 'predict: runtime', packages=False)


@dataclasses.dataclass
class PredictSummary:
  """What a prediction run did: files written per input, failures with reasons, time taken.

  ``noun`` names the inputs: 'images', or 'files' when clips are among them; a rate of
  files would mean little then, so each clip logs its own frames per second instead.
  """
  written: dict[str, list[str]]
  failed: list[tuple[str, str]]
  seconds: float
  noun: str = 'images'

  def __str__(self) -> str:
    n, total = len(self.written), len(self.written) + len(self.failed)
    rate = n / self.seconds if self.seconds > 0 else float('nan')
    text = f'Depth for {n} of {total} {self.noun} in {self.seconds:.1f} s'
    text += f' ({rate:.2f} images/s).' if self.noun == 'images' else '.'
    if self.failed:
      text += f' {len(self.failed)} failed:' + output_files.format_failures(self.failed)
    return text


@dataclasses.dataclass
class _Image:
  path: pathlib.Path
  name: str
  rgb: np.ndarray  # (H, W, 3) in [0, 1] at the file's size
  network_input: np.ndarray  # (h, w, 3) ImageNet-normalised
  focal: focal_lib.PhotoFocal


class _Predictor:
  """Batches images by network input size, runs the network, writes each image's files."""

  def __init__(self, model: nnx.Module, config, options: PredictOptions):
    self.network = network.DepthNetwork(
        model, config, options.flip_average, runtime=options.runtime,
        batch_size=options.batch_size, runtime_cache=options.runtime_cache)
    self._options = options
    self._camera = camera_lib.dataset_camera(config)
    self._train_fx = camera_lib.training_focal_px(config)
    self._write_kw = dict(
        depth_range=self.network.depth_range, per_image_range=options.per_image_range,
        cmap=options.cmap, strip=options.strip, ply=options.ply, ply_stride=options.ply_stride,
        camera=self._camera)

  def prepare(self, path: pathlib.Path, name: str) -> _Image:
    """Reads and resizes one image and finds its focal length (runs in a reader thread)."""
    rgb = photos.read_image(path)
    focal = focal_lib.photo_focal(path, rgb.shape[1], fx=self._options.intrinsics[0],
                                  fov_deg=self._options.fov_deg)
    return _Image(path, name, rgb, self.network.input_for(rgb, self._options.size), focal)

  def _camera_of(self, item: _Image) -> tuple[float, tuple, dict]:
    """(depth scale, point-cloud intrinsics, the sidecar's facts) of one image."""
    scale = focal_lib.depth_scale(item.focal.fx_px, item.rgb.shape[1],
                                  item.network_input.shape[1], self._train_fx)
    intrinsics = camera_lib.with_photo_focal(self._options.intrinsics, item.focal.fx_px)
    info = focal_lib.describe(item.focal, self._camera.name, scale)
    info['intrinsics'] = camera_lib.intrinsics_for(item.rgb.shape[:2], intrinsics, self._camera)
    logging.info('%s: focal length %s (%s); %s camera assumed for training; depth x %.4f.',
                 item.name, 'unknown' if item.focal.fx_px is None
                 else f'{item.focal.fx_px:.1f} px', item.focal.source, self._camera.name, scale)
    return scale, intrinsics, info

  def run(self, batch: list[_Image]) -> Iterator[tuple[_Image, list[str] | Exception]]:
    """Predicts a batch of same-size images; yields each with its files or its error."""
    results = self.network.run([item.network_input for item in batch],
                                [item.rgb.shape[:2] for item in batch], self._options.batch_size)
    for item, (depth, _) in zip(batch, results):
      if isinstance(depth, Exception):
        yield item, depth
        continue
      try:
        scale, intrinsics, info = self._camera_of(item)
        yield item, output_files.write_outputs(
            self._options.output, item.name, item.rgb, depth * np.float32(scale),
            intrinsics=intrinsics, camera_info=info, **self._write_kw)
      except Exception as e:  # pylint: disable=broad-except
        yield item, e


def _read_ahead(pool: concurrent.futures.Executor, predictor: _Predictor,
                paths: Sequence[pathlib.Path], names: Sequence[str], depth: int):
  """(path, _Image or Exception) in order, reading up to ``depth`` images ahead in threads."""
  pending = collections.deque()
  for path, name in zip(paths, names):
    pending.append((path, pool.submit(predictor.prepare, path, name)))
    if len(pending) > depth:
      yield _result(*pending.popleft())
  while pending:
    yield _result(*pending.popleft())


def _result(path, future) -> tuple[pathlib.Path, Any]:
  try:
    return path, future.result()
  except Exception as e:  # pylint: disable=broad-except
    return path, e


@dataclasses.dataclass
class Inputs:
  """The images a run will read, their output names, and the specs that named nothing."""
  paths: list[pathlib.Path]
  names: list[str]
  problems: list[tuple[str, str]]


def find_inputs(options: PredictOptions) -> Inputs:
  """Finds the images ``options`` names (never this run's own outputs) and names their outputs."""
  literal = input_files.read_input_list(options.input_list) if options.input_list else ()
  paths, problems = input_files.find_images(options.inputs, literal=literal,
                                           output_dir=options.output)
  return Inputs(paths, input_files.output_names(paths), problems)


def planned_outputs(options: PredictOptions, inputs: Inputs) -> list[str]:
  """Every path the run would write, for the inputs ``find_inputs`` found."""
  paths = []
  for path, name in zip(inputs.paths, inputs.names):
    if input_files.is_video(path):
      paths += predict_video.output_paths(options.output, name, options.frames, options.strip)
    else:
      paths += output_files.image_output_paths(options.output, name, strip=options.strip,
                                               ply=options.ply)
  return paths


def prepare_output(output: str | os.PathLike) -> None:
  """Creates the output folder, or says why it cannot be written (before any model loads)."""
  output = os.fspath(output)
  if os.path.exists(output) and not os.path.isdir(output):
    raise ValueError(f'predict: --output={output} is a file, not a folder.')
  try:
    os.makedirs(output, exist_ok=True)
  except OSError as e:
    raise ValueError(f'predict: cannot create the output folder {output} ({e.strerror}).') from e
  if not os.access(output, os.W_OK | os.X_OK):
    raise ValueError(f'predict: the output folder {output} is not writable.')


def predict_images(model: nnx.Module, config, options: PredictOptions,
                   inputs: Inputs | None = None) -> PredictSummary:
  """Predicts depth for every image and video clip ``options.inputs`` names and writes the files.

  Never raises for one bad input: its error is recorded in the summary and the rest go on.

  Args:
    model: The model, with weights.
    config: Its config.
    options: What to read and write.
    inputs: From ``find_inputs(options)``, if already found.
  """
  start = time.perf_counter()
  inputs = inputs or find_inputs(options)
  failed, written = list(inputs.problems), {}
  clips = [input_files.is_video(path) for path in inputs.paths]
  prepare_output(options.output)
  predictor = _Predictor(model, config, options)
  images = [(p, n) for p, n, clip in zip(inputs.paths, inputs.names, clips) if not clip]
  if images:
    paths, names = zip(*images)
    _predict_image_files(predictor, paths, names, options, written, failed)
  for path, name, clip in zip(inputs.paths, inputs.names, clips):
    if not clip:
      continue
    try:
      # The images' network: a clip of a size already seen needs no new compile.
      written[os.fspath(path)] = predict_video.predict_clip(predictor.network, path, name,
                                                            options)
    except Exception as e:  # pylint: disable=broad-except
      reason = str(e) if isinstance(e, (ValueError, ImportError)) else f'{type(e).__name__}: {e}'
      failed.append((os.fspath(path), reason.removeprefix(f'{os.fspath(path)}: ')))
  return PredictSummary(written, failed, time.perf_counter() - start,
                        'files' if any(clips) else 'images')


def _predict_image_files(predictor: _Predictor, paths: Sequence[pathlib.Path],
                         names: Sequence[str], options: PredictOptions,
                         written: dict[str, list[str]], failed: list[tuple[str, str]]) -> None:
  """Reads, batches and predicts the images, adding to ``written`` and ``failed``."""
  buckets = {}

  def finish(batch, bar):
    for item, result in predictor.run(batch):
      if isinstance(result, Exception):
        failed.append((os.fspath(item.path), f'{type(result).__name__}: {result}'))
      else:
        written[os.fspath(item.path)] = result
      bar.update()

  with (concurrent.futures.ThreadPoolExecutor(2) as pool,
        tqdm.tqdm(total=len(paths), unit='img', desc='predict', mininterval=1.0) as bar):
    for path, item in _read_ahead(pool, predictor, paths, names, 2 * options.batch_size):
      if isinstance(item, Exception):
        failed.append((os.fspath(path), str(item).removeprefix(f'{os.fspath(path)}: ')))
        bar.update()
        continue
      bucket = buckets.setdefault(item.network_input.shape, [])
      bucket.append(item)
      if len(bucket) == options.batch_size:
        finish(buckets.pop(item.network_input.shape), bar)
    for bucket in buckets.values():
      finish(bucket, bar)


def predict(config, workdir: str | None, options: PredictOptions) -> PredictSummary:
  """The ``--mode=predict`` entry point: loads weights, predicts, prints a summary.

  Args:
    config: The model's config.
    workdir: A training run's folder (ignored when ``options.weights`` is given).
    options: What to read and write (main builds them from ``predict_flags``).

  Returns:
    The summary, if every image succeeded.

  Raises:
    SystemExit: with the summary as message (exit status 1) if any input failed.
  """
  # Inputs and output first: a typo must not cost a model load, nor leave an empty folder.
  inputs = find_inputs(options)
  if not inputs.paths:
    raise SystemExit('predict: no image to read:' + output_files.format_failures(inputs.problems))
  clips = [path for path in inputs.paths if input_files.is_video(path)]
  if clips:
    try:
      predict_video.check_available()
    except ImportError as e:
      raise SystemExit(f'predict: {clips[0]}: {e}') from None
  try:
    runtimes.check(options.runtime, '--runtime')
  except ImportError as e:
    raise SystemExit(f'predict: {e}') from None
  prepare_output(options.output)
  foreign = output_files.foreign_files(planned_outputs(options, inputs))
  if foreign:
    raise SystemExit(
        f'predict: {len(foreign)} files in {options.output} have the names of outputs but '
        'were not written by adabins-jax; nothing is replaced (move them, or choose another '
        '--output):' + ''.join(f'\n  {path}' for path in foreign))
  model, source = checkpointing.load_model(
      config, workdir, options.weights, allow_unverified=options.allow_unverified_checkpoint)
  logging.info('Predicting %d files (%d video clips) with %s.', len(inputs.paths), len(clips),
               source)
  summary = predict_images(model, config, options, inputs)
  if summary.failed:
    raise SystemExit(f'{summary}\nOutputs in {options.output}.')
  print(f'{summary} Outputs in {options.output}.')
  return summary

