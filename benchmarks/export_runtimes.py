"""Exported models against JAX: depth error, file size and CPU speed per format, batch 1.

  python benchmarks/export_runtimes.py --configs=demo,unet128_dws --repeats=10

Each config's model gets random weights (neither the error against JAX nor the speed depends
on their values) and is exported at its default size (``exporter.default_size``) to every format
in a temporary folder, TFLite also with float16 weights. Per format: the relative L2 error of
'depth' against JAX with the same plain convolutions (``exporter.EXPORT_CONV_IMPL``) on one random
image, the file's size (decimal MB), and images per second at batch 1 (median of --repeats
calls after one warm-up) in its runtime with every core, measured by
``exported.benchmark_exported`` (which ``python -m adabins_jax.benchmark
--runtimes=jax,onnxruntime,litert`` also runs, without flip averaging, beside its own
columns). The 'jax' row is the project's own path (convolutions chosen by 'auto', as
``Predictor`` runs them). Every row includes flip averaging (two network passes) and the
post-processing. Prints a markdown table. For the large models this is the
numerics check that CI does not run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import jax
import numpy as np

from adabins_jax.benchmark import exported
from adabins_jax import configs
from adabins_jax.export import exporter
from adabins_jax import models

_FORMATS = {'stablehlo': 'stablehlo (jax)', 'savedmodel': 'savedmodel (tf)',
            'tflite': 'tflite (litert)', 'tflite_fp16': 'tflite fp16 (litert)',
            'onnx': 'onnx (onnxruntime)'}


def _jax_row(model, config, image: np.ndarray, repeats: int) -> dict:
  """The project's own path: img/s, and depth error against plain convolutions (which
  ``model`` keeps)."""
  run = jax.jit(exporter.depth_function(model, config))
  run(image)
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(run(image))
    times.append(time.perf_counter() - start)
  auto_depth = np.asarray(run(image)['depth'])
  exporter.use_plain_convolutions(model)
  plain = np.asarray(jax.jit(exporter.depth_function(model, config))(image)['depth'])
  error = float(np.linalg.norm(auto_depth - plain) / np.linalg.norm(plain))
  return {'depth_rel_l2': error, 'images_per_s': 1.0 / statistics.median(times)}


def measure(name: str, repeats: int) -> dict[str, dict]:
  """Per runtime of config ``name``: depth error against JAX with plain convolutions, MB and
  img/s ('error' where one failed)."""
  config = configs.load(name)
  hw = exporter.default_size(config)
  model = models.random_model(config.model, seed=0)
  model.eval()
  image = np.random.default_rng(0).integers(0, 256, (1, *hw, 3), np.uint8)
  rows = {'jax': _jax_row(model, config, image, repeats)}
  # Every error is reported here, float16's too; none is judged.
  cells = exported.benchmark_exported(model, config, hw, list(_FORMATS), repeats,
                                              flip_average=True, tolerance=math.inf)
  rows.update((_FORMATS[fmt], cell) for fmt, cell in cells.items())
  return rows


def _fmt(value, spec: str) -> str:
  return '' if value is None else format(value, spec)


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--configs', default='demo,unet128_dws')
  parser.add_argument('--repeats', type=int, default=10)
  args = parser.parse_args()
  print('| config | input | runtime | depth rel. L2 vs JAX (xla convs) | file MB | img/s b1 |')
  print('|---|---|---|---|---|---|')
  for name in args.configs.split(','):
    h, w = exporter.default_size(configs.load(name))
    for runtime, cell in measure(name, args.repeats).items():
      speed = cell['error'] if 'error' in cell else _fmt(cell['images_per_s'], '.2f')
      print(f'| {name} | {h}x{w} | {runtime} | {_fmt(cell.get("depth_rel_l2"), ".1e")} | '
            f'{_fmt(cell.get("size_mb"), ".1f")} | {speed} |', flush=True)


if __name__ == '__main__':
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  main()
