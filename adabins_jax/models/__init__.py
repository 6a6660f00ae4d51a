"""Model zoo: every architecture the configs can name, built by ``build_model``.

``MODELS`` maps ``config.model.name`` to a builder; no string imports. Small variants for tests
are configs of these builders (configs/smoke.py), not separate models.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from adabins_jax.models import layers
from adabins_jax.models.adabins import AdaBins, AdaptiveBinsHead
from adabins_jax.models.decoder import Decoder
from adabins_jax.models.efficientnet import EfficientNet
from adabins_jax.models.unet import UNet

__all__ = ['AdaBins', 'DTYPES', 'MODELS', 'build_abstract_model', 'build_model', 'count_params']

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16, 'float16': jnp.float16}
# Channels of the half-resolution feature map that the decoder (or the U-Net) hands the bins
# head when the config names none: the release's 128 (its decoder's ``num_classes``), whatever
# the encoder, which the released weights need.
_FEATURE_CHANNELS = 128


def _feature_channels(cfg) -> int:
  return int(cfg.get('feature_channels', _FEATURE_CHANNELS))


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
  return AdaBins(encoder, decoder, _head(cfg, _feature_channels(cfg), kw), n_bins=cfg.n_bins,
                 n_queries=cfg.n_queries, min_depth_m=cfg.min_depth_m,
                 max_depth_m=cfg.max_depth_m, min_input_size=min_input_size, **kw)


def _efficientnet_adabins(cfg, kw, *, variant: str) -> AdaBins:
  encoder = EfficientNet(variant, drop_path_rate=cfg.get('drop_path_rate', 0.0), **kw)
  decoder = Decoder(encoder.feature_channels, features=cfg.get('decoder_features') or None,
                    out_ch=_feature_channels(cfg), **kw)
  # Five stride-2 stages: anything smaller than 32 px collapses to nothing.
  return _assemble(cfg, encoder, decoder, 32, kw)


def _unet_adabins(cfg, kw) -> AdaBins:
  unet = UNet(cfg.unet_widths, conv=cfg.conv, out_ch=_feature_channels(cfg), **kw)
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
  layers.set_conv_impls(model, depthwise_impl=model_config.get('depthwise_impl', 'auto'),
                        conv3x3_impl=model_config.get('conv3x3_impl', 'auto'))
  return model


def count_params(model: nnx.Module) -> int:
  """Number of trainable parameters (BatchNorm statistics excluded)."""
  return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def build_abstract_model(model_config: ml_collections.ConfigDict, *, seed: int = 0) -> AdaBins:
  """The model's structure with shape-only weights, to be filled from a checkpoint.

  Random initialisation of a full-size model compiles one XLA program per distinct weight shape
  (tens of seconds for B5 on a CPU) only to be overwritten; this skips it. Weights stay
  ``jax.ShapeDtypeStruct`` until loaded (``torch_mapping.load_state_dict``, an Orbax restore);
  the RNG streams of dropout layers are made concrete so the loaded model runs at once.
  """
  model = nnx.eval_shape(lambda: build_model(model_config, rngs=nnx.Rngs(seed)))
  base = jax.random.key(seed)
  for i, (_, var) in enumerate(nnx.to_flat_state(nnx.state(model, nnx.RngState))):
    if isinstance(var, nnx.RngKey):
      var.set_value(jax.random.fold_in(base, i))
    else:
      var.set_value(jnp.zeros(var.get_value().shape, var.get_value().dtype))
  return model
