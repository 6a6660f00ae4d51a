"""Model zoo: every architecture the configs can name, built by ``build_model``.

``MODELS`` maps ``config.model.name`` to a builder; no string imports. Small variants for tests
are configs of these builders (configs/smoke.py), not separate models.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from adabins_jax.models import layers
from adabins_jax.models.adabins import AdaBins, AdaptiveBinsHead
from adabins_jax.models.decoder import Decoder
from adabins_jax.models.efficientnet import EfficientNet
from adabins_jax.models.unet import UNet

__all__ = ['AdaBins', 'DTYPES', 'MODELS', 'build_abstract_model', 'build_model', 'count_params']

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}
def _dtype(name):
  if name not in DTYPES:
    raise ValueError(f'Unknown dtype {name!r}; choose one of {sorted(DTYPES)}.')
  return DTYPES[name]


def _head(cfg, in_ch: int, kw) -> AdaptiveBinsHead:
  return AdaptiveBinsHead(
      in_ch, n_bins=cfg.n_bins, patch_size=cfg.patch_size, n_queries=cfg.n_queries,
      embed_dim=cfg.embed_dim, num_heads=cfg.num_heads, num_layers=cfg.num_layers,
      ffn_dim=cfg.ffn_dim, pos_table_size=cfg.pos_table_size, dropout_rate=cfg.dropout_rate,
      bin_norm=cfg.bin_norm, **kw)


def _assemble(cfg, encoder, decoder, min_input_size: int, kw) -> AdaBins:
  return AdaBins(encoder, decoder, _head(cfg, int(cfg.feature_channels), kw), n_bins=cfg.n_bins,
                 n_queries=cfg.n_queries, min_depth_m=cfg.min_depth_m,
                 max_depth_m=cfg.max_depth_m, min_input_size=min_input_size, **kw)


def _efficientnet_adabins(cfg, kw, *, variant: str) -> AdaBins:
  encoder = EfficientNet(variant, drop_path_rate=cfg.drop_path_rate, **kw)
  decoder = Decoder(encoder.feature_channels, features=cfg.get('decoder_features') or None,
                    out_ch=int(cfg.feature_channels), **kw)
  # Five stride-2 stages: anything smaller than 32 px collapses to nothing.
  return _assemble(cfg, encoder, decoder, 32, kw)


def _unet_adabins(cfg, kw) -> AdaBins:
  unet = UNet(cfg.unet_widths, conv=cfg.conv, out_ch=int(cfg.feature_channels), **kw)
  return _assemble(cfg, unet, None, unet.min_input_size, kw)


MODELS: dict[str, Callable[..., AdaBins]] = {
    'effnet_b5': functools.partial(_efficientnet_adabins, variant='b5'),
    'effnet_b0': functools.partial(_efficientnet_adabins, variant='b0'),
    'unet': _unet_adabins,
}


def build_model(model_config: ml_collections.ConfigDict, *, rngs: nnx.Rngs) -> AdaBins:
  """Builds the AdaBins model that ``model_config.name`` names.

  Args:
    model_config: the ``config.model`` block.
    rngs: needs a ``params`` stream, and a ``dropout`` stream for training.

  Returns:
    The model, in training mode (call ``.eval()`` for inference).
  """
  if model_config.name not in MODELS:
    raise ValueError(f'Unknown model.name {model_config.name!r}; choose one of {sorted(MODELS)}.')
  kw = dict(dtype=_dtype(model_config.dtype), param_dtype=_dtype(model_config.param_dtype),
            rngs=rngs)
  model = MODELS[model_config.name](model_config, kw)
  layers.set_conv_impls(model, depthwise_impl=model_config.depthwise_impl,
                        conv3x3_impl=model_config.conv3x3_impl)
  return model


def count_params(model: nnx.Module) -> int:
  """Number of trainable parameters (BatchNorm statistics excluded)."""
  return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def build_abstract_model(model_config: ml_collections.ConfigDict, *, seed: int = 0,
                         rngs: nnx.Rngs | None = None) -> AdaBins:
  """The model's structure with shape-only weights, to be filled from a checkpoint.

  Random initialisation of a full-size model compiles one XLA program per distinct weight shape
  (tens of seconds for B5 on a CPU) only to be overwritten; this skips it. Weights stay
  ``jax.ShapeDtypeStruct`` until loaded (``torch_mapping.load_state_dict``, an Orbax restore);
  the RNG streams of dropout layers are made concrete (from ``seed``) so the loaded model runs
  at once.

  Args:
    model_config: ``config.model``.
    seed: Seeds the dropout layers' RNG streams.
    rngs: The streams to build with (default ``nnx.Rngs(seed)``): pass training's
      ``nnx.Rngs(params=..., dropout=...)`` for a model that training will reseed, since
      ``nnx.reseed`` finds a stream by the name it was built with.
  """
  model = nnx.eval_shape(lambda r: build_model(model_config, rngs=r),
                         nnx.Rngs(seed) if rngs is None else rngs)
  base = jax.random.key(seed)
  for i, (_, var) in enumerate(nnx.to_flat_state(nnx.state(model, nnx.RngState))):
    if isinstance(var, nnx.RngKey):
      var.set_value(jax.random.fold_in(base, i))
    else:
      var.set_value(jnp.zeros(var.get_value().shape, var.get_value().dtype))
  return model


def _fill_value(rng: np.random.Generator, path: tuple, shape: tuple, dtype) -> np.ndarray:
  leaf = str(path[-1])
  if leaf in ('var', 'scale'):  # BatchNorm variance, norm scales
    return np.ones(shape, dtype)
  if leaf in ('mean', 'bias'):
    return np.zeros(shape, dtype)
  if leaf == 'positional_encodings':
    return rng.random(shape, np.float32).astype(dtype)  # U[0, 1) like the release
  fan_in = math.prod(shape[:-1]) or 1
  return (rng.standard_normal(shape, np.float32) / math.sqrt(fan_in)).astype(dtype)


def random_model(model_config, seed: int = 0) -> nnx.Module:
  """The model with random weights drawn on the host: seconds, where ``build_model`` on a CPU
  takes minutes for B5. Kernels are N(0, 1/fan_in), norms identity, biases zero.
  """
  model = build_abstract_model(model_config, seed=seed)
  rng = np.random.default_rng(seed)
  for path, var in nnx.to_flat_state(nnx.state(model, nnx.Any(nnx.Param, nnx.BatchStat))):
    abstract = var.get_value()
    var.set_value(jnp.asarray(_fill_value(rng, path, abstract.shape, abstract.dtype)))
  return model
