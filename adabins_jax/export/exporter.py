"""Exports a trained model for deployment: ONNX, TFLite (LiteRT), SavedModel or StableHLO.

  python -m adabins_jax.export --config=demo --workdir=runs/demo --format=onnx \\
      --output=demo.onnx
  python -m adabins_jax.export --config=effnet_b5_256 --weights=AdaBins_nyu.pt \\
      --format=tflite --output=b5.tflite --size=480x640 --fp16

The exported graph takes what ``Predictor`` feeds the network, before normalisation: 'image',
uint8 RGB (N, h, w, 3) at the network size, and returns 'depth' (N, h, w) float32 metres
(clipped, flip-averaged unless --noflip_average, at the input's size) and 'bin_centers'
(N, n_bins) float32 metres: ``Predictor``'s network step, after its resize. docs/export.md
shows how to run the files without JAX.

Before any weights load or tracing starts, the command checks that the weights exist and that
``--output`` may be written (``export_formats.check_output``: an existing output is replaced
only if it is a previous export, or with --overwrite); a refusal exits with status 2.
"""

from __future__ import annotations

from collections.abc import Iterator
import dataclasses
import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
from flax import nnx
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax.export import formats as export_formats
from adabins_jax import network_input
from adabins_jax import metrics as metrics_lib
from adabins_jax import steps
from adabins_jax.models import layers

FORMATS = tuple(export_formats.LOADERS)
# Exported graphs use XLA's plain convolutions. The Winograd and shifted-copy forms are
# rewrites tuned for XLA on CPUs; as plain ops they become one ONNX Conv or TFLite
# (DEPTHWISE_)CONV_2D each, which every runtime optimises for its own hardware.
EXPORT_CONV_IMPL = 'xla'


@dataclasses.dataclass
class ExportOptions:
  """How to export; the flags below say what each field means.

  ``size`` is (h, w) or 'HxW'; None: ``default_size``. ``batch`` None makes the batch
  dimension dynamic (StableHLO and SavedModel only: the TFLite converter cannot lower the
  model's gathers with a dynamic batch). ``overwrite`` lets an output that is not a previous
  export be replaced (``export_formats.check_output``).
  """
  size: str | tuple[int, int] | None = None
  batch: int | None = 1
  flip_average: bool = True
  fp16: bool = False
  int8: bool = False
  calibration: int = 100
  overwrite: bool = False

  def __post_init__(self):
    self.size = network_input.parse_size(self.size, 'export: size')
    if self.batch is not None and self.batch < 1:
      raise ValueError(f'export: batch={self.batch} must be at least 1 (or dynamic).')
    if self.fp16 and self.int8:
      raise ValueError('export: --fp16 and --int8 exclude each other.')
    if self.int8 and self.calibration < 1:
      raise ValueError(f'export: --calibration={self.calibration} must be at least 1.')


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


def check_format(fmt: str, options: ExportOptions) -> None:
  """Raises ValueError if ``fmt`` is unknown or cannot have ``options``."""
  if fmt not in FORMATS:
    raise ValueError(f'export: format must be one of {FORMATS}, got {fmt!r}.')
  if (options.fp16 or options.int8) and fmt != 'tflite':
    raise ValueError('export: --fp16 and --int8 apply to --format=tflite only.')
  if options.batch is None and fmt in ('tflite', 'onnx'):
    raise ValueError(f'export: --format={fmt} needs a fixed --batch (the TFLite converter, '
                     'which ONNX export goes through, cannot lower a dynamic batch).')


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


class WeightsNotFoundError(FileNotFoundError):
  """The trained weights to export are missing: no --weights file or workdir checkpoint."""


def check_weights(config, workdir: str | None, weights: str | None) -> None:
  """Raises ``WeightsNotFoundError`` unless ``checkpointing.load_model`` has weights to load.

  Reads only the file system and the checkpoints' index, so that a wrong path costs nothing.
  """
  if weights:
    if not os.path.isfile(weights):
      raise WeightsNotFoundError(f'--weights={weights}: no such file.')
    return
  if not workdir:
    raise WeightsNotFoundError('export needs trained weights: --workdir=<training run> or '
                               '--weights=<released .pt>.')
  manager = checkpointing.create_manager(workdir, read_only=True)
  try:
    checkpointing.select_step(manager, config.eval.checkpoint)
  except FileNotFoundError as e:
    raise WeightsNotFoundError(f'--workdir={workdir}: {e}') from None
  finally:
    manager.close()


def _define_flags():
  # Defined only when run as a program, like import_torch's: main owns some of these names.
  flags.DEFINE_string('workdir', None, "A training run's folder (its eval.checkpoint).")
  flags.DEFINE_string('weights', None, 'A released PyTorch .pt (instead of --workdir).')
  flags.DEFINE_enum('format', 'onnx', FORMATS, 'The file format to write.')
  flags.DEFINE_string('output', None, 'The file to write (a folder for savedmodel).')
  flags.DEFINE_bool('overwrite', False, 'Replace --output even if it is not a previous export.')
  flags.DEFINE_bool('allow_unverified_checkpoint', False,
                    'Load a checkpoint step that has no checksums.json to verify it by.')
  flags.DEFINE_string('size', None, "Network input HxW; default: the model's trained input.")
  flags.DEFINE_string('batch', '1', "Images per call, or 'dynamic'.")
  flags.DEFINE_bool('flip_average', True, 'Average with the mirrored image, as Predictor.')
  flags.DEFINE_bool('fp16', False, 'tflite: float16 weights.')
  flags.DEFINE_bool('int8', False, "tflite: int8 quantisation calibrated on the config's data.")
  flags.DEFINE_integer('calibration', 100, '--int8: training frames to calibrate on.')
  config_flags.DEFINE_config_file('config', None, 'A config file or shipped name.',
                                  lock_config=True)
  flags.mark_flags_as_required(['config', 'output'])


def main(argv):
  """Exit status: 0 written; 2 bad command line, output or weights (nothing done); 1 failed in
  conversion (nothing written)."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}', exitcode=2)
  args = flags.FLAGS
  if args.batch != 'dynamic' and not args.batch.isdigit():
    raise app.UsageError(f"--batch={args.batch}: a number of images or 'dynamic'.", exitcode=2)
  batch = None if args.batch == 'dynamic' else int(args.batch)
  try:
    options = ExportOptions(args.size, batch, args.flip_average, args.fp16, args.int8,
                            args.calibration, overwrite=args.overwrite)
    check_format(args.format, options)  # Before the weights load: a typo costs nothing.
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2) from None
  # Before the weights load and the conversion, which take minutes for the large models.
  try:
    export_formats.check_output(args.format, args.output, args.overwrite)
    check_weights(args.config, args.workdir, args.weights)
  except (export_formats.ExportOutputError, WeightsNotFoundError) as e:
    print(f'{type(e).__name__}: {e}', file=sys.stderr)
    sys.exit(2)
  model, source = checkpointing.load_model(args.config, args.workdir, args.weights,
                                           allow_unverified=args.allow_unverified_checkpoint)
  config_file = config_flags.get_config_filename(args['config'])
  meta = export(model, args.config, args.format, args.output, options,
                config_name=os.path.splitext(os.path.basename(config_file))[0])
  logging.info('Exported %s to %s.', source, args.output)
  print(f'Wrote {args.output} ({args.format}) from {source}:\n' + json.dumps(meta, indent=2))


def run() -> None:
  """The console command: parses the flags and runs ``main``."""
  _define_flags()
  configs.run_command(main)


if __name__ == '__main__':
  run()
