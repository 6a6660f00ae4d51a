"""Tests for adabins_jax.benchmark: the command runs end to end; its numbers mean what they say."""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adabins_jax.benchmark import measure
from adabins_jax.benchmark import exported
from adabins_jax import models
from adabins_jax.models import layers

_REPO = pathlib.Path(__file__).resolve().parents[2]


def _positive_finite(value):
  return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.slow  # Compiling the train step: 10-20 s on a busy 2-core CPU.
def test_command_writes_json_and_table_for_the_smoke_config(tmp_path):
  out = tmp_path / 'bench.json'
  # Compiling the train step dominates; XLA's lowest optimisation level halves it.
  env = dict(os.environ, XLA_FLAGS='--xla_backend_optimization_level=0', JAX_PLATFORMS='cpu')
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.benchmark', '--configs=configs/smoke.py',
       '--eval_size=64x80', '--train_size=32x40', '--train_batch_size=2', '--batch_sizes=1,2',
       '--repeats=2', f'--output={out}'],
      cwd=_REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert '| — | smoke | 16 | 0.18 M |' in result.stdout
  data = json.loads(out.read_text())
  assert data['environment']['backend'] == 'cpu'
  row = data['rows']['smoke']
  abstract = models.build_abstract_model(measure.load_config('smoke').model)
  params = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
  assert row['params'] == params
  assert row['param_mb'] == pytest.approx(4 * params / 1e6)
  # Parameters + Adam's two moments + BatchNorm statistics (a few scalars of optimizer state).
  bn = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(abstract, nnx.BatchStat)))
  assert row['checkpoint_mb'] == pytest.approx(4 * (3 * params + bn) / 1e6, abs=1e-3)
  assert (row['inference']['height'], row['inference']['width']) == (64, 80)
  one, two = row['inference']['1'], row['inference']['2']
  for measured in (one, two):
    for key in ('images_per_s', 'ms_per_image', 'compile_s', 'gflop_per_image',
                'achieved_gflop_per_s'):
      assert _positive_finite(measured[key]), (key, measured)
  # FLOPs are per image: the same at batch 1 and 2.
  assert two['gflop_per_image'] == pytest.approx(one['gflop_per_image'], rel=0.02)
  assert one['ms_per_image'] == pytest.approx(1e3 / one['images_per_s'])
  train = row['train']
  assert (train['height'], train['width'], train['batch']) == (32, 40, 2)
  assert 'error' not in train, train['error']
  assert _positive_finite(train['images_per_s']) and _positive_finite(train['compile_s'])
  # The step's buffers hold at least the model and its two AdamW moments.
  assert train['peak_gb'] * 1e9 >= 3 * 4 * row['params']
  # Forward + backward (about 3 forwards) at a quarter of the inference pixels, plus the loss.
  assert train['gflop_per_image'] > 0.5 * one['gflop_per_image']


@pytest.mark.slow  # Two conversions (SavedModel -> TFLite -> ONNX): about 30 s on 2 cores.
def test_command_times_exported_runtimes_and_writes_them_to_json(tmp_path):
  for package in ('onnxruntime', 'tf2onnx', 'ai_edge_litert'):
    pytest.importorskip(package)
  out = tmp_path / 'bench.json'
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.benchmark', '--configs=demo',
       '--runtimes=jax,onnxruntime,litert', '--eval_size=120x160', '--batch_sizes=1',
       '--repeats=1', '--skip_train', f'--output={out}'],
      cwd=_REPO, env=env, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  header = next(line for line in result.stdout.splitlines() if line.startswith('| model |'))
  for column in ('onnxruntime img/s b1', 'onnxruntime MB', 'onnxruntime rel. L2',
                 'litert img/s b1', 'litert MB', 'litert rel. L2'):
    assert f'| {column} |' in header
  runtimes = json.loads(out.read_text())['rows']['demo']['runtimes']
  # The demo's input_scale, 0.4.
  assert (runtimes['height'], runtimes['width'], runtimes['batch']) == (48, 64, 1)
  for runtime in ('onnxruntime', 'litert'):
    cell = runtimes[runtime]
    assert 'error' not in cell, cell['error']
    assert _positive_finite(cell['images_per_s']) and _positive_finite(cell['size_mb'])
    # The float32 weights, 4 bytes per parameter, are most of the file.
    assert cell['size_mb'] == pytest.approx(4 * 701_904 / 1e6, rel=0.2)
    assert 0 <= cell['depth_rel_l2'] < exported.EXPORT_TOLERANCE


def test_default_runtimes_add_nothing_to_the_table():
  rows = {'mine': _row(2.0, 47.0, None)}
  assert measure.markdown_table(rows, [1], ['jax']) == measure.markdown_table(rows, [1])


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_exported_depth_off_or_failing_marks_the_cell_not_the_run(monkeypatch, tmp_path):
  config = measure.load_config('smoke')
  model = models.random_model(config.model)
  depth_hw = (32, 40)

  def fake_load(path):
    if path.name == 'model.onnx':
      raise RuntimeError('no such op')
    return lambda image: {'depth': np.ones((1, *depth_hw), np.float32)}

  def fake_export(fn, fmt, folder, hw, metadata, written):
    path = tmp_path / fmt
    path.write_bytes(b'x' * 1000)
    return path.with_name('model.onnx') if fmt == 'onnx' else path

  monkeypatch.setattr(exported, '_export_file', fake_export)
  monkeypatch.setattr(exported.export_formats, 'load', fake_load)
  cells = exported.benchmark_exported(model, config, depth_hw, ['tflite', 'onnx'],
                                              repeats=1)
  assert cells['onnx'] == {'error': 'RuntimeError: no such op'}
  tflite = cells['tflite']
  assert tflite['error'].startswith('depth relative L2') and tflite['depth_rel_l2'] > 1e-4
  assert tflite['size_mb'] == pytest.approx(1e-3) and _positive_finite(tflite['images_per_s'])
  # The model's convolutions are the ones it had before the export.
  convs = [m for _, m in nnx.iter_graph(model) if isinstance(m, layers.Conv)]
  assert all(c.conv3x3_impl == 'auto' and c.depthwise_impl == 'auto' for c in convs)
  row = {**_row(2.0, 47.0, None), 'runtimes': {'onnxruntime': cells['onnx'],
                                               'litert': tflite}}
  line = measure.markdown_table({'mine': row}, [1], ['jax', 'onnxruntime', 'litert'])
  assert '| 500 | error | — | — | error | 0.0 |' in line.splitlines()[2]


def test_a_missing_runtime_package_names_the_export_extra(monkeypatch):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name: None if name == 'onnxruntime' else real(name))
  exported.check_runtimes(['jax', 'litert'])
  with pytest.raises(ImportError, match=r"onnxruntime: install the export extra"):
    exported.check_runtimes(['jax', 'onnxruntime'])
  with pytest.raises(ValueError, match='not one of jax, onnxruntime, litert'):
    exported.check_runtimes(['tensorrt'])


def test_flops_and_timing_of_a_known_program():
  x, y = jnp.ones((64, 128)), jnp.ones((128, 256))
  result = measure.time_compiled(jax.jit(jnp.dot), (x, y), repeats=3)
  assert result['flops'] == 2 * 64 * 128 * 256
  # XLA's buffers for one call: at least the two inputs and the output, in float32.
  assert result['peak_gb'] * 1e9 >= 4 * (64 * 128 + 128 * 256 + 64 * 256)
  assert _positive_finite(result['seconds']) and _positive_finite(result['compile_s'])
  # carry: the first output feeds the next call (a train step's donated state).
  step = jax.jit(lambda count, inc: (count + inc, count), donate_argnums=0)
  counted = measure.time_compiled(step, (jnp.zeros(()), jnp.ones(())), repeats=2, carry=True)
  assert counted['flops'] >= 1


class _OneConv(nnx.Module):
  """Stands in for a model: returns (bin_edges, depth) like AdaBins, here (None, conv(x))."""

  def __init__(self, impl):
    self.conv = layers.Conv(64, 64, 3, padding=1, conv3x3_impl=impl, rngs=nnx.Rngs(0))

  def __call__(self, x):
    return None, self.conv(jnp.tile(x, (1, 1, 1, 22))[..., :64])


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_flops_are_the_models_own_whichever_convolution_runs():
  """GFLOP/img counts direct convolutions even where Winograd (fewer FLOPs) runs."""
  results = {impl: measure.benchmark_inference(_OneConv(impl), (32, 48), batch=2, repeats=1)
             for impl in ('winograd', 'xla')}
  winograd, direct = results['winograd'], results['xla']
  assert winograd['gflop_per_image'] == pytest.approx(direct['gflop_per_image'])
  assert direct['executed_gflop_per_image'] == pytest.approx(direct['gflop_per_image'])
  # XLA counts the taps that fall inside the 32x48 image (94 x 142 of 96 x 144), and the bias.
  taps = (3 * 32 - 2) * (3 * 48 - 2)
  assert direct['gflop_per_image'] * 1e9 == pytest.approx(2 * taps * 64 * 64 + 32 * 48 * 64)
  # F(4x4, 3x3): 36 products per 16 outputs instead of 144, plus the transforms.
  assert winograd['executed_gflop_per_image'] < 0.5 * winograd['gflop_per_image']
  assert winograd['achieved_gflop_per_s'] == pytest.approx(
      winograd['gflop_per_image'] * winograd['images_per_s'])


def test_direct_program_is_compiled_again_only_where_winograd_runs():
  def build(model):
    graphdef = nnx.graphdef(model)
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x)[1])

  x = jnp.zeros((1, 32, 48, 3))
  assert measure._nominal_flops(_OneConv('xla'), build, (nnx.state(_OneConv('xla')), x)) is None
  winograd = _OneConv('winograd')
  nominal = measure._nominal_flops(winograd, build, (nnx.state(winograd), x))
  taps = (3 * 32 - 2) * (3 * 48 - 2)
  assert nominal == pytest.approx(2 * taps * 64 * 64 + 32 * 48 * 64, rel=0.01)
  assert winograd.conv.conv3x3_impl == 'winograd'  # Restored after counting.


def test_random_model_is_concrete_and_scaled():
  model = models.random_model(measure.load_config('smoke').model, seed=0)
  flat = dict(nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))))
  assert all(isinstance(v.get_value(), jax.Array) for v in flat.values())
  variances = [np.asarray(v.get_value()) for p, v in flat.items() if p[-1] == 'var']
  assert variances and all(np.all(v == 1.0) for v in variances)
  kernel = max((np.asarray(v.get_value()) for p, v in flat.items() if p[-1] == 'kernel'),
               key=np.size)
  fan_in = math.prod(kernel.shape[:-1])
  assert np.std(kernel) * math.sqrt(fan_in) == pytest.approx(1.0, rel=0.1)


def _row(images_per_s, checkpoint_mb, reference):
  measured = {'images_per_s': images_per_s, 'ms_per_image': 1e3 / images_per_s,
              'compile_s': 2.0, 'gflop_per_image': 10.0, 'achieved_gflop_per_s': 100.0}
  return {'bins': 128, 'params': 1_500_000, 'param_mb': 6.0, 'checkpoint_mb': checkpoint_mb,
          'inference': {'1': measured}, 'reference': reference}


def test_table_rows_and_the_published_ratios():
  rows = {'effnet_b5_256': _row(1.0, 940.0, 'effnet_b5_256'),
          'unet128_dws': _row(4.5, 47.0, 'unet128_dws'), 'mine': _row(2.0, 47.0, None)}
  table = measure.markdown_table(rows, [1])
  lines = table.splitlines()
  assert len(lines) == 5 and lines[0].startswith('| model | config | bins |')
  assert lines[3].startswith('| U-Net, depthwise separable | unet128_dws | 128 | 1.50 M |')
  assert '| 78 |' in lines[3] and '| 34.85 |' in lines[3]  # the published size and fps
  assert lines[4].startswith('| — | mine | 128 |') and lines[4].endswith('| — |')
  # Published: 34.85 / 11.53 fps and 940 / 78 MB.
  assert measure.study_ratios(rows, 1) == (
      'unet128_dws vs effnet_b5_256: 4.5x the inference speed at batch 1 (published: 3.0x), '
      '20.0x smaller checkpoint (published: 12.1x).')
  assert measure.study_ratios({'unet128_dws': rows['unet128_dws']}, 1) == ''


def test_load_config_by_name_and_path():
  assert measure.load_config('unet128_dws').model.conv == 'dws'
  assert measure.load_config(str(_REPO / 'configs' / 'smoke.py')).model.n_bins == 16
  with pytest.raises(FileNotFoundError, match='No config'):
    measure.load_config('unet999')
