"""A checkpoint's ``meta`` item: what it records of the run, and the checks made on it.

``meta`` is small JSON, read before any array, so a checkpoint that does not belong to the
requested model or step is refused in one line instead of by Orbax's tree diff. It records
the step, the data position, the depth range (checked by ``release_weights``) and, since
``model`` was added, the model config's fields that decide the weights' shapes.
Checkpoints written before that field existed are compared on what they hold; a mismatch
then surfaces as Orbax's structure or shape error, which ``summarise_restore_error`` shortens.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any

from adabins_jax.errors import CheckpointError
from adabins_jax.errors import ConfigMismatchError

# The config.model fields that decide which variables a model has and their shapes; fields
# that change only how it computes (dtype, conv implementations, dropout) are left out, so
# that a checkpoint still loads under them.
MODEL_FIELDS = ('name', 'n_bins', 'unet_widths', 'feature_channels', 'decoder_features',
                'conv', 'bin_norm', 'patch_size', 'n_queries', 'embed_dim', 'num_heads',
                'num_layers', 'ffn_dim', 'pos_table_size')


def _plain(value: Any) -> Any:
  """A config value as JSON gives it back, so saved and requested values compare equal."""
  if isinstance(value, (tuple, list)):
    return [_plain(v) for v in value]
  return value


def model_fields(model_config) -> dict[str, Any]:
  """The ``MODEL_FIELDS`` a ``config.model`` block sets, JSON-ready."""
  return {f: _plain(model_config.get(f)) for f in MODEL_FIELDS if f in model_config}


def describe(fields: Mapping[str, Any]) -> str:
  """``name=unet n_bins=128 ...`` of a ``model_fields`` dict."""
  return ' '.join(f'{k}={v}' for k, v in fields.items())


def check_step(meta: Mapping[str, Any], step: int, step_dir: str | os.PathLike) -> None:
  """Refuses a step folder whose recorded step is another: one renamed or copied by hand.

  The folder's number is what training resumes from and the data position it skips to, so a
  wrong number would silently retrain or skip data.
  """
  recorded = meta.get('step')
  if recorded is not None and int(recorded) != int(step):
    raise CheckpointError(
        f'{os.fspath(step_dir)} holds the checkpoint of step {recorded}, not {step}: the folder '
        f'was renamed or copied by hand. Rename it back to {recorded}.')


def check_model(meta: Mapping[str, Any], model_config, step_dir: str | os.PathLike) -> None:
  """Refuses a checkpoint saved by a model config whose recorded fields differ."""
  saved = meta.get('model')
  if not saved or model_config is None:
    return
  requested = model_fields(model_config)
  differ = [k for k in saved if k in requested and saved[k] != requested[k]]
  if differ:
    raise ConfigMismatchError(
        f'{os.fspath(step_dir)} was saved by another model: saved {describe(saved)}; '
        f'requested {describe(requested)} (differ: {", ".join(differ)}).')


def summarise_restore_error(error: Exception, step_dir: str | os.PathLike,
                            model_config) -> ConfigMismatchError | None:
  """Orbax's structure or shape mismatch as one line; None for any other error.

  For checkpoints without ``meta['model']``, the only sign of another config.
  """
  lines = [line for line in str(error).splitlines() if line.strip()]
  if not lines:
    return None
  first = lines[0]
  if 'structures do not match' in first:
    names = [line.rstrip(':') for line in lines[1:] if not line[0].isspace()]
    gist = (f'{len(names)} of its variables differ from the model\'s'
            + (f' (first: {names[0]})' if names else ''))
  elif 'not compatible with the stored shape' in first:
    gist = first.split('. ')[0]
  else:
    return None
  requested = '' if model_config is None else f' (requested {describe(model_fields(model_config))})'
  return ConfigMismatchError(
      f'{os.fspath(step_dir)} was saved by another model config{requested}: {gist}.')
