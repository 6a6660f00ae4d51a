"""Prediction's network step run by an exported model: LiteRT or ONNX Runtime instead of JAX.

``Predictor(..., runtime='litert')`` and ``--mode=predict --runtime=litert`` export the loaded
weights once per network input size and run the file in place of the JAX forward pass. The
exported graph is ``network_function``: the same float32 input the JAX path feeds the network
(ImageNet-normalised, at the network size) and the raw outputs of ``steps.forward`` (bin edges,
half-size depth and the mirrored image's depth), so the finiteness check and the evaluation
post-processing that follow are the JAX path's own and the depth is JAX's up to rounding.
(``python -m adabins_jax.export`` writes a different graph, uint8 in and post-processed depth
at the network size out, for use without this project.)

Files are cached under ``default_cache_dir()`` (or a given folder), named by a hash of the
weights, the model config, the size, batch and flip averaging, so a second run with the same
weights loads the file instead of exporting again. A cached file that fails to load (cut
short by a full disk, damaged, written by another version of a runtime) is deleted and
exported again, with a warning, rather than failing the run.
"""

from __future__ import annotations

from collections.abc import Sequence
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import pathlib

from absl import logging
from flax import nnx
import jax
import numpy as np

from adabins_jax.export import exporter
from adabins_jax.export import formats as export_formats
from adabins_jax import files
from adabins_jax import steps

# The file format each runtime beyond JAX runs (export_formats).
EXPORT_FORMATS = {'onnxruntime': 'onnx', 'litert': 'tflite'}
RUNTIMES = ('jax', *EXPORT_FORMATS)
# Packages each runtime needs, beyond JAX: to convert (TF, tf2onnx) and to run the file.
PACKAGES = {'onnxruntime': ('tensorflow', 'onnx', 'tf2onnx', 'onnxruntime'),
            'litert': ('tensorflow', 'ai_edge_litert')}
# Part of every cached file's key: change it when network_function changes what it computes.
_GRAPH_VERSION = 1


def check(runtime: str, what: str = 'runtime', *, packages: bool = True) -> None:
  """Raises ValueError if ``runtime`` is not in ``RUNTIMES``, ImportError if ``packages`` and
  some it needs are missing; ``what`` names the setting in the message ('--runtimes')."""
  if runtime not in RUNTIMES:
    raise ValueError(f'{what}: {runtime!r} is not one of {", ".join(RUNTIMES)}.')
  if not packages:
    return
  missing = [p for p in PACKAGES.get(runtime, ()) if importlib.util.find_spec(p) is None]
  if missing:
    raise ImportError(f'{what}={runtime} needs {", ".join(missing)}: install the export '
                      "extra, pip install 'adabins-jax[export]'.")


def default_cache_dir() -> pathlib.Path:
  """``$XDG_CACHE_HOME/adabins_jax/exported`` (``~/.cache/adabins_jax/exported`` when unset)."""
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return pathlib.Path(base) / 'adabins_jax' / 'exported'


def network_function(model: nnx.Module, flip_average: bool):
  """``fn(image) -> {'bin_edges', 'depth'[, 'depth_flipped']}``: ``steps.forward`` with the
  model's weights inside, on the normalised float32 (N, h, w, 3) network input."""
  graphdef, state = nnx.split(model)

  def fn(image):
    edges, depth, flipped = steps.forward(graphdef, state, image, flip_average=flip_average)
    outputs = {'bin_edges': edges, 'depth': depth}
    if flipped is not None:
      outputs['depth_flipped'] = flipped
    return outputs

  return fn


def _package_version() -> str:
  try:
    return importlib.metadata.version('adabins-jax')
  except importlib.metadata.PackageNotFoundError:
    return 'source'


def weights_key(model: nnx.Module, config, *parts: object) -> str:
  """A short hash of the model's weights, its config and ``parts``: the cached file's name."""
  digest = hashlib.sha256(json.dumps(
      [config.model.to_dict(), _GRAPH_VERSION, _package_version(), *map(str, parts)],
      sort_keys=True, default=str).encode())
  # Random-number state (dropout keys) does not change an eval-mode output.
  state = nnx.state(model, nnx.Not(nnx.RngState))
  for path, leaf in jax.tree_util.tree_leaves_with_path(state):
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(np.ascontiguousarray(leaf).tobytes())
  return digest.hexdigest()[:20]


class ExportedForward:
  """``forward(images) -> (bin_edges, depth, depth_flipped or None)`` as ``steps.forward``
  returns them, computed by the model exported for ``runtime``, one file per input size.

  The files have a fixed batch (the TFLite converter cannot lower a dynamic one): a call with
  fewer images is padded with zeros, one with more runs in chunks.
  """

  def __init__(self, model: nnx.Module, config, runtime: str, *, flip_average: bool,
               batch_size: int, cache_dir: str | os.PathLike | None = None):
    """Hashes the weights; nothing is exported until an input size is first seen.

    Args:
      model: The model with its weights, in eval mode; its convolutions are switched to
        ``exporter.EXPORT_CONV_IMPL`` (the model is only exported from then on).
      config: Its config.
      runtime: 'litert' or 'onnxruntime'.
      flip_average: Also run the mirrored image, as ``steps.forward`` does.
      batch_size: The exported files' batch.
      cache_dir: Folder of the exported files; None: ``default_cache_dir()``.
    """
    check(runtime)
    if runtime == 'jax':
      raise ValueError('ExportedForward runs an exported model; the JAX runtime needs none.')
    self.runtime, self.batch_size, self._flip_average = runtime, batch_size, flip_average
    self._format = EXPORT_FORMATS[runtime]
    self.cache_dir = pathlib.Path(cache_dir or default_cache_dir()).expanduser()
    exporter.use_plain_convolutions(model)
    self._fn = network_function(model, flip_average)
    self._key = weights_key(model, config, self._format, batch_size, flip_average)
    self._runners = {}

  def path_for(self, hw: Sequence[int]) -> pathlib.Path:
    """The cached file of network input size ``hw``."""
    h, w = hw
    return self.cache_dir / f'{self._key}-{h}x{w}-b{self.batch_size}.{self._format}'

  def _runner(self, hw: tuple[int, int]) -> export_formats.Runner:
    if hw not in self._runners:
      path = self.path_for(hw)
      load = export_formats.LOADERS[self._format]
      if path.exists():
        try:
          self._runners[hw] = load(path)
          return self._runners[hw]
        except Exception as e:  # pylint: disable=broad-except
          # Runtimes raise many types for a bad file; the file is only a cache.
          reason = (str(e).splitlines() or [''])[0]
          logging.warning('The cached %s does not load (%s: %s); deleting it and exporting '
                          'again.', path, type(e).__name__, reason)
          path.unlink(missing_ok=True)
      self._export(path, hw)
      self._runners[hw] = load(path)
    return self._runners[hw]

  def _export(self, path: pathlib.Path, hw: tuple[int, int]) -> None:
    logging.info('Exporting the network for %s at %dx%d to %s (once; cached).',
                 self.runtime, *hw, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = {'input.image': f'float32 [{self.batch_size}, {hw[0]}, {hw[1]}, 3] '
                                'ImageNet-normalised', 'flip_average': str(self._flip_average)}
    with files.atomic_path(path) as temporary:
      export_formats.write_all(self._fn, self._format, temporary, self.batch_size, hw,
                               signature, input_dtype=np.float32)

  def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    images = np.asarray(images, np.float32)
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'{self.runtime}: images must be (N, h, w, 3), got {images.shape}.')
    n, b = len(images), self.batch_size
    padded = -n % b
    if padded:
      images = np.concatenate([images, np.zeros((padded, *images.shape[1:]), np.float32)])
    run = self._runner(tuple(images.shape[1:3]))
    chunks = [run(images[i:i + b]) for i in range(0, len(images), b)]
    outputs = {k: np.concatenate([c[k] for c in chunks])[:n] for k in chunks[0]}
    return outputs['bin_edges'], outputs['depth'], outputs.get('depth_flipped')
