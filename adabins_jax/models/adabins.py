"""The adaptive-bins head (mViT) and the AdaBins model that joins encoder, decoder and head.

Follows the release's ``mViT`` / ``UnetAdaptiveBins`` (see docs/reference.md): patch embedding +
post-norm transformer; token 0 regresses bin widths, the next ``n_queries`` tokens are dotted with
every pixel's feature into range-attention maps; depth is the softmax-weighted sum of bin
centres.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import layers

BIN_NORMS = ('linear', 'softmax', 'sigmoid')


class TransformerEncoderLayer(nnx.Module):
  """PyTorch's ``TransformerEncoderLayer`` (post-norm, ReLU FFN), q/k/v packed in ``in_proj``."""

  def __init__(self, dim: int, num_heads: int, ffn_dim: int, dropout_rate: float, *,
               dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    if dim % num_heads:
      raise ValueError(f'embed_dim={dim} must be divisible by num_heads={num_heads}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.num_heads = num_heads
    self.in_proj = nnx.Linear(dim, 3 * dim, **kw)
    self.out_proj = nnx.Linear(dim, dim, **kw)
    self.linear1 = nnx.Linear(dim, ffn_dim, **kw)
    self.linear2 = nnx.Linear(ffn_dim, dim, **kw)
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-5, **kw)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-5, **kw)
    self.attn_dropout = nnx.Dropout(dropout_rate, rngs=rngs)
    self.dropout1 = nnx.Dropout(dropout_rate, rngs=rngs)
    self.dropout2 = nnx.Dropout(dropout_rate, rngs=rngs)
    self.dropout_ffn = nnx.Dropout(dropout_rate, rngs=rngs)

  def _attention(self, x: jax.Array, key: jax.Array | None) -> jax.Array:
    n, s, d = x.shape
    q, k, v = jnp.split(self.in_proj(x), 3, axis=-1)
    heads = lambda t: t.reshape(n, s, self.num_heads, d // self.num_heads)
    q, k, v = heads(q), heads(k), heads(v)
    logits = jnp.einsum('nqhd,nkhd->nhqk', q, k) / jnp.sqrt(d // self.num_heads).astype(q.dtype)
    weights = self.attn_dropout(jax.nn.softmax(logits.astype(jnp.float32), axis=-1), rngs=key)
    out = jnp.einsum('nhqk,nkhd->nqhd', weights.astype(v.dtype), v).reshape(n, s, d)
    return self.out_proj(out)

  def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
    """``key``: the layer's dropout key (split for its four dropouts); None draws each from
    its own stream."""
    keys = [None] * 4 if key is None else list(jax.random.split(key, 4))
    x = self.norm1(x + self.dropout1(self._attention(x, keys[0]), rngs=keys[1]))
    ffn = self.linear2(self.dropout_ffn(jax.nn.relu(self.linear1(x)), rngs=keys[2]))
    return self.norm2(x + self.dropout2(ffn, rngs=keys[3]))


class AdaptiveBinsHead(nnx.Module):
  """The release's ``mViT``: bin widths and range-attention maps from a decoder feature map."""

  def __init__(self, in_ch: int = 128, *, n_bins: int = 256, patch_size: int = 16,
               n_queries: int = 128, embed_dim: int = 128, num_heads: int = 4,
               num_layers: int = 4, ffn_dim: int = 1024, pos_table_size: int = 500,
               dropout_rate: float = 0.1, bin_norm: str = 'linear', dtype=None,
               param_dtype=jnp.float32, rngs: nnx.Rngs):
    if bin_norm not in BIN_NORMS:
      raise ValueError(f'bin_norm must be one of {BIN_NORMS}, got {bin_norm!r}.')
    kw = dict(dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.patch_size, self.n_queries, self.bin_norm = patch_size, n_queries, bin_norm
    self.pos_table_size = pos_table_size
    self.patch_embed = layers.Conv(in_ch, embed_dim, patch_size, strides=patch_size,
                                   padding='VALID', **kw)
    # U[0, 1) as in the release.
    self.positional_encodings = nnx.Param(
        jax.random.uniform(rngs.params(), (pos_table_size, embed_dim), param_dtype))
    self.layers = nnx.List([
        TransformerEncoderLayer(embed_dim, num_heads, ffn_dim, dropout_rate, **kw)
        for _ in range(num_layers)])
    self.conv3x3 = layers.Conv(in_ch, embed_dim, 3, padding=1, **kw)
    self.regressor = nnx.List([nnx.Linear(embed_dim, 256, **kw), nnx.Linear(256, 256, **kw),
                               nnx.Linear(256, n_bins, **kw)])

  def training_dropout(self) -> bool:
    """Whether the transformer's dropout masks anything (training mode, a non-zero rate)."""
    if not self.layers:
      return False
    dropout = self.layers[0].attn_dropout
    return not dropout.deterministic and dropout.rate > 0

  def check_input(self, hw: tuple[int, int]) -> None:
    """Raises ValueError if a decoder map of size ``hw`` yields too few or too many patches."""
    p = self.patch_size
    n_patches = (hw[0] // p) * (hw[1] // p)
    if n_patches < self.n_queries + 1:
      raise ValueError(
          f'The bins head needs at least n_queries + 1 = {self.n_queries + 1} patches, but a '
          f'{hw[0]}x{hw[1]} decoder map (half the input size) gives {n_patches} patches of '
          f'{p}x{p}. Use a larger input, a smaller model.patch_size or fewer model.n_queries.')
    if n_patches > self.pos_table_size:
      raise ValueError(
          f'A {hw[0]}x{hw[1]} decoder map gives {n_patches} patches of {p}x{p}, more than the '
          f'{self.pos_table_size} rows of the positional table (the release has 500, enough for '
          f'about 640x480 inputs). Use a smaller input, a larger model.patch_size, or a larger '
          f'model.pos_table_size (released weights then no longer fit that table).')

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns normalised bin widths (N, n_bins) and range-attention maps (N, h, w, n_queries)."""
    self.check_input(x.shape[1:3])
    tokens = self.patch_embed(x)
    n, gh, gw, e = tokens.shape
    tokens = tokens.reshape(n, gh * gw, e)  # row-major over (h, w) like torch's flatten(2).
    tokens = tokens + self.positional_encodings[: gh * gw].astype(tokens.dtype)
    # One draw from a dropout stream for all layers: each draw writes the stream's counter, and
    # under jit every write costs a walk of the program traced so far (flax asks the traced
    # value for its sharding, and JAX builds an error message to say it has none).
    keys = [None] * len(self.layers)
    if self.training_dropout():
      keys = list(jax.random.split(self.layers[0].attn_dropout.rngs(), len(self.layers)))
    for layer, key in zip(self.layers, keys):
      tokens = layer(tokens, key)
    queries = tokens[:, 1:self.n_queries + 1]
    maps = jnp.einsum('nhwc,nqc->nhwq', self.conv3x3(x), queries)
    y = tokens[:, 0]
    y = layers.leaky_relu(self.regressor[0](y))
    y = layers.leaky_relu(self.regressor[1](y))
    y = self.regressor[2](y).astype(jnp.float32)
    if self.bin_norm == 'softmax':
      return jax.nn.softmax(y, axis=-1), maps
    y = jax.nn.relu(y) + 0.1 if self.bin_norm == 'linear' else jax.nn.sigmoid(y)
    return y / jnp.sum(y, axis=-1, keepdims=True), maps


class AdaBins(nnx.Module):
  """Encoder -> decoder (128 channels at stride 2) -> adaptive-bins head -> depth in metres.

  Called on ImageNet-normalised images (N, H, W, 3), returns ``(bin_edges (N, n_bins + 1),
  depth (N, ceil(H/2), ceil(W/2), 1))``.
  """

  def __init__(self, encoder: nnx.Module, decoder: nnx.Module | None, head: AdaptiveBinsHead, *,
               n_bins: int, n_queries: int, min_depth_m: float, max_depth_m: float,
               min_input_size: int, dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    if not 0 < min_depth_m < max_depth_m:
      raise ValueError(f'Need 0 < min_depth_m < max_depth_m, got {min_depth_m}, {max_depth_m}.')
    self.encoder, self.decoder, self.head = encoder, decoder, head
    self.conv_out = layers.Conv(n_queries, n_bins, 1, padding=0, dtype=dtype,
                                param_dtype=param_dtype, rngs=rngs)
    self.min_depth_m, self.max_depth_m = float(min_depth_m), float(max_depth_m)
    self.min_input_size = min_input_size

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    if images.ndim != 4 or images.shape[-1] != 3:
      raise ValueError(f'AdaBins expects normalised RGB images of shape (N, H, W, 3), got '
                       f'{images.shape}.')
    if min(images.shape[1:3]) < self.min_input_size:
      raise ValueError(f'Input {images.shape[1]}x{images.shape[2]} is too small: this encoder '
                       f'needs at least {self.min_input_size} pixels on each side.')
    self.head.check_input(tuple(-(-s // 2) for s in images.shape[1:3]))
    features = self.encoder(images)
    if self.decoder is not None:  # The U-Net is its own decoder.
      features = self.decoder(features)
    with jax.named_scope('bins_head'):
      return self._depth(*self.head(features))

  def _depth(self, widths: jax.Array, maps: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Bin edges, and depth as the centres weighted by each pixel's bin probabilities."""
    probs = jax.nn.softmax(self.conv_out(maps).astype(jnp.float32), axis=-1)
    widths = (self.max_depth_m - self.min_depth_m) * widths
    widths = jnp.pad(widths, ((0, 0), (1, 0)), constant_values=self.min_depth_m)
    edges = jnp.cumsum(widths, axis=-1)
    centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
    depth = jnp.sum(probs * centres[:, None, None, :], axis=-1, keepdims=True)
    return edges, depth
