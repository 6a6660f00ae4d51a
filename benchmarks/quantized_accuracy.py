"""What TFLite quantisation costs a trained model in accuracy, on its evaluation split.

  python benchmarks/quantized_accuracy.py --config=demo --workdir=runs/demo \\
      --tfds_data_dir=/tmp/demo_tfds --calibration=100

Loads the checkpoint ``--mode=eval`` scores (``config.eval.checkpoint``, 'best' by default)
and scores it with the project's own evaluation (``evaluate.evaluate_model``, JAX float32), then
exports it to TFLite float32, float16 weights and int8 (weights and activations, calibrated on
``--calibration`` training frames of the config's dataset by ``exporter.calibration_frames``, as
``python -m adabins_jax.export --int8`` does) and scores each file the same way.

Every file has the exported models' input, uint8 RGB at the network size, normalised inside
(``exporter.depth_function``'s first step); each evaluation image is fed as that uint8 image,
its pipeline's float input rounded to 1/255. The files return the network's raw outputs
(``runtimes.network_function``: bin edges, half-size depth and the mirrored image's depth), to
which ``metrics.score_batch`` applies the evaluation protocol (docs/reference.md), so flip
averaging, clipping, resizing to the ground truth and scoring are the JAX row's own. The
float32 file must score the JAX row's d1 within ``D1_TOLERANCE`` (the uint8 rounding of the
input is all that differs), or the script fails. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax import configs
from adabins_jax import evaluate
from adabins_jax.export import exporter
from adabins_jax.export import formats as export_formats
from adabins_jax import network_input
from adabins_jax import input_pipeline
from adabins_jax import metrics as metrics_lib
from adabins_jax import parallel
from adabins_jax import checkpointing
from adabins_jax.inference import runtimes
from adabins_jax import steps

# Largest |d1(TFLite float32) - d1(JAX)| accepted: the two differ by the input's uint8 rounding.
D1_TOLERANCE = 1e-3
# The TFLite files written: their names in the table, and ``write_tflite``'s options.
_TFLITE = {'tflite float32': {}, 'tflite float16': {'fp16': True}, 'tflite int8': 'int8'}


def eval_batches(config, limit: int | None = None) -> list[dict[str, np.ndarray]]:
  """The evaluation split as ``--mode=eval`` reads it; past ``limit`` images, masked out."""
  batches, seen = [], 0
  for batch in input_pipeline.create_eval_dataset(config.data, config.eval.batch_size):
    if limit is not None and seen >= limit:
      break
    batch = dict(batch)
    if limit is not None:
      keep = np.arange(seen, seen + len(batch['image'])) < limit
      batch['example_mask'] = batch['example_mask'] & keep
    seen += len(batch['image'])
    batches.append(batch)
  return batches


def as_uint8(images: np.ndarray) -> np.ndarray:
  """Normalised float network inputs -> the uint8 RGB the exported files take."""
  return network_input.to_uint8(network_input.denormalize(np.asarray(images, np.float32)))


def uint8_network_function(model: nnx.Module, flip_average: bool):
  """``runtimes.network_function`` behind the exported files' input: uint8 RGB, normalised
  inside as ``exporter.depth_function`` does it."""
  network = runtimes.network_function(model, flip_average)
  return lambda image: network(network_input.normalize(image.astype(jnp.float32) / 255.0))


def jax_metrics(model: nnx.Module, config, batches) -> dict[str, float]:
  """The project's own evaluation of ``model`` (as ``evaluate.evaluate`` runs it)."""
  mesh = parallel.create_mesh(config.train.get('num_devices') or None)
  nnx.update(model, parallel.replicate(nnx.state(model), mesh))
  with jax.set_mesh(mesh):
    results, _ = evaluate.evaluate_model(
        steps.make_eval_step(config, nnx.graphdef(model)), model, batches, mesh)
  return results


def file_metrics(run: export_formats.Runner, config, batches) -> dict[str, float]:
  """``run``'s raw outputs, image by image, through the evaluation protocol."""
  score = jax.jit(functools.partial(
      metrics_lib.score_batch, min_depth=float(config.model.min_depth_m),
      max_depth=float(config.model.max_depth_m), crop=config.eval.crop))
  total = metrics_lib.MetricSums.empty()
  for batch in batches:
    outputs = [run(image[None]) for image in as_uint8(batch['image'])]
    depth = np.concatenate([o['depth'] for o in outputs])
    flipped = (np.concatenate([o['depth_flipped'] for o in outputs])
               if 'depth_flipped' in outputs[0] else None)
    sums, _ = score(batch['depth'], depth, flipped, example_mask=batch['example_mask'],
                    source_frame=batch.get('source_frame'))
    total = total.merge(sums)
  return parallel.fetch(total).compute()


def measure(config, workdir: str, calibration: int = 100, limit: int | None = None,
            out: str | None = None) -> dict[str, dict[str, float]]:
  """Per row ('jax float32', then the TFLite files): d1, abs_rel, rmse, num_images and, for
  files, size_mb.

  Raises:
    RuntimeError: if the float32 file's d1 differs from JAX's by more than ``D1_TOLERANCE``.
  """
  batches = eval_batches(config, limit)
  if not batches:
    raise ValueError(f'{config.data.dataset}/{config.data.eval_split}: no evaluation batch.')
  model, _ = checkpointing.load_model(config, workdir)
  rows = {'jax float32': jax_metrics(model, config, batches)}
  hw = tuple(batches[0]['image'].shape[1:3])
  exporter.use_plain_convolutions(model)
  fn = uint8_network_function(model, bool(config.eval.flip_average))
  with tempfile.TemporaryDirectory(prefix='adabins-quantized-') as tmp:
    out = out or tmp
    for name, options in _TFLITE.items():
      if options == 'int8':
        options = {'calibration': exporter.calibration_frames(config, hw, calibration)}
      path = os.path.join(out, name.replace(' ', '_') + '.tflite')
      export_formats.write_all(fn, 'tflite', path, 1, hw, {}, **options)
      rows[name] = file_metrics(export_formats.load_tflite(path), config, batches)
      rows[name]['size_mb'] = os.path.getsize(path) / 1e6
  gap = abs(rows['tflite float32']['d1'] - rows['jax float32']['d1'])
  if not gap <= D1_TOLERANCE:
    raise RuntimeError(f'TFLite float32 d1 {rows["tflite float32"]["d1"]:.5f} differs from '
                       f'JAX d1 {rows["jax float32"]["d1"]:.5f} by {gap:.2e} > {D1_TOLERANCE}.')
  return rows


def format_table(rows: dict[str, dict[str, float]]) -> str:
  """A markdown table, each row's d1 and abs_rel also as a change against 'jax float32'."""
  base = rows['jax float32']
  lines = ['| format | file MB | d1 | abs_rel | rmse | d1 change | abs_rel change |',
           '|---|---|---|---|---|---|---|']
  for name, row in rows.items():
    size = f'{row["size_mb"]:.2f}' if 'size_mb' in row else '—'
    lines.append(f'| {name} | {size} | {row["d1"]:.4f} | {row["abs_rel"]:.4f} | '
                 f'{row["rmse"]:.4f} | {row["d1"] - base["d1"]:+.4f} | '
                 f'{row["abs_rel"] - base["abs_rel"]:+.4f} |')
  return '\n'.join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--config', required=True, help='A shipped config name or file.')
  parser.add_argument('--workdir', required=True, help="The training run's folder.")
  parser.add_argument('--tfds_data_dir', default=None, help='Overrides data.tfds_data_dir.')
  parser.add_argument('--calibration', type=int, default=exporter.ExportOptions.calibration,
                      help='Training frames the int8 file is calibrated on.')
  parser.add_argument('--limit', type=int, default=None, help='Evaluation images to score.')
  parser.add_argument('--output', default=None, help='Keep the .tflite files in this folder.')
  args = parser.parse_args(argv)
  if args.calibration < 1 or (args.limit is not None and args.limit < 1):
    parser.error(f'--calibration={args.calibration} and --limit={args.limit} must be >= 1.')
  config = configs.load(args.config)
  if args.tfds_data_dir:
    config.data.tfds_data_dir = args.tfds_data_dir
  if args.output:
    os.makedirs(args.output, exist_ok=True)
  rows = measure(config, args.workdir, args.calibration, args.limit, args.output)
  print(f'{config.data.dataset}/{config.data.eval_split}, '
        f'{int(rows["jax float32"]["num_images"])} images, int8 calibrated on '
        f'{args.calibration} training frames:\n{format_table(rows)}', flush=True)
  return rows


if __name__ == '__main__':
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  main()
