"""What an export can be asked for, and the checks on it that need no JAX.

The command (``python -m adabins_jax.export``) checks its flags here before it imports JAX,
TensorFlow and the converters, so that a typo is answered at once; ``exporter`` checks the same
when called from Python.
"""

from __future__ import annotations

import dataclasses

from adabins_jax import network_input

# The file formats written, in the order of ``formats.LOADERS``, which reads each back.
FORMATS = ('stablehlo', 'savedmodel', 'tflite', 'onnx')


@dataclasses.dataclass
class ExportOptions:
  """How to export; the command's flags say what each field means.

  ``size`` is (h, w) or 'HxW'; None: ``exporter.default_size``. ``batch`` None makes the batch
  dimension dynamic (StableHLO and SavedModel only: the TFLite converter cannot lower the
  model's gathers with a dynamic batch). ``overwrite`` lets an output that is not a previous
  export be replaced (``formats.check_output``).
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


def check_format(fmt: str, options: ExportOptions) -> None:
  """Raises ValueError if ``fmt`` is unknown or cannot have ``options``."""
  if fmt not in FORMATS:
    raise ValueError(f'export: format must be one of {FORMATS}, got {fmt!r}.')
  if (options.fp16 or options.int8) and fmt != 'tflite':
    raise ValueError('export: --fp16 and --int8 apply to --format=tflite only.')
  if options.batch is None and fmt in ('tflite', 'onnx'):
    raise ValueError(f'export: --format={fmt} needs a fixed --batch (the TFLite converter, '
                     'which ONNX export goes through, cannot lower a dynamic batch).')
