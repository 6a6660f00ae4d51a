"""Maps PyTorch AdaBins / EfficientNet ``state_dict`` tensors onto this project's NNX models.

Every parameter and BatchNorm statistic of a model has exactly one PyTorch name (the release's),
computed from its NNX path by ``torch_name``; loading is then a strict one-to-one match: a missing
key, an unexpected key or a shape mismatch is an error that names the key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from adabins_jax.torch_weights import release as release_weights

# Older releases' names -> today's (fixtures README, "Checkpoint names").
_LEGACY_RENAMES = (
    ('adaptive_bins_layer.embedding_conv.', 'adaptive_bins_layer.conv3x3.'),
    ('adaptive_bins_layer.patch_transformer.embedding_encoder.',
     'adaptive_bins_layer.patch_transformer.embedding_convPxP.'),
)
# NNX path prefixes -> the release's module names.
_PREFIXES = (
    (r'^encoder\.', 'encoder.original_model.'),
    (r'^head\.patch_embed\.', 'adaptive_bins_layer.patch_transformer.embedding_convPxP.'),
    (r'^head\.positional_encodings$', 'adaptive_bins_layer.patch_transformer.positional_encodings'),
    (r'^head\.layers\.(\d+)\.(in_proj)\.kernel$',
     r'adaptive_bins_layer.patch_transformer.transformer_encoder.layers.\1.self_attn.\2_weight'),
    (r'^head\.layers\.(\d+)\.(in_proj)\.bias$',
     r'adaptive_bins_layer.patch_transformer.transformer_encoder.layers.\1.self_attn.\2_bias'),
    (r'^head\.layers\.(\d+)\.out_proj\.',
     r'adaptive_bins_layer.patch_transformer.transformer_encoder.layers.\1.self_attn.out_proj.'),
    (r'^head\.layers\.', 'adaptive_bins_layer.patch_transformer.transformer_encoder.layers.'),
    (r'^head\.regressor\.(\d+)\.', lambda m: f'adaptive_bins_layer.regressor.{2 * int(m[1])}.'),
    (r'^head\.', 'adaptive_bins_layer.'),
    (r'^decoder\.(up\d)\.conv1\.', r'decoder.\1._net.0.'),
    (r'^decoder\.(up\d)\.bn1\.', r'decoder.\1._net.1.'),
    (r'^decoder\.(up\d)\.conv2\.', r'decoder.\1._net.3.'),
    (r'^decoder\.(up\d)\.bn2\.', r'decoder.\1._net.4.'),
    (r'^conv_out\.', 'conv_out.0.'),
)
_LEAVES = {'kernel': 'weight', 'scale': 'weight', 'mean': 'running_mean', 'var': 'running_var'}


def torch_name(path: tuple, prefixes=_PREFIXES) -> str:
  """The release's ``state_dict`` key of the NNX variable at ``path``."""
  *parents, leaf = (str(p) for p in path)
  name = '.'.join(parents + [_LEAVES.get(leaf, leaf)])
  if leaf == 'kernel' and parents and parents[-1] == 'in_proj':
    name = '.'.join(parents + [leaf])  # Renamed whole by a rule below.
  for pattern, repl in prefixes:
    name, n = re.subn(pattern, repl, name)
    if n:
      break
  return name


# Axes of an NNX convolution kernel (HWIO) in PyTorch's order (OIHW); a linear kernel's two
# axes swap either way.
_CONV_TO_TORCH = (3, 2, 0, 1)
_CONV_FROM_TORCH = tuple(int(axis) for axis in np.argsort(_CONV_TO_TORCH))


def _relayout(value: np.ndarray, path: tuple, conv_axes: tuple[int, ...]) -> np.ndarray:
  if value.ndim == 4:
    return np.transpose(value, conv_axes)
  if value.ndim == 2 and str(path[-1]) == 'kernel':
    return value.T
  return value


def to_torch_layout(value: np.ndarray, path: tuple) -> np.ndarray:
  """NNX layout (HWIO convs, (in, out) linears) -> PyTorch layout (OIHW, (out, in))."""
  return _relayout(value, path, _CONV_TO_TORCH)


def from_torch_layout(value: np.ndarray, path: tuple) -> np.ndarray:
  """PyTorch layout -> NNX layout; inverse of ``to_torch_layout``."""
  return _relayout(value, path, _CONV_FROM_TORCH)


def _weights(model: nnx.Module):
  """Flat (path, variable) pairs of everything a checkpoint holds: params and BN statistics."""
  return nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat)))


def model_to_state_dict(model: nnx.Module, prefixes=_PREFIXES) -> dict[str, np.ndarray]:
  """The model's weights as a PyTorch-named, PyTorch-laid-out dict of numpy arrays."""
  # Writable, contiguous copies: what torch.from_numpy needs.
  return {torch_name(p, prefixes): np.ascontiguousarray(to_torch_layout(np.array(v.get_value()), p))
          for p, v in _weights(model)}


def normalise_state_dict(checkpoint: Mapping, source: str = 'checkpoint') -> dict:
  """Unwraps a released checkpoint into a bare ``state_dict`` with today's names.

  Accepts ``{"model": state_dict, ...}`` (the release's training checkpoints),
  ``{"state_dict": ...}``, or a bare state dict; strips DistributedDataParallel's ``module.``
  prefix and renames the older releases' keys.
  """
  if not isinstance(checkpoint, Mapping):
    raise ValueError(f'{source}: expected a dict (a state_dict or {{"model": state_dict}}), got '
                     f'{type(checkpoint).__name__}.')
  for wrapper in ('model', 'state_dict'):
    if wrapper in checkpoint and isinstance(checkpoint[wrapper], Mapping):
      checkpoint = checkpoint[wrapper]
      break
  out = {}
  for key, value in checkpoint.items():
    if key.startswith('module.'):
      key = key[len('module.'):]
    for old, new in _LEGACY_RENAMES:
      if key.startswith(old):
        key = new + key[len(old):]
    out[key] = value
  return out


def _as_numpy(value) -> np.ndarray:
  if hasattr(value, 'detach'):  # torch.Tensor, without importing torch here.
    value = value.detach().cpu().float().numpy() if value.is_floating_point() else value.numpy()
  return np.asarray(value)


def _value_problem(key: str, value: np.ndarray) -> str | None:
  """Why a weight cannot be loaded, or None: every weight is a finite floating array."""
  if not np.issubdtype(value.dtype, np.floating):
    return f'{key} is not floating point (dtype {value.dtype})'
  bad = value.size - int(np.count_nonzero(np.isfinite(value)))
  if bad:
    return f'{key} has {bad} non-finite values (NaN or inf) of {value.size}'
  return None


def load_state_dict(model: nnx.Module, state_dict: Mapping, *, source: str = 'checkpoint',
                    prefixes=_PREFIXES, ignore: str | None = None) -> None:
  """Copies a normalised PyTorch ``state_dict`` into ``model`` in place, strictly.

  Args:
    model: the NNX model (or sub-module) to fill.
    state_dict: PyTorch names -> tensors/arrays (see ``normalise_state_dict``).
    source: where it came from, for error messages.
    prefixes: the NNX-path -> PyTorch-name rules.
    ignore: regex of keys deliberately not loaded (e.g. an ImageNet classifier). BatchNorm's
      ``num_batches_tracked`` counters carry no weights and are always ignored.

  Raises:
    ValueError: naming every missing key, unexpected key, shape mismatch, non-floating tensor
      and tensor with NaN or inf values; nothing of ``model`` is changed then.
  """
  if not state_dict:
    raise ValueError(f'{source} holds no tensors (an empty state_dict).')
  wanted = {torch_name(p, prefixes): (p, v) for p, v in _weights(model)}
  skip = re.compile(r'(^|\.)num_batches_tracked$' + (f'|{ignore}' if ignore else ''))
  given = {k: v for k, v in state_dict.items() if not skip.search(k)}
  problems = [f'missing key {k}' for k in wanted if k not in given]
  problems += [f'unexpected key {k}' for k in given if k not in wanted]
  updates = {}
  for key, (path, var) in wanted.items():
    if key not in given:
      continue
    value = from_torch_layout(_as_numpy(given[key]), path)
    problem = _value_problem(key, value)
    if problem:
      problems.append(problem)
      continue
    expected = tuple(var.get_value().shape)
    if value.shape != expected:
      torch_shape = tuple(to_torch_layout(np.zeros(expected, np.int8), path).shape)
      problems.append(f'shape mismatch for {key}: {source} has '
                      f'{tuple(_as_numpy(given[key]).shape)}, the model needs {torch_shape}')
      continue
    updates[path] = jnp.asarray(value, dtype=var.get_value().dtype)
  if problems:
    head = '\n  '.join(problems[:20])
    more = f'\n  ... and {len(problems) - 20} more' if len(problems) > 20 else ''
    raise ValueError(f'{source} does not fit the model ({len(problems)} problems):\n  '
                     f'{head}{more}')
  for path, var in _weights(model):
    var.set_value(updates[path])


def read_torch_file(path: str | os.PathLike) -> Mapping:
  """Reads a ``.pt``/``.pth`` file with PyTorch (CPU), without executing pickled code."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError('Reading PyTorch checkpoints needs the CPU build of PyTorch: '
                      'pip install -e ".[torch]"  (see README, "PyTorch, CPU only").') from e
  if not os.path.isfile(path):
    raise FileNotFoundError(f'No such checkpoint file: {path}')
  if os.path.getsize(path) == 0:
    raise ValueError(f'{path}: not a readable PyTorch checkpoint (the file is empty, 0 bytes).')
  try:
    return torch.load(path, map_location='cpu', weights_only=True)
  except Exception as e:  # pylint: disable=broad-except
    reason = str(e).strip() or type(e).__name__  # EOFError of a truncated file says nothing.
    raise ValueError(f'{path}: not a readable PyTorch checkpoint ({reason}).') from e


def load_torch_checkpoint(model: nnx.Module, path: str | os.PathLike, *,
                          allow_range_mismatch: bool = False) -> None:
  """Loads a released AdaBins ``.pt`` (any of its formats) into a built model, in place.

  The file holds no depth range; its name is checked against the model's range first
  (``release_weights.check_file_range``).

  Args:
    model: The built (or abstract) model.
    path: The ``.pt``/``.pth`` file.
    allow_range_mismatch: Load a file whose name says another depth range than the model's
      (``config.model.allow_range_mismatch``), with a warning instead of an error.

  Raises:
    release_weights.DepthRangeError: the file's name says another range than the model's.
    ValueError: the file is unreadable or does not fit the model, naming every bad key.
  """
  depth_range = release_weights.model_range(model)
  if depth_range is not None and os.path.isfile(path):  # A missing file: read_torch_file says so.
    release_weights.check_file_range(path, depth_range, allow_mismatch=allow_range_mismatch)
  state = normalise_state_dict(read_torch_file(path), source=str(path))
  load_state_dict(model, state, source=str(path))


# timm ``tf_efficientnet_b5.ap_in1k`` / geffnet ``tf_efficientnet_b5_ap`` ImageNet weights name the
# encoder's tensors without the AdaBins wrapper's prefix, and add a classifier AdaBins drops.
_IMAGENET_PREFIXES = ((r'^$', ''),)


def load_imagenet_efficientnet(encoder: nnx.Module, path: str | os.PathLike) -> None:
  """Initialises an ``EfficientNet`` encoder from timm/geffnet ImageNet weights, in place.

  The classifier (``classifier.*``) is not part of the encoder and is the only thing skipped.
  """
  state = normalise_state_dict(read_torch_file(path), source=str(path))
  load_state_dict(encoder, state, source=str(path), prefixes=_IMAGENET_PREFIXES,
                  ignore=r'^classifier\.')
