"""Writes a depth function in each deployment format, and runs the files it wrote.

``export.py`` builds the function (uint8 images in, ``{'depth', 'bin_centers'}`` out) and
calls the writers here; the runners give every format the same call,
``runner(images) -> {'depth': ..., 'bin_centers': ...}``, so tests and benchmarks compare
formats without knowing their runtimes.

The conversion chain: JAX -> ``jax.export`` (StableHLO); JAX -> jax2tf -> SavedModel ->
TFLite converter (LiteRT); and TFLite -> tf2onnx -> ONNX. ONNX goes through the TFLite file
because jax2tf now only emits native serialisation (one ``XlaCallModule`` op holding
StableHLO), which tf2onnx cannot read from a SavedModel, whereas the TFLite converter
lowers that op to builtin ops that tf2onnx maps one to one. ``jax2onnx`` does not cover every
op these models use, and pins an older orbax-checkpoint than this project needs.

Every output is written under a hidden temporary name beside it and renamed into place once
complete (``files``), so a failure or a kill never leaves a part-written export under the real
name. ``check_output`` says, before any conversion, whether an output may be written there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import json
import os
import pathlib
import tempfile
from typing import Any
import warnings

import jax
from jax import export as jax_export
import numpy as np

from adabins_jax import files

INPUT_NAME = 'image'
OUTPUT_NAMES = ('depth', 'bin_centers')
# tf2onnx's own default; every op this model needs exists from opset 13 on.
ONNX_OPSET = 17

# Stamped into every ONNX file's metadata_props and every SavedModel's marker file: how a
# later export knows that it may replace them.
EXPORTER = 'adabins_jax.export'
# Inside a SavedModel folder, beside saved_model.pb: TF ignores files it does not know.
SAVEDMODEL_MARKER = 'adabins_export.json'

# The input types of the files written here, as onnxruntime names them.
_ONNX_DTYPES = {'tensor(uint8)': np.uint8, 'tensor(float)': np.float32}

# TF's calibration and tf2onnx read TFLite files with tf.lite.Interpreter, whose deprecation
# notice is theirs to act on, not this project's (which runs files with LiteRT).
_TF_INTERPRETER_NOTICE = '.*tf.lite.Interpreter is deprecated'

DepthFn = Callable[..., Mapping[str, jax.Array]]
Runner = Callable[[np.ndarray], dict[str, np.ndarray]]


def _input_spec(batch: int | None, hw: tuple[int, int], dtype=np.uint8):
  """The image argument's shape: (batch or a symbolic 'b', h, w, 3), uint8 by default."""
  n = jax_export.symbolic_shape('b')[0] if batch is None else batch
  return jax.ShapeDtypeStruct((n, *hw, 3), dtype)


def write_stablehlo(fn: DepthFn, output: str | os.PathLike, batch: int | None,
                    hw: tuple[int, int], input_dtype=np.uint8) -> None:
  """Serialises ``fn`` with ``jax.export``; ``load_stablehlo`` reloads it without the model.

  The keyword argument and the output dict keep the names inside the file (its pytree).
  """
  exported = jax_export.export(jax.jit(fn))(**{INPUT_NAME: _input_spec(batch, hw,
                                                                      input_dtype)})
  pathlib.Path(output).write_bytes(exported.serialize())


def write_savedmodel(fn: DepthFn, output: str | os.PathLike, batch: int | None,
                     hw: tuple[int, int], input_dtype=np.uint8) -> None:
  """A SavedModel whose 'serving_default' signature maps 'image' to ``fn``'s outputs ('depth',
  'bin_centers' for export.py's function)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from jax.experimental import jax2tf  # pylint: disable=g-import-not-at-top
  polymorphic = f'({"b" if batch is None else batch}, {hw[0]}, {hw[1]}, 3)'
  converted = jax2tf.convert(lambda image: fn(**{INPUT_NAME: image}),
                             polymorphic_shapes=[polymorphic], with_gradient=False)
  module = tf.Module()
  # The weights are constants of the converted graph: the file is the model, nothing to train.
  module.serve = tf.function(converted, autograph=False, input_signature=[
      tf.TensorSpec((batch, *hw, 3), tf.as_dtype(input_dtype), name=INPUT_NAME)])
  tf.saved_model.save(module, os.fspath(output), signatures={
      'serving_default': module.serve.get_concrete_function()})


# TFLite ops that int8 quantisation leaves in float32: every op the models export to except the
# convolutions. Quantising them all (the converter's default) took the trained demo's d1 from
# 0.85 to 0.11: the bins head's widths, their normalisation and cumulative sum, the
# range-attention softmax and the weighted sum of centres lose their small values at 8 bits.
# The convolutions alone, in int8 with their activations, cost it nothing measurable
# (docs/benchmark.md, "Exported models"). tests/export/test_exporter.py checks that every other
# op of the exported models is listed here.
INT8_CONV_OPS = ('CONV_2D', 'DEPTHWISE_CONV_2D')
FLOAT_OPS_UNDER_INT8 = (
    'ABS', 'ADD', 'ARG_MAX', 'AVERAGE_POOL_2D', 'BATCH_MATMUL', 'BROADCAST_TO', 'CAST', 'CEIL',
    'CONCATENATION', 'CUMSUM', 'DIV', 'EXP', 'EXPAND_DIMS', 'FLOOR', 'FULLY_CONNECTED', 'GATHER',
    'GATHER_ND', 'HARD_SWISH', 'LEAKY_RELU', 'LOG', 'LOGISTIC', 'MAXIMUM', 'MAX_POOL_2D', 'MEAN',
    'MINIMUM', 'MIRROR_PAD', 'MUL', 'NOT_EQUAL', 'PACK', 'PAD', 'PADV2', 'POW', 'REDUCE_MAX',
    'RELU', 'RELU6', 'RESHAPE', 'RESIZE_BILINEAR', 'REVERSE_V2', 'RSQRT', 'SELECT_V2', 'SLICE',
    'SOFTMAX', 'SPLIT', 'SQRT', 'SQUARE', 'SQUARED_DIFFERENCE', 'SQUEEZE', 'STRIDED_SLICE', 'SUB',
    'SUM', 'TANH', 'TRANSPOSE', 'UNPACK')


def write_tflite(savedmodel: str | os.PathLike, output: str | os.PathLike, *,
                 fp16: bool = False,
                 calibration: Iterable[np.ndarray] | None = None) -> None:
  """Converts a SavedModel to a TFLite (LiteRT) flatbuffer.

  Args:
    savedmodel: From ``write_savedmodel``.
    output: The .tflite file.
    fp16: Store the weights as float16 (half the file; the runtime computes in float32).
    calibration: uint8 images (1, h, w, 3), each one network input: int8 post-training
      quantisation of the convolutions' weights and activations, calibrated on them; every
      other op stays in float32 (``FLOAT_OPS_UNDER_INT8``). Input and outputs stay uint8 and
      float32.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  converter = tf.lite.TFLiteConverter.from_saved_model(os.fspath(savedmodel))
  if fp16 and calibration is not None:
    raise ValueError('export: --fp16 and --int8 exclude each other.')
  if fp16:
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_TF_INTERPRETER_NOTICE)
    if calibration is None:
      pathlib.Path(output).write_bytes(converter.convert())
      return
    frames = list(calibration)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    dataset = lambda: ({INPUT_NAME: f} for f in frames)
    converter.representative_dataset = dataset
    # TF's selective quantisation: the debugger converts with the listed ops kept in float.
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=dataset,
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(FLOAT_OPS_UNDER_INT8)))
    pathlib.Path(output).write_bytes(debugger.get_nondebug_quantized_model())


def write_onnx(tflite: str | os.PathLike, output: str | os.PathLike,
               metadata: Mapping[str, str]) -> None:
  """Converts a TFLite file to ONNX, names its input and outputs, and stores ``metadata``.

  The TFLite file's tensors are named after TF's graph ('serving_default_image:0',
  'StatefulPartitionedCall:1'); its signature says which is which.
  """
  import onnx  # pylint: disable=g-import-not-at-top
  import tf2onnx  # pylint: disable=g-import-not-at-top
  interpreter = _tflite_interpreter(tflite)
  details = interpreter.get_signature_runner()
  renames = {d['name']: name for name, d in details.get_input_details().items()}
  renames.update({d['name']: name for name, d in details.get_output_details().items()})
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_TF_INTERPRETER_NOTICE)
    model, _ = tf2onnx.convert.from_tflite(os.fspath(tflite), opset=ONNX_OPSET)
  graph = model.graph
  for node in graph.node:
    node.input[:] = [renames.get(n, n) for n in node.input]
    node.output[:] = [renames.get(n, n) for n in node.output]
  for value in (*graph.input, *graph.output):
    value.name = renames.get(value.name, value.name)
  order = {name: i for i, name in enumerate(OUTPUT_NAMES)}
  outputs = sorted(graph.output, key=lambda v: order.get(v.name, len(order)))
  del graph.output[:]
  graph.output.extend(outputs)
  onnx.helper.set_model_props(model, dict(metadata))
  onnx.checker.check_model(model)
  onnx.save(model, os.fspath(output))


def _tflite_interpreter(path: str | os.PathLike, num_threads: int | None = None):
  try:
    from ai_edge_litert.interpreter import Interpreter  # pylint: disable=g-import-not-at-top
  except ImportError:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    Interpreter = tf.lite.Interpreter  # pylint: disable=invalid-name
  return Interpreter(model_path=os.fspath(path), num_threads=num_threads)


def write_all(fn: DepthFn, fmt: str, output: str | os.PathLike, batch: int | None,
              hw: tuple[int, int], metadata: Mapping[str, str], *, input_dtype=np.uint8,
              **tflite_kw: Any) -> None:
  """Writes ``fn`` as ``fmt`` ('stablehlo', 'savedmodel', 'tflite' or 'onnx') to ``output``.

  All or nothing: ``output`` (and whatever it replaces) is only renamed into place once the
  whole file or folder is written, so a failure leaves the old one as it was. The TFLite and
  ONNX files are built through a SavedModel (and a TFLite file) in a temporary folder;
  ``input_dtype`` is the 'image' input's; ``tflite_kw`` goes to ``write_tflite``. ONNX files
  store ``metadata`` and ``EXPORTER``, SavedModels both in ``SAVEDMODEL_MARKER``.
  """
  metadata = {**metadata, 'exporter': EXPORTER}
  if fmt == 'savedmodel':
    with files.atomic_folder(output) as temporary:
      write_savedmodel(fn, temporary, batch, hw, input_dtype)
      pathlib.Path(temporary, SAVEDMODEL_MARKER).write_text(
          json.dumps({'format': fmt, **metadata}, indent=2))
    return
  with files.atomic_path(output) as temporary:
    if fmt == 'stablehlo':
      write_stablehlo(fn, temporary, batch, hw, input_dtype)
      return
    with tempfile.TemporaryDirectory(prefix='adabins-export-') as tmp:
      write_savedmodel(fn, f'{tmp}/savedmodel', batch, hw, input_dtype)
      tflite = temporary if fmt == 'tflite' else f'{tmp}/model.tflite'
      write_tflite(f'{tmp}/savedmodel', tflite, **tflite_kw)
      if fmt == 'onnx':
        write_onnx(tflite, temporary, metadata)


class ExportOutputError(ValueError):
  """An export's output names a place it cannot be written to, or something that it must not
  replace; the message says which and what to do."""


def _is_savedmodel_export(path: str) -> bool:
  marker = json.loads(pathlib.Path(path, SAVEDMODEL_MARKER).read_text())
  return marker.get('exporter') == EXPORTER


def _is_onnx_export(path: str) -> bool:
  import onnx  # pylint: disable=g-import-not-at-top
  props = onnx.load(path, load_external_data=False).metadata_props
  return any(p.key == 'exporter' and p.value == EXPORTER for p in props)


def _is_tflite_export(path: str) -> bool:
  # A flatbuffer has no room for free-form metadata without rewriting it: its one signature,
  # named as write_savedmodel names it, is what marks it.
  with warnings.catch_warnings():
    warnings.filterwarnings('ignore', message=_TF_INTERPRETER_NOTICE)
    signatures = _tflite_interpreter(path).get_signature_list()
  return signatures == {'serving_default': {'inputs': [INPUT_NAME],
                                            'outputs': sorted(OUTPUT_NAMES)}}


def _is_stablehlo_export(path: str) -> bool:
  exported = jax_export.deserialize(bytearray(pathlib.Path(path).read_bytes()))
  return (exported.in_tree == jax.tree.structure(((), {INPUT_NAME: 0})) and
          exported.out_tree == jax.tree.structure(dict.fromkeys(OUTPUT_NAMES, 0)))


_RECOGNISERS = {'savedmodel': _is_savedmodel_export, 'onnx': _is_onnx_export,
                'tflite': _is_tflite_export, 'stablehlo': _is_stablehlo_export}
# What each recogniser looks for, as a refusal tells the user.
_MARKS = {'savedmodel': f'{SAVEDMODEL_MARKER} naming {EXPORTER} inside',
          'onnx': f'metadata_props exporter={EXPORTER}',
          'tflite': f"one signature, serving_default, with input '{INPUT_NAME}' and outputs "
                    f"{', '.join(repr(n) for n in OUTPUT_NAMES)}",
          'stablehlo': f"a function of keyword '{INPUT_NAME}' returning "
                       f"{', '.join(repr(n) for n in OUTPUT_NAMES)}"}


def is_export(path: str | os.PathLike, fmt: str) -> bool:
  """Whether ``path`` is a ``fmt`` file (folder for 'savedmodel') that this project wrote."""
  try:
    return _RECOGNISERS[fmt](os.fspath(path))
  except Exception:  # pylint: disable=broad-exception-caught
    # Whatever cannot be read as one of ours (a checkpoint, a text file, garbage) is not one.
    return False


def check_output(fmt: str, output: str | os.PathLike, overwrite: bool = False) -> None:
  """Raises ``ExportOutputError`` unless ``write_all`` may write ``fmt`` to ``output``.

  Cheap (no tracing or conversion), so that a bad output costs nothing. ``output`` must be a
  local path in an existing, writable folder. Whatever is already there must be of the
  format's kind (a folder for 'savedmodel', a file for the others) and is replaced only if it
  is an export this project wrote (``is_export``) or ``overwrite`` is set.
  """
  path = os.fspath(output)
  if not path or '://' in path:
    raise ExportOutputError(f'--output={path!r}: export writes to a local path only.')
  parent = os.path.dirname(os.path.abspath(path))
  if not os.path.isdir(parent):
    raise ExportOutputError(f'--output={path}: the folder {parent} does not exist; create it '
                            'first.')
  if not os.access(parent, os.W_OK | os.X_OK):
    raise ExportOutputError(f'--output={path}: the folder {parent} is not writable.')
  if not os.path.lexists(path):
    return
  wants_folder = fmt == 'savedmodel'
  if wants_folder != os.path.isdir(path):
    have, want = ('a folder', 'a file') if os.path.isdir(path) else ('a file', 'a folder')
    raise ExportOutputError(f'--output={path} is {have}; --format={fmt} writes {want}. Choose '
                            'another name (--overwrite never replaces one with the other).')
  if overwrite or is_export(path, fmt):
    return
  raise ExportOutputError(
      f'--output={path} exists and is not a previous --format={fmt} export, which has '
      f'{_MARKS[fmt]}; it is left as it is. Choose another name, or pass --overwrite to '
      'replace it.')


def load_stablehlo(path: str | os.PathLike) -> Runner:
  exported = jax_export.deserialize(bytearray(pathlib.Path(path).read_bytes()))
  return lambda images: {k: np.asarray(v) for k, v in exported.call(
      **{INPUT_NAME: images}).items()}


def load_savedmodel(path: str | os.PathLike) -> Runner:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  serve = tf.saved_model.load(os.fspath(path)).signatures['serving_default']
  return lambda images: {k: v.numpy() for k, v in serve(**{
      INPUT_NAME: tf.constant(images)}).items()}


def load_tflite(path: str | os.PathLike, num_threads: int | None = None) -> Runner:
  """Runs a .tflite file with LiteRT, resizing its input to each batch's size."""
  interpreter = _tflite_interpreter(path, num_threads)
  runner = interpreter.get_signature_runner()
  dtype = runner.get_input_details()[INPUT_NAME]['dtype']
  return lambda images: runner(**{INPUT_NAME: np.asarray(images, dtype)})


def load_onnx(path: str | os.PathLike, num_threads: int | None = None) -> Runner:
  import onnxruntime as ort  # pylint: disable=g-import-not-at-top
  options = ort.SessionOptions()
  if num_threads:
    options.intra_op_num_threads = num_threads
  session = ort.InferenceSession(os.fspath(path), options, providers=['CPUExecutionProvider'])
  names = [output.name for output in session.get_outputs()]
  dtype = _ONNX_DTYPES[session.get_inputs()[0].type]
  return lambda images: dict(zip(names, session.run(
      names, {INPUT_NAME: np.asarray(images, dtype)})))


LOADERS = {'stablehlo': load_stablehlo, 'savedmodel': load_savedmodel, 'tflite': load_tflite,
           'onnx': load_onnx}


def format_of(path: str | os.PathLike) -> str:
  """The format of an exported file, by its name: a folder is a SavedModel."""
  path = os.fspath(path)
  if os.path.isdir(path):
    return 'savedmodel'
  suffix = os.path.splitext(path)[1].lstrip('.')
  if suffix in ('onnx', 'tflite', 'stablehlo'):
    return suffix
  raise ValueError(f'{path}: not an exported model (.onnx, .tflite, .stablehlo or a '
                   'SavedModel folder).')


def load(path: str | os.PathLike) -> Runner:
  """``runner(images uint8 (N, h, w, 3)) -> {'depth': (N, h, w), 'bin_centers': (N, bins)}``."""
  return LOADERS[format_of(path)](path)
