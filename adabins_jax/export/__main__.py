"""Exports a trained model for deployment: ONNX, TFLite (LiteRT), SavedModel or StableHLO.

  python -m adabins_jax.export --config=demo --workdir=runs/demo --format=onnx \\
      --output=demo.onnx
  python -m adabins_jax.export --config=effnet_b5_256 --weights=AdaBins_nyu.pt \\
      --format=tflite --output=b5.tflite --size=480x640 --fp16

The exported graph takes uint8 RGB images at the network size and returns depth in metres and
the bin centres (see ``exporter``); docs/export.md shows how to run the files without JAX.

Before any weights load or tracing starts, the command checks its options and that the weights
exist (both before JAX is imported), and that ``--output`` may be written
(``export_formats.check_output``: an existing output is replaced only if it is a previous
export, or with --overwrite); a refusal exits with status 2.
"""

from __future__ import annotations

import json
import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from adabins_jax import configs
from adabins_jax.export import options as export_options


class WeightsNotFoundError(FileNotFoundError):
  """The trained weights to export are missing: no --weights file or workdir checkpoint."""


def check_weights(config, workdir: str | None, weights: str | None) -> None:
  """Raises ``WeightsNotFoundError`` unless ``checkpointing.load_model`` has weights to load.

  Reads only the file system and the checkpoints' index, so that a wrong path costs nothing;
  only a ``workdir`` needs the checkpointing code.
  """
  if weights:
    if not os.path.isfile(weights):
      raise WeightsNotFoundError(f'--weights={weights}: no such file.')
    return
  if not workdir:
    raise WeightsNotFoundError('export needs trained weights: --workdir=<training run> or '
                               '--weights=<released .pt>.')
  from adabins_jax import checkpointing  # pylint: disable=g-import-not-at-top
  manager = checkpointing.create_manager(workdir, read_only=True)
  try:
    checkpointing.select_step(manager, config.eval.checkpoint)
  except FileNotFoundError as e:
    raise WeightsNotFoundError(f'--workdir={workdir}: {e}') from None
  finally:
    manager.close()


def _define_flags():
  # Defined only when run as a program: adabins_jax.main owns some of these names in-process.
  flags.DEFINE_string('workdir', None, "A training run's folder (its eval.checkpoint).")
  flags.DEFINE_string('weights', None, 'A released PyTorch .pt (instead of --workdir).')
  flags.DEFINE_enum('format', 'onnx', export_options.FORMATS, 'The file format to write.')
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


def _refuse(error: Exception) -> None:
  print(f'{type(error).__name__}: {error}', file=sys.stderr)
  sys.exit(2)


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
    options = export_options.ExportOptions(args.size, batch, args.flip_average, args.fp16,
                                           args.int8, args.calibration,
                                           overwrite=args.overwrite)
    # Before the weights load: a typo costs nothing.
    export_options.check_format(args.format, options)
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2) from None
  # Before the weights load and the conversion, which take minutes for the large models.
  try:
    check_weights(args.config, args.workdir, args.weights)
  except WeightsNotFoundError as e:
    _refuse(e)
  # pylint: disable=g-import-not-at-top  # Here, not above: the checks need none of them.
  from adabins_jax import checkpointing
  from adabins_jax.export import exporter
  from adabins_jax.export import formats as export_formats
  # pylint: enable=g-import-not-at-top
  try:
    export_formats.check_output(args.format, args.output, args.overwrite)
  except export_formats.ExportOutputError as e:
    _refuse(e)
  model, source = checkpointing.load_model(args.config, args.workdir, args.weights,
                                           allow_unverified=args.allow_unverified_checkpoint)
  config_file = config_flags.get_config_filename(args['config'])
  meta = exporter.export(model, args.config, args.format, args.output, options,
                         config_name=os.path.splitext(os.path.basename(config_file))[0])
  logging.info('Exported %s to %s.', source, args.output)
  print(f'Wrote {args.output} ({args.format}) from {source}:\n' + json.dumps(meta, indent=2))


def run() -> None:
  """The console command: parses the flags and runs ``main``."""
  _define_flags()
  configs.run_command(main)


if __name__ == '__main__':
  run()
