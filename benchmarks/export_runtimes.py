"""Exported models against JAX: depth error, file size and CPU speed per format, batch 1.

  python benchmarks/export_runtimes.py --configs=demo,unet128_dws --repeats=10

Each config's model gets random weights (neither the error against JAX nor the speed depends
on their values) and is exported at its default size (``export.default_size``) to every format
in a temporary folder, TFLite also with float16 weights. Per format: the relative L2 error of
'depth' against JAX with the same plain convolutions (``export.EXPORT_CONV_IMPL``) on one random
image, the file's size, and images per second at batch 1 (median of --repeats calls after one
warm-up) in its runtime with every core. The 'jax' row is the project's own path (convolutions
chosen by 'auto', as ``Predictor`` runs them). Every row includes flip averaging (two network
passes) and the post-processing. Prints a markdown table. For the large models this is the
numerics check that CI does not run.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

import jax
import numpy as np

from adabins_jax import benchmark
from adabins_jax import configs
from adabins_jax import export
from adabins_jax import export_formats


def _images_per_second(run, image, repeats: int) -> float:
  run(image)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run(image)
    times.append(time.perf_counter() - start)
  return 1.0 / statistics.median(times)


def _relative_l2(got: np.ndarray, want: np.ndarray) -> float:
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def _size_mb(path: pathlib.Path) -> float:
  files = path.rglob('*') if path.is_dir() else [path]
  return sum(f.stat().st_size for f in files if f.is_file()) / 2**20


def measure(name: str, repeats: int, folder: pathlib.Path) -> list[dict]:
  """One row per runtime of config ``name``: depth error against JAX with plain convolutions,
  MB and img/s."""
  config = configs.load(name)
  hw = export.default_size(config)
  model = benchmark.random_model(config.model, seed=0)
  model.eval()
  image = np.random.default_rng(0).integers(0, 256, (1, *hw, 3), np.uint8)
  jitted = jax.jit(export.depth_function(model, config))
  run_jax = lambda x: jax.block_until_ready(jitted(x))
  rows = [dict(config=name, size=f'{hw[0]}x{hw[1]}', runtime='jax', mb=None,
               ips=_images_per_second(run_jax, image, repeats))]
  auto_depth = np.asarray(run_jax(image)['depth'])
  export.use_plain_convolutions(model)
  fn = export.depth_function(model, config)
  reference = np.asarray(jax.jit(fn)(image)['depth'])
  rows[0]['error'] = _relative_l2(auto_depth, reference)
  paths = {'stablehlo': folder / f'{name}.stablehlo', 'savedmodel': folder / f'{name}_sm',
           'tflite': folder / f'{name}.tflite', 'tflite fp16': folder / f'{name}_fp16.tflite',
           'onnx': folder / f'{name}.onnx'}
  export_formats.write_stablehlo(fn, paths['stablehlo'], 1, hw)
  export_formats.write_savedmodel(fn, paths['savedmodel'], 1, hw)
  export_formats.write_tflite(paths['savedmodel'], paths['tflite'])
  export_formats.write_tflite(paths['savedmodel'], paths['tflite fp16'], fp16=True)
  export_formats.write_onnx(paths['tflite'], paths['onnx'],
                            export.signature(config, export.ExportOptions(size=hw)))
  runtimes = {'stablehlo': 'stablehlo (jax)', 'savedmodel': 'savedmodel (tf)',
              'tflite': 'tflite (litert)', 'tflite fp16': 'tflite fp16 (litert)',
              'onnx': 'onnx (onnxruntime)'}
  for fmt, path in paths.items():
    run = export_formats.load(path)
    depth = run(image)['depth']
    rows.append(dict(config=name, size=f'{hw[0]}x{hw[1]}', runtime=runtimes[fmt],
                     error=_relative_l2(depth, reference),
                     mb=_size_mb(path), ips=_images_per_second(run, image, repeats)))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', default='demo,unet128_dws')
  parser.add_argument('--repeats', type=int, default=10)
  args = parser.parse_args()
  print('| config | input | runtime | depth rel. L2 vs JAX (xla convs) | file MB | img/s b1 |')
  print('|---|---|---|---|---|---|')
  with tempfile.TemporaryDirectory(prefix='adabins-export-bench-') as tmp:
    for name in args.configs.split(','):
      for row in measure(name, args.repeats, pathlib.Path(tmp)):
        mb = '' if row['mb'] is None else f'{row["mb"]:.1f}'
        print(f'| {row["config"]} | {row["size"]} | {row["runtime"]} | {row["error"]:.1e} | '
              f'{mb} | {row["ips"]:.2f} |', flush=True)


if __name__ == '__main__':
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  main()
