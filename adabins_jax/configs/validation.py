"""Checks a whole config before anything is built, compiled or downloaded.

``validate(config)`` raises one ``ValueError`` listing every invalid field by its dotted name,
so a typo in an override fails in a second, not after a data build and a compile. Allowed
values come from the modules that use them (``models``, ``metrics``, ``input_pipeline``,
``reference``).
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any

from adabins_jax import metrics
from adabins_jax import models
from adabins_jax.datasets import nyu
from adabins_jax.configs import reference
from adabins_jax import datasets
from adabins_jax.models import adabins
from adabins_jax.models import layers


def _int(minimum: int) -> Callable[[Any], str | None]:
  def check(v):
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
      return f'must be an integer >= {minimum}'
    return None
  return check


def _number(low: float, high: float = float('inf'), *, open_low: bool = False,
            open_high: bool = False) -> Callable[[Any], str | None]:
  def check(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
      return 'must be a number'
    if not math.isfinite(v):
      return 'must be a finite number'
    if v < low or (open_low and v == low) or v > high or (open_high and v == high):
      return (f'must be in {"(" if open_low else "["}{low}, {high}{")" if open_high else "]"}')
    return None
  return check


def _one_of(choices) -> Callable[[Any], str | None]:
  return lambda v: None if v in choices else f'must be one of {tuple(choices)}'


def _pair_of_positive_ints(v) -> str | None:
  ok = (isinstance(v, (tuple, list)) and len(v) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v))
  return None if ok else 'must be (height, width), two positive integers'


def _boolean(v) -> str | None:
  return None if isinstance(v, bool) else 'must be True or False'


def _optional(check: Callable[[Any], str | None]) -> Callable[[Any], str | None]:
  def check_or_none(v):
    reason = None if v is None else check(v)
    return reason and f'{reason}, or None'
  return check_or_none


def _text(v) -> str | None:
  return None if isinstance(v, str) and v else 'must be a non-empty string'


def _checkpoint_name(v) -> str | None:
  ok = v in ('best', 'latest') or (isinstance(v, int) and v >= 0) or str(v).isdigit()
  return None if ok else "must be 'best', 'latest' or a step number"


_RULES: dict[str, Callable[[Any], str | None]] = {
    'seed': _int(0),
    'data.dataset': lambda v: None if str(v).split('/')[0] in datasets.DATASETS else (
        f'must name one of {datasets.DATASETS} (optionally /<builder config>)'),
    'data.crop_size': _pair_of_positive_ints,
    'data.input_scale': _number(0.0, 4.0, open_low=True),
    'data.rotation_deg': _number(0.0, 180.0),
    'data.shuffle_buffer': _int(1),
    'data.frame_size': _pair_of_positive_ints,
    'data.rgbd.folder': _optional(_text),
    'data.rgbd.train_list': _optional(_text),
    'data.rgbd.test_list': _optional(_text),
    'data.rgbd.depth_scale': _number(0.0, open_low=True),
    'data.rgbd.invalid_depth': _optional(_number(float('-inf'))),  # Any finite value.
    'data.rgbd.focal_px': _number(0.0),
    'model.name': _one_of(models.MODELS),
    'model.n_bins': _int(2),
    'model.min_depth_m': _number(0.0, open_low=True),
    'model.bin_norm': _one_of(adabins.BIN_NORMS),
    'model.conv': _one_of(layers.CONV_KINDS),
    'model.feature_channels': _int(1),
    'model.patch_size': _int(1),
    'model.n_queries': _int(1),
    'model.embed_dim': _int(1),
    'model.num_heads': _int(1),
    'model.num_layers': _int(1),
    'model.ffn_dim': _int(1),
    'model.pos_table_size': _int(1),
    'model.dropout_rate': _number(0.0, 1.0, open_high=True),
    'model.drop_path_rate': _number(0.0, 1.0, open_high=True),
    'model.depthwise_impl': _one_of(layers.DEPTHWISE_IMPLS),
    'model.conv3x3_impl': _one_of(layers.CONV3X3_IMPLS),
    'model.dtype': _one_of(models.DTYPES),
    'model.param_dtype': _one_of(models.DTYPES),
    'optim.learning_rate': _number(0.0, open_low=True),
    'optim.weight_decay': _number(0.0),
    'optim.grad_clip_norm': _number(0.0, open_low=True),
    'optim.pct_start': _number(0.0, 1.0, open_low=True, open_high=True),
    'optim.div_factor': _number(0.0, open_low=True),
    'optim.final_div_factor': _number(0.0, open_low=True),
    'optim.base_beta1': _number(0.0, 1.0, open_high=True),
    'optim.max_beta1': _number(0.0, 1.0, open_high=True),
    'optim.beta2': _number(0.0, 1.0, open_high=True),
    'optim.eps': _number(0.0, open_low=True),
    'optim.encoder_lr_multiplier': _number(0.0),
    'optim.flatten_groups': _boolean,
    'train.batch_size': _int(1),
    'train.num_epochs': _number(0.0),
    'train.num_steps': _int(0),
    'train.silog_weight': _number(0.0),
    'train.chamfer_weight': _number(0.0),
    'train.log_every_steps': _int(1),
    'train.eval_every_steps': _int(0),
    'train.checkpoint_every_steps': _int(1),
    'train.keep_checkpoints': _int(1),
    'train.keep_best_checkpoints': _int(0),
    'train.num_devices': _int(0),
    'eval.batch_size': _int(1),
    'eval.crop': _one_of(metrics.CROPS),
    'eval.checkpoint': _checkpoint_name,
    'eval.num_images_to_show': _int(0),
    'eval.max_depth_m': _optional(_number(0.0, open_low=True)),
    'eval.camera_transform': _boolean,
    'eval.boundary_metrics': _boolean,
    'eval.reference': lambda v: None if v is None or v in reference.REFERENCE else (
        f'must be None or one of {tuple(reference.REFERENCE)}'),
}


def _get(config, dotted: str):
  value = config
  for part in dotted.split('.'):
    if part not in value:
      return _MISSING
    value = value[part]
  return value


_MISSING = object()


def _non_finite(config, prefix: str = '') -> list[str]:
  """'<field>=nan: must be finite' for every NaN or infinite float, ruled or not."""
  found = []
  for key, value in config.items():
    name = f'{prefix}{key}'
    if hasattr(value, 'items'):
      found += _non_finite(value, f'{name}.')
    elif name not in _RULES and isinstance(value, float) and not math.isfinite(value):
      found.append(f'{name}={value!r}: must be a finite number')
  return found


def problems(config) -> list[str]:
  """One line per invalid field: '<group>.<field>=<value>: <what it must be>'."""
  found = _non_finite(config)
  for name, rule in _RULES.items():
    value = _get(config, name)
    if value is _MISSING:
      continue  # Partial configs (tests, tools) check what they have.
    reason = rule(value)
    if reason:
      found.append(f'{name}={value!r}: {reason}')
  model = config.get('model')
  if model is not None and not found:
    if model.max_depth_m <= model.min_depth_m:
      found.append(f'model.max_depth_m={model.max_depth_m!r}: must exceed model.min_depth_m='
                   f'{model.min_depth_m!r}')
    cap = _get(config, 'eval.max_depth_m')
    if cap not in (None, _MISSING) and cap <= model.min_depth_m:
      found.append(f'eval.max_depth_m={cap!r}: must exceed model.min_depth_m='
                   f'{model.min_depth_m!r}')
    if model.embed_dim % model.num_heads:
      found.append(f'model.embed_dim={model.embed_dim}: must divide by model.num_heads='
                   f'{model.num_heads}')
  if not found and str(_get(config, 'data.dataset')).split('/')[0] == datasets.RGBD_FOLDER:
    found += _rgbd_folder_problems(config)
  train = config.get('train')
  if train is not None and not found and train.num_steps == 0 and train.num_epochs <= 0:
    found.append('train.num_steps=0 and train.num_epochs=0: set one of them (steps win when '
                 'positive)')
  return found


def _rgbd_folder_problems(config) -> list[str]:
  """What stops a config from reading the user's frames of data.rgbd at data.frame_size."""
  data, found = config.data, []
  if data.dataset != datasets.RGBD_FOLDER:
    found.append(f'data.dataset={data.dataset!r}: {datasets.RGBD_FOLDER} takes no builder config; '
                 'data.rgbd.* say where the frames are')
  if not data.rgbd.folder:
    found.append(f"data.rgbd.folder=None: data.dataset='{datasets.RGBD_FOLDER}' needs the frames' "
                 'folder')
  if (data.rgbd.train_list is None) != (data.rgbd.test_list is None):
    found.append(f'data.rgbd.train_list={data.rgbd.train_list!r}, data.rgbd.test_list='
                 f'{data.rgbd.test_list!r}: set both or neither')
  frame = tuple(data.frame_size)
  if data.crop_white_border and frame != nyu.FRAME_HW:
    found.append(f'data.crop_white_border=True: cuts NYU\'s border of 480x640 frames, but '
                 f'data.frame_size={frame}; set it False')
  if config.get('eval') is not None and config.eval.crop == 'eigen' and frame != nyu.FRAME_HW:
    found.append(f"eval.crop='eigen': defined on 480x640 NYU frames, but data.frame_size="
                 f"{frame}; use 'none' (or 'garg' for KITTI-like frames)")
  if any(c > f for c, f in zip(data.crop_size, frame)):
    found.append(f'data.crop_size={tuple(data.crop_size)}: must fit in data.frame_size={frame}')
  return found


def validate(config) -> None:
  """Raises ValueError naming every invalid field of ``config`` at once."""
  found = problems(config)
  if found:
    raise ValueError(f'Invalid config ({len(found)} problem{"s" * (len(found) > 1)}):\n  '
                     + '\n  '.join(found))
