"""``Predictor``: depth for images in memory, with the numbers of ``--mode=predict``.

  >>> from adabins_jax import Predictor
  >>> predictor = Predictor('effnet_b5_256', weights='AdaBins_nyu.pt')
  >>> depth = predictor('photo.jpg')       # (H, W) float32 metres

``runtime='litert'`` or ``'onnxruntime'`` runs the network as an exported file (runtimes.py)
instead of JAX; docs/predict.md says when that is faster.
"""

from __future__ import annotations

from collections.abc import Sequence
import collections
import dataclasses
import os
from typing import Any

import numpy as np

from adabins_jax import checkpointing
from adabins_jax import compilation_cache
from adabins_jax import configs
from adabins_jax import network_input
from adabins_jax.inference import network
from adabins_jax.inference import camera as camera_lib
from adabins_jax.inference import focal as focal_lib
from adabins_jax.inference import photos
from adabins_jax.inference import runtimes
from adabins_jax import visualize


@dataclasses.dataclass
class Prediction:
  """One image's result.

  Attributes:
    depth: (H, W) float32 metres at the image's own size.
    bin_centers: (n_bins,) float32 metres, the adaptive bins of this image.
    colorized: (H, W, 3) uint8, ``depth`` coloured over the model's [min, max] depth.
    focal: The photo's focal length and its source (``focal.photo_focal``).
    depth_scale: What the network's depth was multiplied by: f_photo / f_train at the
      network input (1.0 without a focal length).
    intrinsics: Pinhole (fx, fy, cx, cy) in pixels of ``depth``: the photo's focal length
      when known, else the training camera's scaled to the image, as ``--ply`` uses them.
  """
  depth: np.ndarray
  bin_centers: np.ndarray
  colorized: np.ndarray
  focal: focal_lib.PhotoFocal = focal_lib.PhotoFocal(None, focal_lib.TRAINING)
  depth_scale: float = 1.0
  intrinsics: tuple[float, float, float, float] | None = None

  def points(self, fx: float | None = None, fy: float | None = None, cx: float | None = None,
             cy: float | None = None, *, flat: bool = False) -> np.ndarray:
    """The depth map back-projected to 3-D points, in metres, in the camera's frame.

    OpenCV's axes: x right, y down, z forward; pixel (u, v) at depth z is
    ((u - cx) z / fx, (v - cy) z / fy, z), as in the ``.ply`` files of ``--ply``.

    Args:
      fx, fy, cx, cy: Intrinsics in pixels of this image; None: ``self.intrinsics`` (``fy``
        defaults to ``fx`` and the principal point to the centre when only ``fx`` is given).
      flat: (N, 3) of the pixels with a finite positive depth instead of (H, W, 3).

    Raises:
      ValueError: an intrinsic is not positive and finite, or none is known.
    """
    given = (fx, fy, cx, cy)
    if all(v is None for v in given):
      if self.intrinsics is None:
        raise ValueError('points(): this Prediction holds no intrinsics; pass fx=...')
      fx, fy, cx, cy = self.intrinsics
    else:
      fx, fy, cx, cy = camera_lib.intrinsics_for(self.depth.shape, given)
    if not all(np.isfinite(v) for v in (fx, fy, cx, cy)) or min(fx, fy) <= 0:
      raise ValueError(f'points(): intrinsics must be finite with positive focal lengths, got '
                       f'fx={fx}, fy={fy}, cx={cx}, cy={cy}.')
    z = self.depth.astype(np.float32)
    v, u = np.mgrid[0:z.shape[0], 0:z.shape[1]].astype(np.float32)
    xyz = np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)
    if flat:
      return xyz[np.isfinite(z) & (z > 0)]
    return xyz


class Predictor:
  """An image in, a depth map out, in memory; ``--mode=predict`` without the files.

  >>> predictor = Predictor('effnet_b5_256', weights='AdaBins_nyu.pt')   # or workdir='runs/x'
  >>> depth = predictor(image)              # (H, W) float32 metres
  >>> depths = predictor([image1, image2])  # a list, batched by network input size
  >>> result = predictor.predict(image)     # .depth, .bin_centers, .colorized
  >>> depth = predictor(image, fx=1450.0)   # a photo's focal length in its own pixels

  A photo's focal length (``fx`` in pixels, ``fov_deg`` horizontal, or else its EXIF when the
  image is a path or a PIL image) rescales depth to that camera (focal.py); without one depth
  is the network's, for the training camera.

  Images are paths, PIL images or arrays (see ``photos.as_rgb``). The numbers are those
  of ``--mode=predict`` with the same options: the same network input size, flip averaging
  and post-processing. With ``runtime='litert'`` or ``'onnxruntime'`` the network runs as an
  exported file (``runtimes.ExportedForward``), within rounding of JAX's depth.

  Attributes:
    config: The model's config.
    source: Where its weights came from.
    camera: The training dataset's camera (``camera_lib.dataset_camera``), whose intrinsics
      ``camera_lib.intrinsics_for`` scales to a photo for a point cloud, as ``--ply`` does.
    runtime: What runs the network: 'jax', 'litert' or 'onnxruntime'.
  """

  def __init__(self, config, *, weights: str | None = None, workdir: str | None = None,
               checkpoint: str | None = None, flip_average: bool = True,
               size: str | tuple[int, int] | None = None, batch_size: int = 4,
               cmap: str = 'turbo', runtime: str = 'jax',
               runtime_cache: str | os.PathLike | None = None,
               allow_unverified_checkpoint: bool = False,
               compilation_cache_dir: str | os.PathLike | None = None):
    """Loads the model.

    Args:
      config: A shipped config's name ('demo'), a config file, or a ConfigDict.
      weights: A released PyTorch ``.pt``.
      workdir: A training run's folder (used when ``weights`` is None).
      checkpoint: Which of the workdir's checkpoints: 'best', 'latest' or a step; default
        the config's ``eval.checkpoint``.
      flip_average: Average with the mirrored image's prediction, as evaluation does.
      size: Network input 'HxW' for every image; None: chosen per image
        (``network_input.network_size``).
      batch_size: Images per network call.
      cmap: Colour map of ``Prediction.colorized``.
      runtime: What runs the network: 'jax', or 'litert' or 'onnxruntime' (the ``export``
        extra), which export the weights once per network input size at batch
        ``batch_size`` and run the file.
      runtime_cache: Folder of those files; None: ``runtimes.default_cache_dir()``.
      allow_unverified_checkpoint: Load a workdir step that has no ``checksums.json`` (its
        files cannot be checked) instead of refusing it.
      compilation_cache_dir: JAX's persistent compilation cache, so that a new Python session
        loads the compiled network instead of compiling it again; None: the command line's
        default folder (``compilation_cache.default_directory()``); '' turns it off, as
        ``--compilation_cache_dir=''`` does.
    """
    # Every program, small ones included: a session's first prediction waits on all of them.
    if not weights and not workdir:
      # Said in Python's terms: the command line's message names its flags instead.
      raise ValueError(f'Predictor({config!r}) needs trained weights: pass '
                       "workdir='<a training run>' or weights='<a released .pt>'.")
    compilation_cache.enable(compilation_cache.default_directory()
                             if compilation_cache_dir is None else compilation_cache_dir,
                             min_compile_time_s=0.0)
    if isinstance(config, (str, os.PathLike)):
      config = configs.load(os.fspath(config))
    if checkpoint is not None:
      config = config.copy_and_resolve_references()
      config.eval.checkpoint = str(checkpoint)
    if batch_size < 1:
      raise ValueError(f'Predictor: batch_size={batch_size} must be at least 1.')
    self._size = network_input.parse_size(size, 'predict: size')
    self._batch_size, self._cmap = batch_size, cmap
    runtimes.check(runtime, 'Predictor: runtime')
    if cmap not in visualize.COLORMAPS:
      raise ValueError(f'Predictor: unknown colour map {cmap!r}; choose one of '
                       f'{visualize.COLORMAPS}.')
    self.config = config
    self.camera = camera_lib.dataset_camera(config)
    self.train_fx_input_px = camera_lib.training_focal_px(config)
    model, self.source = checkpointing.load_model(
        config, workdir, weights, allow_unverified=allow_unverified_checkpoint)
    self.runtime = runtime
    self._network = network.DepthNetwork(model, config, flip_average, runtime=runtime,
                                         batch_size=batch_size, runtime_cache=runtime_cache)

  def predict_batch(self, images: Sequence[Any], *, fx: float | None = None,
                    fov_deg: float | None = None) -> list[Prediction]:
    """A Prediction per image, in order; images of one input size share network calls.

    ``fx`` (pixels) or ``fov_deg`` (horizontal degrees) apply to every image; without them each
    image's EXIF is read (focal.photo_focal).

    Raises:
      focal.FocalLengthError: ``fx`` or ``fov_deg`` is not a valid focal length.
    """
    if fx is not None:
      focal_lib.check_fx(fx)
    if fov_deg is not None:
      focal_lib.check_fov(fov_deg)
    rgbs = [photos.as_rgb(image) for image in images]
    focals = [focal_lib.photo_focal(image, rgb.shape[1], fx=fx, fov_deg=fov_deg)
              for image, rgb in zip(images, rgbs)]
    inputs = [self._network.input_for(rgb, self._size) for rgb in rgbs]
    results: list[Prediction | None] = [None] * len(rgbs)
    groups = collections.defaultdict(list)
    for i, x in enumerate(inputs):
      groups[x.shape].append(i)
    for indices in groups.values():
      for start in range(0, len(indices), self._batch_size):
        chunk = indices[start:start + self._batch_size]
        outputs = self._network.run([inputs[i] for i in chunk],
                                    [rgbs[i].shape[:2] for i in chunk], self._batch_size)
        for i, (depth, centres) in zip(chunk, outputs):
          if isinstance(depth, Exception):
            raise ValueError(f'image {i}: {depth}')
          scale = focal_lib.depth_scale(focals[i].fx_px, rgbs[i].shape[1], inputs[i].shape[1],
                                        self.train_fx_input_px)
          if scale != 1.0:
            depth, centres = depth * np.float32(scale), centres * np.float32(scale)
          colour = visualize.colorize_depth(depth, *self._network.depth_range, self._cmap)
          intrinsics = camera_lib.intrinsics_for(
              depth.shape, camera_lib.with_photo_focal((None,) * 4, focals[i].fx_px),
              camera=self.camera)
          results[i] = Prediction(depth, centres, colour, focals[i], scale, intrinsics)
    return results

  def predict(self, image, *, fx: float | None = None,
              fov_deg: float | None = None) -> Prediction:
    """The Prediction of one image (``fx``, ``fov_deg``: see ``predict_batch``)."""
    return self.predict_batch([image], fx=fx, fov_deg=fov_deg)[0]

  def __call__(self, images, *, fx: float | None = None, fov_deg: float | None = None):
    """Depth in metres: one (H, W) array for one image, a list for a list of images."""
    if isinstance(images, (list, tuple)):
      return [p.depth for p in self.predict_batch(images, fx=fx, fov_deg=fov_deg)]
    return self.predict(images, fx=fx, fov_deg=fov_deg).depth
