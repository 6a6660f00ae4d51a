"""Speed and size of each model, beside the published ones (reference.REFERENCE); the command
line is ``python -m adabins_jax.benchmark`` (see ``__main__``).

Per config: parameter count; MB of float32 parameters and of a training checkpoint (parameters,
BatchNorm statistics and the AdamW state: the variant study's "size", see docs/reference.md);
inference images/s at the evaluation resolution (480x640 x data.input_scale) per batch size;
training images/s at the training crop (416x544 x data.input_scale) with the real train step of
steps.py; compile seconds; FLOPs per image from XLA's cost analysis of the model compiled with
direct convolutions (the model's own count, whichever convolution algorithm runs) and the
GFLOP/s that makes; the JSON also has the FLOPs of the program that ran (fewer where Winograd
replaces convolutions). Times are medians over ``--repeats`` synchronised runs after a warm-up.
Weights are random (speed does not depend on them) and filled on the host, since random
initialisation compiles a program per shape. Runs on whatever backend JAX picks: CPU or GPU alike.
--runtimes adds, per runtime beyond JAX, the model exported at batch 1
(``exported.benchmark_exported``): CPU images/s, the file's MB and its depth's relative
L2 error against JAX's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import json
import math
import os
import platform
import statistics
import time
from typing import Any

from absl import logging
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax.benchmark import exported
from adabins_jax import configs
from adabins_jax import models
from adabins_jax.datasets import nyu
from adabins_jax import optim
from adabins_jax.configs import reference
from adabins_jax import steps
from adabins_jax.models import layers

# The table's resolutions before data.input_scale: NYU test frames and the training crop.
EVAL_HW = nyu.FRAME_HW
TRAIN_HW = nyu.TRAIN_CROP_HW
# Steps of the one-cycle schedule the optimizer is built with. The schedule only sets learning
# rates, which change neither the optimizer state's size nor a step's speed.
_SCHEDULE_STEPS = 1000


def load_config(name: str):
  """A config by name ('unet128') or by path ('configs/unet128.py'); see ``configs.resolve``."""
  return configs.load(name)


def _nbytes(tree: Any) -> int:
  return sum(x.size * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree))


def sizes(model: nnx.Module, config) -> dict[str, float]:
  """Parameter count, and MB of the float parameters and of a training checkpoint."""
  params = nnx.state(model, nnx.Param)
  tx = optim.create_optimizer(config.optim, total_steps=_SCHEDULE_STEPS)
  opt_state = jax.eval_shape(tx.init, params)
  saved = _nbytes(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))) + _nbytes(opt_state)
  return {'params': models.count_params(model),
          'param_mb': _nbytes(params) / exported.MB,
          'checkpoint_mb': saved / exported.MB}


def _flops(compiled) -> float:
  """XLA's FLOP count of a compiled or lowered program."""
  analysis = compiled.cost_analysis()
  if isinstance(analysis, (list, tuple)):  # Older JAX: one dict per device program.
    analysis = analysis[0] if analysis else {}
  return float((analysis or {}).get('flops', float('nan')))


def _peak_gb(compiled) -> float:
  """GB of buffers XLA allocates for one call: arguments, outputs and temporaries.

  XLA's own plan for the program (``memory_analysis``), so one figure per program even when
  several run in a process; outputs that reuse a donated argument count once.
  """
  stats = compiled.memory_analysis()
  if stats is None:
    return float('nan')
  total = (stats.argument_size_in_bytes + stats.output_size_in_bytes
           + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
  return total / 1e9


def time_compiled(jitted: Any, args: Sequence[Any], repeats: int, *, static_args: int = 0,
                  carry: bool = False) -> dict[str, Any]:
  """Compiles a jitted function for ``args``, warms up, and times ``repeats`` calls.

  Args:
    jitted: A ``jax.jit`` function.
    args: Its arguments; the first ``static_args`` are its static ones.
    repeats: Timed calls (after one untimed warm-up call).
    static_args: How many leading arguments are static.
    carry: The first output replaces the first non-static argument after each call (a train
      step that donates its state).

  Returns:
    'compile_s', 'seconds' (median per call), 'flops' (XLA's count per call) and 'peak_gb'
    (XLA's buffer memory for a call); with ``carry`` also 'carried', the first output of the
    last call, which replaces the donated argument.
  """
  start = time.perf_counter()
  compiled = jitted.lower(*args).compile()
  compile_s = time.perf_counter() - start
  call_args = list(args[static_args:])
  times = []
  for i in range(repeats + 1):
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*call_args))
    if i:
      times.append(time.perf_counter() - start)
    if carry:
      call_args[0] = out[0]
  result = {'compile_s': compile_s, 'seconds': statistics.median(times),
            'flops': _flops(compiled), 'peak_gb': _peak_gb(compiled)}
  if carry:
    result['carried'] = call_args[0]
  return result


def _nominal_flops(model: nnx.Module, build: Callable[[nnx.Module], Any],
                   args: Sequence[Any]) -> float | None:
  """FLOPs of ``build(model)(*args)`` compiled with direct convolutions.

  Winograd (``conv3x3_impl='auto'`` on CPU) executes fewer FLOPs than the convolution it
  replaces; speeds are reported against the model's own count so that they compare across
  algorithms and backends. Compiled, not just lowered: the lowered train step still holds code
  that XLA removes (a U-Net's would count 272 GFLOP per image instead of 221).

  Returns:
    None where no convolution runs by Winograd (on GPUs, say): the program timed is then the
    direct one, and its own count is the model's; no second compile is spent on it.
  """
  shapes = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), list(args))
  timed = build(model).lower(*shapes).as_text()
  with layers.conv_impls(model, conv3x3_impl='xla'):
    direct = build(model).lower(*shapes)
  return None if direct.as_text() == timed else _flops(direct.compile())


def _scaled(hw: Sequence[int], scale: float) -> tuple[int, int]:
  # As the input pipeline scales images (round, not floor).
  return round(hw[0] * scale), round(hw[1] * scale)


def _rates(result: dict[str, float], batch: int,
           nominal_flops: float | None) -> dict[str, float]:
  if nominal_flops is None:  # The timed program has direct convolutions only.
    nominal_flops = result['flops']
  return {'images_per_s': batch / result['seconds'],
          'ms_per_image': 1e3 * result['seconds'] / batch,
          'compile_s': result['compile_s'],
          'gflop_per_image': nominal_flops / batch / 1e9,
          'achieved_gflop_per_s': nominal_flops / result['seconds'] / 1e9,
          'executed_gflop_per_image': result['flops'] / batch / 1e9,
          'peak_gb': result['peak_gb']}


def benchmark_inference(model: nnx.Module, hw: Sequence[int], batch: int,
                        repeats: int) -> dict[str, float]:
  """Eval-mode forward pass (no flip averaging) on a (batch, h, w, 3) input."""
  model.eval()

  def jitted_forward(model):
    return steps.make_forward(nnx.graphdef(model))

  images = jnp.asarray(np.random.default_rng(0).standard_normal((batch, *hw, 3), np.float32))
  args = (nnx.state(model), images)
  nominal = _nominal_flops(model, jitted_forward, args)
  return _rates(time_compiled(jitted_forward(model), args, repeats), batch, nominal)


def benchmark_training(model: nnx.Module, config, image_hw: Sequence[int],
                       depth_hw: Sequence[int], batch: int, repeats: int) -> dict[str, float]:
  """steps.py's train step (loss, gradients, clipped AdamW update) on random data."""
  tx = optim.create_optimizer(config.optim, _SCHEDULE_STEPS)
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  rng = np.random.default_rng(0)
  batch_arrays = {
      'image': jnp.asarray(rng.standard_normal((batch, *image_hw, 3), np.float32)),
      'depth': jnp.asarray(rng.uniform(0.5, 9.0, (batch, *depth_hw, 1)).astype(np.float32)),
  }
  schedule = optim.learning_rate_schedule(config.optim, _SCHEDULE_STEPS)

  def train_step(model):
    return steps.make_train_step(config, nnx.graphdef((model, optimizer)), schedule)

  args = (nnx.state((model, optimizer)), batch_arrays, jax.random.key(0))
  nominal = _nominal_flops(model, train_step, args)  # Before the step donates the arrays.
  result = time_compiled(train_step(model), args, repeats, carry=True)
  # The steps donated the model's arrays: it holds the trained ones instead.
  nnx.update((model, optimizer), result.pop('carried'))
  return _rates(result, batch, nominal)


def benchmark_config(config, *, batch_sizes: Sequence[int] = (1, 8), repeats: int = 5,
                     skip_train: bool = False, train_batch_size: int | None = None,
                     eval_hw: Sequence[int] = EVAL_HW, train_hw: Sequence[int] = TRAIN_HW,
                     runtimes: Sequence[str] = ('jax',), seed: int = 0) -> dict[str, Any]:
  """One config's row: sizes, inference per batch size and (unless skipped) training.

  Args:
    config: The full config.
    batch_sizes: Inference batch sizes.
    repeats: Timed runs per measurement (median reported).
    skip_train: Leave training out (its compile dominates on a CPU).
    train_batch_size: Training batch; None: ``config.train.batch_size`` on accelerators, 2 on
      a CPU.
    eval_hw: Inference size before ``data.input_scale``.
    train_hw: Training crop before ``data.input_scale`` (the depth target stays this size).
    runtimes: Of ``exported.RUNTIMES``; beside JAX (always measured), each other one
      runs the model exported at batch 1 and the inference size
      (``exported.benchmark_exported``).
    seed: Of the random weights and data.
  """
  scale = float(config.data.input_scale)
  start = time.perf_counter()
  model = models.random_model(config.model, seed)
  row: dict[str, Any] = {'bins': int(config.model.n_bins),
                         'reference': config.eval.reference,
                         'build_s': time.perf_counter() - start, **sizes(model, config)}
  infer_hw = _scaled(eval_hw, scale)
  row['inference'] = {'height': infer_hw[0], 'width': infer_hw[1]}
  for batch in batch_sizes:
    logging.info('Inference, batch %d at %dx%d.', batch, *infer_hw)
    row['inference'][str(batch)] = benchmark_inference(model, infer_hw, batch, repeats)
  formats = exported.EXPORT_RUNTIMES
  chosen = [r for r in runtimes if r in formats]
  if chosen:
    cells = exported.benchmark_exported(model, config, infer_hw,
                                        [formats[r] for r in chosen], repeats)
    row['runtimes'] = {'height': infer_hw[0], 'width': infer_hw[1], 'batch': 1,
                       **{r: cells[formats[r]] for r in chosen}}
  if not skip_train:
    if train_batch_size is None:
      on_cpu = jax.default_backend() == 'cpu'
      train_batch_size = 2 if on_cpu else int(config.train.batch_size)
    image_hw = _scaled(train_hw, scale)
    logging.info('Training, batch %d at %dx%d.', train_batch_size, *image_hw)
    row['train'] = {'height': image_hw[0], 'width': image_hw[1], 'batch': train_batch_size}
    try:
      # Last: training changes the model's weights.
      row['train'].update(benchmark_training(model, config, image_hw, train_hw,
                                             train_batch_size, repeats))
    except (TypeError, ValueError) as e:  # One failed measurement keeps the rest of the table.
      logging.exception('Training benchmark failed.')
      row['train']['error'] = f'{type(e).__name__}: {str(e)[:300]}'
  return row


def environment() -> dict[str, Any]:
  """Where the numbers were taken: backend, device, CPU count, load, versions."""
  return {'backend': jax.default_backend(), 'device': str(jax.devices()[0].device_kind),
          'device_count': jax.device_count(), 'cpu_count': os.cpu_count(),
          'load_average': list(os.getloadavg()), 'jax': jax.__version__,
          'python': platform.python_version(), 'machine': platform.machine(),
          'time': time.strftime('%Y-%m-%d %H:%M:%S %Z')}


def _fmt(value, spec: str) -> str:
  return '—' if value is None or not math.isfinite(value) else format(value, spec)


def _runtime_cells(cell: dict[str, Any] | None) -> list[str]:
  """An exported runtime's img/s, file MB and depth error; 'error' leads a failed one."""
  if cell is None:
    return ['—'] * 3
  speed = 'error' if 'error' in cell else _fmt(cell.get('images_per_s'), '.2f')
  return [speed, _fmt(cell.get('size_mb'), '.1f'), _fmt(cell.get('depth_rel_l2'), '.1e')]


def markdown_table(rows: dict[str, dict[str, Any]], batch_sizes: Sequence[int],
                   runtimes: Sequence[str] = ()) -> str:
  """One line per config: measured columns beside the published size and fps of its row.

  Each of ``runtimes`` other than JAX adds its CPU img/s at batch 1, file MB and relative L2
  error of the depth against JAX's.
  """
  chosen = [r for r in runtimes if r in exported.EXPORT_RUNTIMES]
  infer_cols = [f'img/s b{b}' for b in batch_sizes]
  header = (['model', 'config', 'bins', 'params', 'param MB', 'size MB', 'published size MB']
            + infer_cols + ['ms/img b1' if 1 in batch_sizes else None]
            + [f'{r} {col}' for r in chosen for col in ('img/s b1', 'MB', 'rel. L2')]
            + ['train img/s', 'train GB', 'GFLOP/img', 'GFLOP/s', 'compile s',
               'published fps (RTX 2070 S)'])
  header = [h for h in header if h is not None]
  lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
  for name, row in rows.items():
    published = reference.REFERENCE.get(row.get('reference') or '')
    inference = row['inference']
    first = inference[str(batch_sizes[0])]
    cells = [published.model if published else '—', name, str(row['bins']),
             f'{row["params"] / 1e6:.2f} M', _fmt(row['param_mb'], '.1f'),
             _fmt(row['checkpoint_mb'], '.1f'), _fmt(published and published.size_mb, 'g')]
    cells += [_fmt(inference[str(b)]['images_per_s'], '.2f') for b in batch_sizes]
    if 1 in batch_sizes:
      cells.append(_fmt(inference['1']['ms_per_image'], '.0f'))
    for runtime in chosen:
      cells += _runtime_cells(row.get('runtimes', {}).get(runtime))
    train = row.get('train')
    cells += [_fmt(train.get('images_per_s'), '.2f') if train else '—',
              _fmt(train.get('peak_gb'), '.1f') if train else '—',
              _fmt(first['gflop_per_image'], '.1f'),
              _fmt(first['achieved_gflop_per_s'], '.1f'),
              _fmt(first['compile_s'], '.1f'), _fmt(published and published.fps, 'g')]
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines)


def study_ratios(rows: dict[str, dict[str, Any]], batch: int) -> str:
  """The depthwise U-Net against the paper model, measured and published: speed and size
  ratios, if both configs ran ('' otherwise)."""
  fast, paper = rows.get('unet128_dws'), rows.get('effnet_b5_256')
  if not (fast and paper):
    return ''
  speed = (fast['inference'][str(batch)]['images_per_s']
           / paper['inference'][str(batch)]['images_per_s'])
  smaller = paper['checkpoint_mb'] / fast['checkpoint_mb']
  published_fast = reference.REFERENCE['unet128_dws']
  published_paper = reference.REFERENCE['effnet_b5_256']
  published_speed = published_fast.fps / published_paper.fps
  published_smaller = published_paper.size_mb / published_fast.size_mb
  return (f'unet128_dws vs effnet_b5_256: {speed:.1f}x the inference speed at batch {batch} '
          f'(published: {published_speed:.1f}x), {smaller:.1f}x smaller checkpoint '
          f'(published: {published_smaller:.1f}x).')


def run_configs(config_names: Sequence[str], **kwargs) -> dict[str, Any]:
  """Benchmarks each config; returns {'environment': ..., 'rows': {name: row}}."""
  rows = {}
  for name in config_names:
    key = os.path.splitext(os.path.basename(name))[0]
    logging.info('Benchmarking %s.', key)
    rows[key] = benchmark_config(load_config(name), **kwargs)
    logging.info('%s: %s', key, json.dumps(rows[key]))
  return {'environment': environment(), 'rows': rows}
