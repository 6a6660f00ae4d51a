"""The network as prediction runs it: a photo's input, depth at the photo's size, the bins.

Shared by the predict command, ``Predictor`` and video: the same input, the same program and
the evaluation protocol's post-processing, so that one image gives one depth map whichever way
it came in.
"""

from __future__ import annotations

from collections.abc import Sequence
import functools
import os

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax import metrics as metrics_lib
from adabins_jax import network_input
from adabins_jax import steps
from adabins_jax.inference import runtimes

# The evaluation protocol's clip, average, resize and clip; compiled per output size.
_postprocess = jax.jit(metrics_lib.postprocess_prediction, static_argnums=(2, 3, 4))



class DepthNetwork:
  """Depth maps for batches of same-size network inputs, post-processed as evaluation does.

  ``runtime`` 'litert' or 'onnxruntime' runs the network as an exported file of batch
  ``batch_size`` (``runtimes.ExportedForward``) instead of JAX; the rest is the same.
  """

  def __init__(self, model: nnx.Module, config, flip_average: bool, *, runtime: str = 'jax',
               batch_size: int = 1, runtime_cache: str | os.PathLike | None = None):
    self.config = config
    self.depth_range = (float(config.model.min_depth_m), float(config.model.max_depth_m))
    if runtime == 'jax':
      graphdef, state = nnx.split(model)
      self._forward = functools.partial(
          steps.make_forward(graphdef, flip_average=flip_average), state)
    else:
      self._forward = runtimes.ExportedForward(model, config, runtime, flip_average=flip_average,
                                               batch_size=batch_size, cache_dir=runtime_cache)
    self._shapes_seen = set()

  def input_for(self, rgb: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """The normalised network input of an (H, W, 3) [0, 1] image, ``size`` or
    ``network_input.network_size``."""
    hw = size or network_input.network_size(rgb.shape[:2], self.config)
    image = network_input.network_image(rgb, hw, self.config.data.input_scale)
    return network_input.normalize(image).astype(np.float32)

  def run(self, inputs: Sequence[np.ndarray], image_hws: Sequence[tuple[int, int]],
          pad_to: int = 0) -> list[tuple[np.ndarray | Exception, np.ndarray]]:
    """(depth at the image's size, or the error; bin centres) for each same-size input.

    ``pad_to``: the batch is padded with zeros to this many images, so that a short last batch
    reuses the program compiled for full ones.
    """
    batch = np.stack(inputs).astype(np.float32)
    if pad_to > len(batch):
      batch = np.concatenate([batch, np.zeros((pad_to - len(batch), *batch.shape[1:]),
                                              np.float32)])
    if batch.shape not in self._shapes_seen:
      self._shapes_seen.add(batch.shape)
      logging.info('Compiling the network for input shape %s.', batch.shape)
    edges, pred, flipped = self._forward(batch)
    finite = jnp.all(jnp.isfinite(pred), axis=(1, 2, 3))
    if flipped is not None:
      finite &= jnp.all(jnp.isfinite(flipped), axis=(1, 2, 3))
    finite, edges = np.asarray(finite), np.asarray(edges)
    results = []
    for i, hw in enumerate(image_hws):
      centres = 0.5 * (edges[i, 1:] + edges[i, :-1])
      if not finite[i]:
        # Post-processing would clip NaN to the minimum depth: a plausible-looking lie.
        results.append((FloatingPointError(
            'the network predicted non-finite depth (NaN or inf); the weights or the image '
            'are broken. Nothing written.'), centres))
        continue
      depth = _postprocess(pred[i:i + 1], None if flipped is None else flipped[i:i + 1],
                           tuple(hw), *self.depth_range)
      results.append((np.asarray(depth)[0, ..., 0], centres))
    return results
