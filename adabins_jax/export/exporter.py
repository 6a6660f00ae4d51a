"""The network as an export serves it: the function, its signature and the export call.

The command line (``python -m adabins_jax.export``, see ``__main__``) parses and checks its
flags, then calls ``export``; ``options`` holds what an export can be asked for.

The exported graph takes what ``Predictor`` feeds the network, before normalisation: 'image',
uint8 RGB (N, h, w, 3) at the network size, and returns 'depth' (N, h, w) float32 metres
(clipped, flip-averaged unless --noflip_average, at the input's size) and 'bin_centers'
(N, n_bins) float32 metres: ``Predictor``'s network step, after its resize. docs/export.md
shows how to run the files without JAX.
"""

from __future__ import annotations

from collections.abc import Iterator
import os

from flax import nnx
import jax.numpy as jnp
import numpy as np

from adabins_jax.export import formats as export_formats
from adabins_jax.export import options as export_options
from adabins_jax import network_input
from adabins_jax import metrics as metrics_lib
from adabins_jax import steps
from adabins_jax.models import layers

# Defined without JAX in ``options``, for the command line to check first; here for callers.
FORMATS = export_options.FORMATS
ExportOptions = export_options.ExportOptions
check_format = export_options.check_format

# Exported graphs use XLA's plain convolutions. The Winograd and shifted-copy forms are
# rewrites tuned for XLA on CPUs; as plain ops they become one ONNX Conv or TFLite
# (DEPTHWISE_)CONV_2D each, which every runtime optimises for its own hardware.
EXPORT_CONV_IMPL = 'xla'


def default_size(config) -> tuple[int, int]:
  """The network input ``Predictor`` uses for a frame of the config's dataset: the input the
  model learned (``network_input.trained_input_size``, where the bins head allows it)."""
  return network_input.network_size(network_input.frame_size(config), config)


def use_plain_convolutions(model: nnx.Module) -> None:
  """Makes every convolution of ``model`` run as ``EXPORT_CONV_IMPL`` (see its comment)."""
  layers.set_conv_impls(model, depthwise_impl=EXPORT_CONV_IMPL, conv3x3_impl=EXPORT_CONV_IMPL)


def depth_function(model: nnx.Module, config, flip_average: bool = True):
  """``fn(image) -> {'depth', 'bin_centers'}`` with the model's weights inside.

  ``image`` is uint8 RGB (N, h, w, 3); the normalisation, flip averaging and the evaluation
  protocol's post-processing happen inside, as ``Predictor`` does them once it has resized an
  image to h x w.
  """
  graphdef, state = nnx.split(model)
  min_depth, max_depth = float(config.model.min_depth_m), float(config.model.max_depth_m)

  def fn(image):
    # As Predictor: [0, 1] by /255 (inference.photos.as_rgb), then ImageNet-normalised.
    x = network_input.normalize(image.astype(jnp.float32) / 255.0)
    # Predictor's own forward pass, so that both compute the same function.
    edges, depth, flipped = steps.forward(graphdef, state, x, flip_average=flip_average)
    depth = metrics_lib.postprocess_prediction(depth, flipped, x.shape[1:3], min_depth,
                                               max_depth)
    return {'depth': depth[..., 0], 'bin_centers': 0.5 * (edges[:, 1:] + edges[:, :-1])}

  return fn


def signature(config, options: ExportOptions) -> dict[str, str]:
  """The exported graph's input and outputs, as stored in an ONNX file's metadata."""
  h, w = options.size or default_size(config)
  n = 'N' if options.batch is None else str(options.batch)
  return {
      'input.image': f'uint8 [{n}, {h}, {w}, 3] RGB, 0-255 (normalised inside)',
      'output.depth': f'float32 [{n}, {h}, {w}] metres',
      'output.bin_centers': f'float32 [{n}, {config.model.n_bins}] metres',
      'min_depth_m': str(float(config.model.min_depth_m)),
      'max_depth_m': str(float(config.model.max_depth_m)),
      'flip_average': str(options.flip_average).lower(),
      # How a photo becomes the input as Predictor makes it (network_input.network_image):
      # first to the frames' scale, input h x w / input_scale, then x input_scale.
      'input_scale': str(float(config.data.input_scale)),
  }


def calibration_frames(config, hw: tuple[int, int], count: int) -> Iterator[np.ndarray]:
  """``count`` training frames of the config's dataset, resized to ``hw``: (1, h, w, 3) uint8."""
  from adabins_jax import input_pipeline  # pylint: disable=g-import-not-at-top
  builder = input_pipeline.get_builder(config.data)
  decode = input_pipeline.image_decoder(builder)
  examples = input_pipeline.read_examples(builder, 'train').take(count)
  for example in examples:
    rgb = decode(example['image']).numpy().astype(np.float32) / 255.0
    yield network_input.to_uint8(network_input.resize_image(rgb, hw))[None]


def export(model: nnx.Module, config, fmt: str, output: str | os.PathLike,
           options: ExportOptions | None = None, *,
           config_name: str | None = None) -> dict[str, str]:
  """Writes ``model`` as ``fmt`` to ``output`` (a folder for 'savedmodel').

  Args:
    model: The model with trained weights (``checkpointing.load_model``); its convolutions are
      switched to ``EXPORT_CONV_IMPL``.
    config: Its config.
    fmt: One of ``FORMATS``.
    output: The file (or SavedModel folder) to write.
    options: Size, batch, flip averaging, TFLite quantisation and whether to overwrite.
    config_name: Recorded as 'config' in the metadata, when given.

  Returns:
    The graph's signature (``signature``), also stored in ONNX files.

  Raises:
    export_formats.ExportOutputError: ``output`` may not be written (before any tracing).
  """
  options = options or ExportOptions()
  check_format(fmt, options)
  export_formats.check_output(fmt, output, options.overwrite)
  hw = options.size or default_size(config)
  use_plain_convolutions(model)
  model.eval()
  meta = signature(config, options)
  if config_name:
    meta['config'] = config_name
  calibration = calibration_frames(config, hw, options.calibration) if options.int8 else None
  tflite_kw = dict(fp16=options.fp16, calibration=calibration) if fmt == 'tflite' else {}
  export_formats.write_all(depth_function(model, config, options.flip_average), fmt, output,
                           options.batch, hw, meta, **tflite_kw)
  return meta
