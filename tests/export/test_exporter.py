"""Export: every format gives JAX's depth, names its input and outputs, and runs without JAX;
the command replaces only its own exports, all at once, and refuses bad paths before any work."""

import dataclasses
import errno
import json
import os
import pathlib
import re
import subprocess
import sys

from flax import nnx
import jax
import numpy as np
import optax
import pytest

onnx = pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('tf2onnx')

# pylint: disable=g-import-not-at-top,wrong-import-position
from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax.export import exporter
from adabins_jax.export import formats as export_formats
from adabins_jax import models
# pylint: enable=g-import-not-at-top,wrong-import-position

_FP32_TOLERANCE, _FP16_TOLERANCE = 1e-4, 1e-2
_DOC = pathlib.Path(__file__).resolve().parents[2] / 'docs' / 'export.md'


@dataclasses.dataclass
class _Exported:
  config: object
  model: nnx.Module
  options: exporter.ExportOptions
  paths: dict[str, pathlib.Path]
  image: np.ndarray
  reference: dict[str, np.ndarray]


def _export_all(config, size: str, out: pathlib.Path) -> _Exported:
  """Every format of one model, random weights, each conversion done once."""
  model = models.random_model(config.model, seed=1)
  model.eval()
  exporter.use_plain_convolutions(model)
  options = exporter.ExportOptions(size=size)
  fn = exporter.depth_function(model, config)
  paths = {'stablehlo': out / 'model.stablehlo', 'savedmodel': out / 'savedmodel',
           'tflite': out / 'model.tflite', 'onnx': out / 'model.onnx'}
  export_formats.write_stablehlo(fn, paths['stablehlo'], 1, options.size)
  export_formats.write_savedmodel(fn, paths['savedmodel'], 1, options.size)
  export_formats.write_tflite(paths['savedmodel'], paths['tflite'])
  export_formats.write_onnx(paths['tflite'], paths['onnx'], exporter.signature(config, options))
  image = np.random.default_rng(0).integers(0, 256, (1, *options.size, 3), np.uint8)
  reference = {k: np.asarray(v) for k, v in jax.jit(fn)(image).items()}
  return _Exported(config, model, options, paths, image, reference)


@pytest.fixture(scope='module')
def demo(tmp_path_factory):
  return _export_all(configs.load('demo'), '64x96', tmp_path_factory.mktemp('demo'))


@pytest.fixture(scope='module')
def unet128_dws(tmp_path_factory):
  config = configs.load('unet128_dws')
  # 4x4 patches give the bins head its 129 tokens from a 96x128 input (16x16 ones need
  # 320x416 and triple the test's time); the depthwise-separable convolutions are unchanged.
  config.model.patch_size = 4
  return _export_all(config, '96x128', tmp_path_factory.mktemp('unet128_dws'))


def _relative_l2(got, want) -> float:
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


def _check_close(got: dict, reference: dict, tolerance: float) -> None:
  assert set(got) == set(reference)
  for name, want in reference.items():
    assert got[name].shape == want.shape and got[name].dtype == np.float32, name
    assert _relative_l2(got[name], want) <= tolerance, (name, _relative_l2(got[name], want))


def test_the_formats_offered_are_those_written_and_read_back():
  # The command's --format choices are listed without JAX (export.options); formats.py reads
  # each back.
  assert exporter.FORMATS == tuple(export_formats.LOADERS)


@pytest.mark.parametrize('name', ['demo', 'unet128_dws'])
@pytest.mark.parametrize('fmt', exporter.FORMATS)
@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_every_format_gives_the_depth_of_jax(request, name, fmt):
  exported = request.getfixturevalue(name)
  got = export_formats.load(exported.paths[fmt])(exported.image)
  _check_close(got, exported.reference, _FP32_TOLERANCE)


def test_files_name_their_input_and_outputs(demo):
  model = onnx.load(demo.paths['onnx'])
  assert [(v.name, [d.dim_value for d in v.type.tensor_type.shape.dim])
          for v in model.graph.input] == [('image', [1, 64, 96, 3])]
  assert [v.name for v in model.graph.output] == ['depth', 'bin_centers']
  props = {p.key: p.value for p in model.metadata_props}
  assert props['input.image'].startswith('uint8 [1, 64, 96, 3]')
  assert props['output.depth'] == 'float32 [1, 64, 96] metres'
  assert props['output.bin_centers'] == 'float32 [1, 128] metres'
  assert props['input_scale'] == '0.4'  # The demo's; the documented script reads it.
  interpreter = export_formats._tflite_interpreter(  # pylint: disable=protected-access
      demo.paths['tflite'])
  assert interpreter.get_signature_list() == {
      'serving_default': {'inputs': ['image'], 'outputs': ['bin_centers', 'depth']}}
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  serve = tf.saved_model.load(str(demo.paths['savedmodel'])).signatures['serving_default']
  assert set(serve.structured_input_signature[1]) == {'image'}
  assert set(serve.structured_outputs) == {'depth', 'bin_centers'}


def test_fp16_tflite_is_half_the_size_within_tolerance(demo, tmp_path):
  path = tmp_path / 'fp16.tflite'
  export_formats.write_tflite(demo.paths['savedmodel'], path, fp16=True)
  assert path.stat().st_size < 0.6 * demo.paths['tflite'].stat().st_size
  _check_close(export_formats.load(path)(demo.image), demo.reference, _FP16_TOLERANCE)


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_int8_tflite_is_calibrated_on_the_configs_frames(demo, tmp_path):
  config = demo.config.copy_and_resolve_references()
  config.data.dataset = 'synthetic_rooms/tiny'
  config.data.tfds_data_dir = str(tmp_path / 'tfds')
  frames = list(exporter.calibration_frames(config, (64, 96), 3))
  assert [f.shape for f in frames] == [(1, 64, 96, 3)] * 3 and frames[0].dtype == np.uint8
  path = tmp_path / 'int8.tflite'
  exporter.export(demo.model, config, 'tflite', path,
                exporter.ExportOptions(size='64x96', int8=True, calibration=3))
  # The convolutions' weights are int8, the bins head's dense layers stay float32.
  assert path.stat().st_size < 0.5 * demo.paths['tflite'].stat().st_size
  depth = export_formats.load(path)(frames[0])['depth']
  assert depth.shape == (1, 64, 96) and np.all(np.isfinite(depth))
  assert config.model.min_depth_m <= depth.min() and depth.max() <= config.model.max_depth_m
  ops = _tflite_ops(path)
  convs = [op for op in ops if op[0] in export_formats.INT8_CONV_OPS]
  assert convs and all(dtype == np.int8 for _, dtype in convs), convs
  # The converter may keep a max-pool over int8 values in int8, which is exact.
  floats = [op for op in ops if op[0] in export_formats.FLOAT_OPS_UNDER_INT8
            and op[0] != 'MAX_POOL_2D']
  assert floats and not [op for op in floats if op[1] == np.int8], floats


def _tflite_ops(path) -> list[tuple[str, type]]:
  """(op name, dtype of its first input) of every op of a TFLite file, without delegates."""
  litert = pytest.importorskip('ai_edge_litert.interpreter')
  interpreter = litert.Interpreter(
      model_path=os.fspath(path),
      experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
  tensors = {t['index']: t['dtype'] for t in interpreter.get_tensor_details()}
  return [(op['op_name'], tensors.get(op['inputs'][0]) if len(op['inputs']) else None)
          for op in interpreter._get_ops_details()]  # pylint: disable=protected-access


@pytest.mark.parametrize('name', ['demo', 'unet128_dws'])
def test_int8_leaves_every_op_but_the_convolutions_in_float(request, name):
  """Every op the models export to is a convolution or listed to stay in float under int8."""
  exported = request.getfixturevalue(name)
  names = {op for op, _ in _tflite_ops(exported.paths['tflite'])}
  allowed = set(export_formats.INT8_CONV_OPS) | set(export_formats.FLOAT_OPS_UNDER_INT8)
  assert names - allowed == set(), names - allowed


def test_dynamic_batch_stablehlo_and_fixed_batch_only_for_tflite(demo, tmp_path):
  fn = exporter.depth_function(demo.model, demo.config)
  export_formats.write_stablehlo(fn, tmp_path / 'any.stablehlo', None, demo.options.size)
  images = np.concatenate([demo.image, demo.image[:, ::-1]])
  got = export_formats.load(tmp_path / 'any.stablehlo')(images)
  _check_close({k: v[:1] for k, v in got.items()}, demo.reference, _FP32_TOLERANCE)
  for fmt in ('tflite', 'onnx'):
    with pytest.raises(ValueError, match='fixed --batch'):
      exporter.export(demo.model, demo.config, fmt, tmp_path / 'x', exporter.ExportOptions(
          size='64x96', batch=None))
  with pytest.raises(ValueError, match='tflite only'):
    exporter.export(demo.model, demo.config, 'onnx', tmp_path / 'x',
                  exporter.ExportOptions(fp16=True))


def _run_export(*flags_):
  return subprocess.run(
      [sys.executable, '-m', 'adabins_jax.export', '--config=demo', *flags_],
      capture_output=True, text=True, timeout=120, env={**os.environ, 'JAX_PLATFORMS': 'cpu'})


@pytest.fixture(scope='module')
def run_dir(demo, tmp_path_factory):
  """A training run whose checkpoint holds the demo fixture's weights."""
  workdir = tmp_path_factory.mktemp('run')
  manager = checkpointing.create_manager(workdir)
  checkpointing.save(manager, 1, demo.model,
                     nnx.Optimizer(demo.model, optax.sgd(0.1), wrt=nnx.Param), force=True)
  checkpointing.finish(manager)
  manager.close()
  return workdir


def _tree(folder: pathlib.Path) -> dict[str, bytes]:
  return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*'))
          if p.is_file()}


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_command_exports_a_training_run(demo, run_dir, tmp_path):
  output = tmp_path / 'demo.stablehlo'
  done = _run_export(f'--workdir={run_dir}', '--format=stablehlo', f'--output={output}',
                     '--size=64x96')
  assert done.returncode == 0, done.stderr[-3000:]
  assert '"output.depth": "float32 [1, 64, 96] metres"' in done.stdout
  assert '"config": "demo"' in done.stdout
  # The fixture's weights went through the checkpoint, so the numbers must be the same.
  _check_close(export_formats.load(output)(demo.image), demo.reference, _FP32_TOLERANCE)
  assert os.listdir(tmp_path) == ['demo.stablehlo']


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_command_replaces_a_previous_export(demo, run_dir, tmp_path):
  output = tmp_path / 'demo.stablehlo'
  fn = exporter.depth_function(demo.model, demo.config)
  export_formats.write_stablehlo(fn, output, 1, (48, 64))
  assert export_formats.is_export(output, 'stablehlo')
  done = _run_export(f'--workdir={run_dir}', '--format=stablehlo', f'--output={output}',
                     '--size=64x96')
  assert done.returncode == 0, done.stderr[-3000:]
  _check_close(export_formats.load(output)(demo.image), demo.reference, _FP32_TOLERANCE)
  assert os.listdir(tmp_path) == ['demo.stablehlo']


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_command_overwrites_what_is_not_an_export_only_when_asked(demo, run_dir, tmp_path):
  output = tmp_path / 'notes.stablehlo'
  output.write_text('not a model')
  refused = _run_export(f'--workdir={run_dir}', '--format=stablehlo', f'--output={output}')
  assert refused.returncode == 2 and 'ExportOutputError' in refused.stderr, refused.stderr
  assert '--overwrite' in refused.stderr and output.read_text() == 'not a model'
  done = _run_export(f'--workdir={run_dir}', '--format=stablehlo', f'--output={output}',
                     '--size=64x96', '--overwrite')
  assert done.returncode == 0, done.stderr[-3000:]
  _check_close(export_formats.load(output)(demo.image), demo.reference, _FP32_TOLERANCE)


@pytest.mark.parametrize('fmt,output,why', [
    ('savedmodel', 'RUN', 'is not a previous --format=savedmodel export'),
    ('onnx', 'RUN/checkpoints', 'is a folder; --format=onnx writes a file'),
    ('savedmodel', 'RUN/notes.txt', 'is a file; --format=savedmodel writes a folder'),
    ('tflite', 'RUN/missing/demo.tflite', 'does not exist; create it first'),
])
@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_command_refuses_a_bad_output_before_any_work(run_dir, fmt, output, why):
  """The training run itself as --output keeps its checkpoints; a wrong kind of output or a
  missing folder is refused even with --overwrite."""
  (run_dir / 'notes.txt').write_text('keep me')
  before = _tree(run_dir)
  output = output.replace('RUN', str(run_dir))
  overwrite = [] if fmt == 'savedmodel' and output == str(run_dir) else ['--overwrite']
  done = _run_export(f'--workdir={run_dir}', f'--format={fmt}', f'--output={output}',
                     *overwrite)
  assert done.returncode == 2, done.stderr[-3000:]
  assert f'ExportOutputError: --output={output}' in done.stderr and why in done.stderr
  assert 'Traceback' not in done.stderr
  assert _tree(run_dir) == before


@pytest.mark.parametrize('weights', ['--workdir=MISSING', '--workdir=EMPTY',
                                     '--weights=MISSING/AdaBins_nyu.pt', None])
def test_command_refuses_missing_weights_before_any_work(tmp_path, weights):
  (tmp_path / 'empty').mkdir()
  flags_ = [weights.replace('MISSING', str(tmp_path / 'missing')).replace(
      'EMPTY', str(tmp_path / 'empty'))] if weights else []
  done = _run_export(*flags_, '--format=onnx', f'--output={tmp_path / "x.onnx"}')
  assert done.returncode == 2, done.stderr[-3000:]
  assert 'WeightsNotFoundError: ' in done.stderr and 'Traceback' not in done.stderr
  assert sorted(os.listdir(tmp_path)) == ['empty']


def test_command_checks_options_before_loading_weights(tmp_path):
  done = _run_export(f'--workdir={tmp_path / "missing"}', '--format=onnx', '--fp16',
                     f'--output={tmp_path / "x.onnx"}')
  assert done.returncode == 2
  assert '--fp16 and --int8 apply to --format=tflite only' in done.stderr, done.stderr[-2000:]


def test_savedmodel_replaces_only_a_marked_export(demo, tmp_path):
  output = tmp_path / 'savedmodel'
  options = exporter.ExportOptions(size='64x96')
  exporter.export(demo.model, demo.config, 'savedmodel', output, options, config_name='demo')
  marker = json.loads((output / export_formats.SAVEDMODEL_MARKER).read_text())
  assert marker['exporter'] == export_formats.EXPORTER and marker['config'] == 'demo'
  (output / 'variables' / 'stale').write_text('from the export before')
  exporter.export(demo.model, demo.config, 'savedmodel', output, options)
  assert not (output / 'variables' / 'stale').exists()
  _check_close(export_formats.load(output)(demo.image), demo.reference, _FP32_TOLERANCE)
  # The fixture's SavedModel was written without the marker: not replaced unless asked.
  foreign = demo.paths['savedmodel']
  before = _tree(foreign)
  with pytest.raises(export_formats.ExportOutputError, match='--overwrite'):
    exporter.export(demo.model, demo.config, 'savedmodel', foreign, options)
  assert _tree(foreign) == before
  (output / 'notes.txt').write_text('not part of an export')
  (output / export_formats.SAVEDMODEL_MARKER).unlink()
  exporter.export(demo.model, demo.config, 'savedmodel', output,
                dataclasses.replace(options, overwrite=True))
  assert not (output / 'notes.txt').exists()
  assert (output / export_formats.SAVEDMODEL_MARKER).exists()
  assert os.listdir(tmp_path) == ['savedmodel']


def test_exports_are_recognised_by_their_own_metadata(demo, tmp_path):
  assert export_formats.is_export(demo.paths['tflite'], 'tflite')
  assert export_formats.is_export(demo.paths['stablehlo'], 'stablehlo')
  # The fixture wrote its ONNX file without the exporter's stamp; write_all adds it.
  assert not export_formats.is_export(demo.paths['onnx'], 'onnx')
  (tmp_path / 'x.onnx').write_bytes(b'\x08\x07garbage')
  assert not export_formats.is_export(tmp_path / 'x.onnx', 'onnx')
  assert not export_formats.is_export(demo.paths['onnx'], 'tflite')


class _DiskFull(OSError):

  def __init__(self):
    super().__init__(errno.ENOSPC, 'No space left on device')


def _half_written(path) -> None:
  pathlib.Path(path).write_bytes(b'part of a model')
  raise _DiskFull()


@pytest.mark.parametrize('old', [True, False])
@pytest.mark.parametrize('fmt', exporter.FORMATS)
def test_a_failed_write_leaves_the_old_export_and_no_temporary(monkeypatch, tmp_path, fmt, old):
  def write_savedmodel(fn, output, *args):
    del fn, args
    os.makedirs(output)
    if fmt == 'savedmodel':
      _half_written(os.path.join(output, 'saved_model.pb'))

  def write_tflite(savedmodel, output, **kwargs):
    del savedmodel, kwargs
    if fmt == 'tflite':
      _half_written(output)
    pathlib.Path(output).write_bytes(b'a whole TFLite file')

  monkeypatch.setattr(export_formats, 'write_savedmodel', write_savedmodel)
  monkeypatch.setattr(export_formats, 'write_tflite', write_tflite)
  monkeypatch.setattr(export_formats, 'write_onnx', lambda src, out, meta: _half_written(out))
  monkeypatch.setattr(export_formats, 'write_stablehlo', lambda fn, out, *a: _half_written(out))
  output = tmp_path / f'model.{fmt}'
  if old and fmt == 'savedmodel':
    output.mkdir()
    (output / 'saved_model.pb').write_bytes(b'the old export')
  elif old:
    output.write_bytes(b'the old export')
  before = _tree(tmp_path)
  with pytest.raises(_DiskFull):
    export_formats.write_all(lambda image: {}, fmt, output, 1, (64, 96), {})
  assert _tree(tmp_path) == before
  assert os.listdir(tmp_path) == (['model.' + fmt] if old else [])


# Re-exports over argv[2] as argv[1], killed by SIGKILL halfway through writing.
_KILLED_HALFWAY = '''
import os, pathlib, signal, sys
from adabins_jax.export import formats as export_formats

def killed(path):
  pathlib.Path(path).write_bytes(b'part of a model')
  os.kill(os.getpid(), signal.SIGKILL)

def write_savedmodel(fn, output, *args):
  os.makedirs(output)
  killed(os.path.join(output, 'saved_model.pb'))

export_formats.write_savedmodel = write_savedmodel
export_formats.write_stablehlo = lambda fn, output, *args: killed(output)
export_formats.write_all(lambda image: {}, sys.argv[1], sys.argv[2], 1, (64, 96), {})
'''


@pytest.mark.slow  # Subprocess: an export in a child process, killed mid-write.
@pytest.mark.parametrize('fmt', ['savedmodel', 'stablehlo'])
def test_a_killed_export_leaves_the_old_one(tmp_path, fmt):
  output = tmp_path / f'model.{fmt}'
  if fmt == 'savedmodel':
    output.mkdir()
    (output / 'saved_model.pb').write_bytes(b'the old export')
  else:
    output.write_bytes(b'the old export')
  before = _tree(output) if fmt == 'savedmodel' else output.read_bytes()
  done = subprocess.run([sys.executable, '-c', _KILLED_HALFWAY, fmt, str(output)],
                        capture_output=True, text=True, timeout=60,
                        env={**os.environ, 'JAX_PLATFORMS': 'cpu'})
  assert done.returncode == -9, done.stderr[-3000:]
  assert (_tree(output) if fmt == 'savedmodel' else output.read_bytes()) == before
  # The part-written copy stays under its hidden temporary name, never under the real one.
  assert [p.startswith('.tmp-') for p in sorted(os.listdir(tmp_path))] == [True, False]


# Run before the documented script: no module of the JAX stack (nor TF) can be imported.
_NO_JAX = '''
import importlib.abc, runpy, sys
BLOCKED = ('jax', 'jaxlib', 'flax', 'tensorflow', 'adabins_jax')
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in BLOCKED:
      raise ImportError(f'{name} is blocked in this test')
sys.meta_path.insert(0, Block())
try:
  import jax
except ImportError:
  pass
else:
  raise SystemExit('jax was importable')
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
'''


def _documented_script() -> str:
  blocks = re.findall(r'```python\n(.*?)```', _DOC.read_text(), re.S)
  (script,) = [b for b in blocks if 'onnxruntime.InferenceSession' in b]
  return script


# The documented script's depth against the project's own (DepthNetwork) on the same photo,
# relative to the photo's depth range. Measured on the demo fixture's model: within 1.5e-5 of
# the project's depth from the same uint8 input resampled the same two times, and within a mean
# 0.0042 and a worst 0.087 of the project's own depth (docs/export.md quotes these). A script
# resizing with Pillow alone (the photo on uint8, the depth with Pillow's bilinear) is 0.11 off
# the former at worst and 0.017 off the latter on average.
_SAME_STEPS_TOLERANCE = 1e-4
_PROJECT_MEAN_TOLERANCE, _PROJECT_MAX_TOLERANCE = 0.008, 0.15


@dataclasses.dataclass
class _Photo:
  path: pathlib.Path
  depth: np.ndarray  # The project's, as Predictor computes it.
  depth_same_steps: np.ndarray  # The project's from the uint8 input, resampled twice.


@pytest.fixture(scope='module')
def documented_photo(demo, tmp_path_factory) -> _Photo:
  """A photo neither the network's size (64x96) nor its aspect, and the project's depth of it.

  The demo model learned at input_scale 0.4, so the script goes through the frames' scale too.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from adabins_jax import metrics  # pylint: disable=g-import-not-at-top
  from adabins_jax import network_input  # pylint: disable=g-import-not-at-top
  from adabins_jax.inference import network  # pylint: disable=g-import-not-at-top
  from adabins_jax.inference import photos  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  # Smooth shapes (a small random picture enlarged) with pixel noise over them.
  smooth = Image.fromarray(rng.integers(0, 256, (12, 10, 3), np.uint8)).resize(
      (200, 240), Image.Resampling.BICUBIC)
  pixels = np.asarray(smooth).astype(int) + rng.integers(-20, 21, (240, 200, 3))
  path = tmp_path_factory.mktemp('photo') / 'photo.png'
  Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
  rgb = photos.as_rgb(path)
  hw, photo_hw = demo.options.size, rgb.shape[:2]
  assert demo.config.data.input_scale != 1
  net = network.DepthNetwork(demo.model, demo.config, flip_average=True)
  ((depth, _),) = net.run([net.input_for(rgb, hw)], [photo_hw])
  rounded = network_input.to_uint8(network_input.network_image(
      rgb, hw, demo.config.data.input_scale)).astype(np.float32) / 255
  # As the exported graph: depth at the network input, then resized to the photo.
  ((at_input, _),) = net.run([network_input.normalize(rounded)], [hw])
  same_steps = metrics.postprocess_prediction(at_input[None, ..., None], None, photo_hw,
                                              *net.depth_range)
  return _Photo(path, depth, np.asarray(same_steps)[0, ..., 0])


@pytest.mark.slow  # Subprocess: the documented script in a child process without JAX.
@pytest.mark.parametrize('fmt', ['onnx', 'tflite'])
def test_documented_example_runs_without_jax(demo, documented_photo, tmp_path, fmt):
  """The script runs without JAX and gives the project's depth, but for what the document says
  differs: the uint8 input and the depth resampled twice."""
  script = tmp_path / 'depth.py'
  script.write_text(_documented_script())
  # A .tflite file records no input_scale: the document passes it after the output.
  scale = [] if fmt == 'onnx' else [str(demo.config.data.input_scale)]
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  done = subprocess.run(
      [sys.executable, '-c', _NO_JAX, str(script), str(demo.paths[fmt]),
       str(documented_photo.path), str(tmp_path / 'depth.npy'), *scale],
      capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
  assert done.returncode == 0, done.stderr[-3000:]
  depth = np.load(tmp_path / 'depth.npy')
  want = documented_photo.depth
  assert depth.shape == want.shape == (240, 200) and depth.dtype == np.float32
  lo, hi = demo.config.model.min_depth_m, demo.config.model.max_depth_m
  assert lo <= depth.min() and depth.max() <= hi
  assert '128 bins' in done.stdout
  spread = float(want.max() - want.min())
  assert spread > 0.05, spread  # A flat depth map would compare nothing.
  error = np.abs(depth - want) / spread
  mean, worst = float(error.mean()), float(error.max())
  assert mean <= _PROJECT_MEAN_TOLERANCE and worst <= _PROJECT_MAX_TOLERANCE, (mean, worst)
  same_steps = float(np.abs(depth - documented_photo.depth_same_steps).max()) / spread
  assert same_steps <= _SAME_STEPS_TOLERANCE, same_steps
