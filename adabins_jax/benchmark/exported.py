"""Models exported at batch 1 and run by other runtimes: CPU speed, file size and error::

  python -m adabins_jax.benchmark --configs=demo --runtimes=jax,onnxruntime,litert
  python benchmarks/export_runtimes.py --configs=demo,unet128_dws

``benchmark_exported`` writes a model to each format (export_formats) in a temporary folder,
with the plain convolutions ``exporter.export`` gives it, and measures per format: images per
second at batch 1 in its runtime on the CPU (median over the timed calls after a warm-up), the
file's decimal MB, and the relative L2 error of its depth against JAX's on the same image, which
marks the cell failed past a tolerance. ``check_runtimes`` validates the benchmark's --runtimes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import pathlib
import statistics
import tempfile
import time
from typing import Any

from absl import logging
from flax import nnx
import jax
import numpy as np

from adabins_jax.export import exporter
from adabins_jax.export import formats as export_formats
from adabins_jax.inference import runtimes as runtimes_lib
from adabins_jax.models import layers

# Decimal megabytes, as the published sizes are (78.3 M params x 12 bytes = 940 MB).
MB = 1e6
# The benchmark's --runtimes: JAX, and the exported format each other runtime runs.
EXPORT_RUNTIMES = runtimes_lib.EXPORT_FORMATS
RUNTIMES = runtimes_lib.RUNTIMES
# Exported depth against JAX's: float32 files differ by rounding only (about 1e-7).
EXPORT_TOLERANCE = 1e-4
# The file each format is written to, and the file it is converted from (export_formats).
_EXPORT_FILES = {'stablehlo': 'model.stablehlo', 'savedmodel': 'savedmodel',
                 'tflite': 'model.tflite', 'tflite_fp16': 'model_fp16.tflite',
                 'onnx': 'model.onnx'}
_EXPORT_SOURCES = {'tflite': 'savedmodel', 'tflite_fp16': 'savedmodel', 'onnx': 'tflite'}


def check_runtimes(runtimes: Sequence[str]) -> None:
  """Raises ValueError for a runtime not in ``RUNTIMES``, ImportError if one lacks packages."""
  for runtime in runtimes:
    runtimes_lib.check(runtime, '--runtimes')


def _images_per_second(run: Callable[[np.ndarray], Any], image: np.ndarray,
                       repeats: int) -> float:
  run(image)  # Warm-up: the runtime's first call plans and allocates.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run(image)
    times.append(time.perf_counter() - start)
  return 1.0 / statistics.median(times)


def _relative_l2(got: np.ndarray, want: np.ndarray) -> float:
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def _file_mb(path: pathlib.Path) -> float:
  paths = path.rglob('*') if path.is_dir() else [path]
  return sum(p.stat().st_size for p in paths if p.is_file()) / MB


def _export_file(fn: Callable[..., Any], fmt: str, folder: pathlib.Path, hw: tuple[int, int],
                 metadata: dict[str, str], written: dict[str, pathlib.Path]) -> pathlib.Path:
  """Writes ``fn`` as ``fmt`` at batch 1 in ``folder``, after the file it converts from."""
  if fmt in written:
    return written[fmt]
  path = folder / _EXPORT_FILES[fmt]
  source = _EXPORT_SOURCES.get(fmt)
  source_path = source and _export_file(fn, source, folder, hw, metadata, written)
  if fmt == 'stablehlo':
    export_formats.write_stablehlo(fn, path, 1, hw)
  elif fmt == 'savedmodel':
    export_formats.write_savedmodel(fn, path, 1, hw)
  elif fmt in ('tflite', 'tflite_fp16'):
    export_formats.write_tflite(source_path, path, fp16=fmt == 'tflite_fp16')
  else:
    export_formats.write_onnx(source_path, path, metadata)
  written[fmt] = path
  return path


def benchmark_exported(model: nnx.Module, config, hw: tuple[int, int], formats: Sequence[str],
                       repeats: int, *, flip_average: bool = False,
                       tolerance: float = EXPORT_TOLERANCE) -> dict[str, dict[str, Any]]:
  """Exports ``model`` at batch 1 to each format and times the file in its runtime on the CPU.

  Args:
    model: The model; its convolutions are ``exporter.EXPORT_CONV_IMPL`` while exporting, as
      ``exporter.export`` makes them, and return to what they were.
    config: Its config.
    hw: The input size.
    formats: Keys of ``_EXPORT_FILES``; each is written once, in a temporary folder.
    repeats: Timed calls per format (median kept) after one untimed call.
    flip_average: Export with flip averaging (two network passes per image).
    tolerance: The largest relative L2 error of 'depth' against JAX's on the same image.

  Returns:
    Per format: 'images_per_s', 'ms_per_image', 'size_mb' (decimal MB of the file or folder)
    and 'depth_rel_l2' (against JAX with the same convolutions); 'error' where the export or
    run failed or the depth is further than ``tolerance`` from JAX's.
  """
  model.eval()
  image = np.random.default_rng(0).integers(0, 256, (1, *hw, 3), np.uint8)
  metadata = exporter.signature(config, exporter.ExportOptions(size=hw, flip_average=flip_average))
  results = {}
  with (layers.conv_impls(model, depthwise_impl=exporter.EXPORT_CONV_IMPL,
                         conv3x3_impl=exporter.EXPORT_CONV_IMPL),
        tempfile.TemporaryDirectory(prefix='adabins-benchmark-') as tmp):
    fn = exporter.depth_function(model, config, flip_average)
    want = np.asarray(jax.jit(fn)(image)['depth'])
    written = {}
    for fmt in formats:
      logging.info('Exporting to %s at %dx%d.', fmt, *hw)
      results[fmt] = cell = {}
      try:  # One failed format keeps the rest of the table.
        path = _export_file(fn, fmt, pathlib.Path(tmp), hw, metadata, written)
        run = export_formats.load(path)
        cell['size_mb'] = _file_mb(path)
        cell['depth_rel_l2'] = _relative_l2(run(image)['depth'], want)
        cell['images_per_s'] = _images_per_second(run, image, repeats)
        cell['ms_per_image'] = 1e3 / cell['images_per_s']
      except Exception as e:  # pylint: disable=broad-exception-caught
        logging.exception('Exporting to %s failed.', fmt)
        cell['error'] = f'{type(e).__name__}: {str(e)[:300]}'
        continue
      if not cell['depth_rel_l2'] < tolerance:
        cell['error'] = (f'depth relative L2 {cell["depth_rel_l2"]:.1e} against JAX, over '
                         f'{tolerance:g}')
  return results
