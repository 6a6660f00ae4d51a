"""Building blocks shared by every model: convolutions, resizing, activations.

All tensors are NHWC. Convolutions take PyTorch-style symmetric padding or TensorFlow
"SAME" padding, and can be standard or depthwise-separable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adabins_jax.models import depthwise
from adabins_jax.models import winograd


def _align_corners_lerp(x: jax.Array, axis: int, out_size: int) -> jax.Array:
  """Linear interpolation along one axis with align_corners=True sampling."""
  in_size = x.shape[axis]
  if in_size == out_size:
    return x
  if out_size == 1 or in_size == 1:
    # align_corners maps every output to source 0 when either side has one sample.
    return jnp.repeat(jnp.take(x, jnp.array([0]), axis=axis), out_size, axis=axis)
  # Source coordinate of each output sample, computed in float64 on the host so the
  # indices and weights are exact constants of the compiled program.

  src = np.arange(out_size, dtype=np.float64) * ((in_size - 1) / (out_size - 1))
  lo = np.clip(np.floor(src).astype(np.int32), 0, in_size - 2)
  frac = (src - lo).astype(np.float32)
  shape = [1] * x.ndim
  shape[axis] = out_size
  w = jnp.asarray(frac, dtype=x.dtype).reshape(shape)
  a = jnp.take(x, jnp.asarray(lo), axis=axis)
  b = jnp.take(x, jnp.asarray(lo + 1), axis=axis)
  return a + (b - a) * w


def resize_bilinear(x: jax.Array, size: Sequence[int]) -> jax.Array:
  """Bilinear resize of an NHWC tensor with PyTorch's ``align_corners=True`` semantics.

  ``jax.image.resize`` samples at half-pixel centres and antialiases when shrinking, so it
  does not reproduce ``F.interpolate(..., align_corners=True)``; this separable lerp over
  explicit source indices does, exactly.

  Args:
    x: array of shape (N, H, W, C).
    size: the output (height, width).

  Returns:
    Array of shape (N, size[0], size[1], C) and the dtype of ``x``.
  """
  if x.ndim != 4:
    raise ValueError(f'resize_bilinear expects NHWC (4-D) input, got shape {x.shape}.')
  out_h, out_w = (int(s) for s in size)
  if out_h < 1 or out_w < 1:
    raise ValueError(f'resize_bilinear: output size must be positive, got {size}.')
  x = _align_corners_lerp(x, 1, out_h)
  return _align_corners_lerp(x, 2, out_w)


Padding = str | int | Sequence[tuple[int, int]]


def _pair(v: int | Sequence[int]) -> tuple[int, int]:
  return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _explicit_padding(padding: Padding, kernel: tuple[int, int], strides: tuple[int, int],
                      in_hw: tuple[int, int]) -> list[tuple[int, int]]:
  """Resolves a padding spec to explicit (low, high) pairs for H and W.

  'SAME' is TensorFlow's: the total padding is computed from the input size and the odd pixel
  goes to the bottom/right, which the TF-ported EfficientNet weights expect. An int is PyTorch's
  symmetric padding.
  """
  if isinstance(padding, int):
    return [(padding, padding)] * 2
  if isinstance(padding, str):
    if padding.upper() == 'VALID':
      return [(0, 0)] * 2
    if padding.upper() != 'SAME':
      raise ValueError(f"padding must be 'SAME', 'VALID', an int or pairs, got {padding!r}.")
    pads = []
    for size, k, s in zip(in_hw, kernel, strides):
      total = max((-(-size // s) - 1) * s + k - size, 0)
      pads.append((total // 2, total - total // 2))
    return pads
  return [tuple(p) for p in padding]


def pointwise_conv(x: jax.Array, kernel: jax.Array,
                   pads: Sequence[tuple[int, int]] = ((0, 0), (0, 0))) -> jax.Array:
  """A stride-1 1x1 convolution as a matrix product over channels.

  XLA's CPU backend runs the filter gradient of a 1x1 *convolution* as a generic convolution
  over the whole map (a few GFLOP/s: seconds per layer on the paper model's decoder), where the
  same gradient of a matrix product is one matmul. Zero padding of the input only adds a border
  of zeros to the output (the caller adds the bias), so it is applied after the product.

  Args:
    x: (N, H, W, C_in) input.
    kernel: (1, 1, C_in, C_out) kernel.
    pads: explicit, non-negative ((top, bottom), (left, right)) zero padding.

  Returns:
    (N, H + top + bottom, W + left + right, C_out).
  """
  if min(min(p) for p in pads) < 0:
    raise ValueError(f'pointwise_conv needs non-negative padding, got {pads}.')
  y = jnp.einsum('nhwc,co->nhwo', x, kernel[0, 0])
  if any(p != (0, 0) for p in map(tuple, pads)):
    y = jnp.pad(y, ((0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)))
  return y


def patch_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """A VALID convolution whose stride equals its kernel (a patch embedding) as one matmul.

  Non-overlapping patches are a reshape, so the convolution is (patches x k*k*C_in) @ kernel;
  rows and columns that do not fill a whole patch are dropped, as VALID padding drops them.
  XLA's CPU convolution computes this op's input gradient as a dilated convolution, seconds for
  the bins head's 16x16 patches; the matmul form's gradients are matmuls.

  Args:
    x: (N, H, W, C_in) input.
    kernel: (kh, kw, C_in, C_out) kernel; the stride is (kh, kw).

  Returns:
    (N, H // kh, W // kw, C_out).
  """
  kh, kw, c_in, c_out = kernel.shape
  n, h, w, _ = x.shape
  gh, gw = h // kh, w // kw
  patches = x[:, :gh * kh, :gw * kw].reshape(n, gh, kh, gw, kw, c_in)
  return jnp.einsum('nypxqc,pqco->nyxo', patches, kernel)


DEPTHWISE_IMPLS = ('auto', 'shifted', 'xla')


def _use_shifted_depthwise(impl: str) -> bool:
  if impl not in DEPTHWISE_IMPLS:
    raise ValueError(f'depthwise impl must be one of {DEPTHWISE_IMPLS}, got {impl!r}.')
  if impl == 'auto':
    return jax.default_backend() == 'cpu'
  return impl == 'shifted'


CONV3X3_IMPLS = ('auto', 'winograd', 'xla')
# 'auto' picks Winograd where its batched matmuls are big enough to repay the transforms: at
# least this many 4x4 output tiles in the batch and this many channels in and out. Below either
# bound the transforms cost more than the smaller matmuls save (benchmarks/decoder_convs.py
# times each decoder layer both ways).
_WINOGRAD_MIN_TILES = 96
_WINOGRAD_MIN_CHANNELS = 32


def _check_conv3x3_impl(impl: str) -> None:
  if impl not in CONV3X3_IMPLS:
    raise ValueError(f'conv3x3 impl must be one of {CONV3X3_IMPLS}, got {impl!r}.')


def _use_winograd(impl: str, x_shape: Sequence[int], dtype, in_features: int,
                  out_features: int) -> bool:
  _check_conv3x3_impl(impl)
  if impl != 'auto':
    return impl == 'winograd'
  tiles = x_shape[0] * -(-x_shape[1] // winograd.TILE) * -(-x_shape[2] // winograd.TILE)
  return (jax.default_backend() == 'cpu' and jnp.dtype(dtype) == jnp.float32
          and tiles >= _WINOGRAD_MIN_TILES
          and min(in_features, out_features) >= _WINOGRAD_MIN_CHANNELS)


# PyTorch's default conv init (kaiming_uniform with a=sqrt(5)) is U(+-1/sqrt(fan_in)).
_torch_default_init = nnx.initializers.variance_scaling(1.0 / 3.0, 'fan_in', 'uniform')


class Conv(nnx.Module):
  """2-D convolution, NHWC, with TensorFlow 'SAME' or PyTorch-style explicit padding.

  Grouped convolution with ``groups == in_features == out_features`` is depthwise; on CPU it runs
  as a sum of shifted copies (see ``depthwise.conv_shifted``) unless ``depthwise_impl='xla'``.
  A dense stride-1 3x3 convolution runs by Winograd F(4x4, 3x3) (``winograd.conv3x3``) under
  ``conv3x3_impl='winograd'``, or under 'auto' (the default) in float32 on CPU where it is
  large enough to gain; 'xla' always uses XLA's convolution. Only speed and rounding differ.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int | Sequence[int], *,
               strides: int | Sequence[int] = 1, padding: Padding = 'SAME', groups: int = 1,
               use_bias: bool = True, depthwise_impl: str = 'auto', conv3x3_impl: str = 'auto',
               dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    if in_features % groups or out_features % groups:
      raise ValueError(f'Conv: groups={groups} must divide in_features={in_features} and '
                       f'out_features={out_features}.')
    self.in_features, self.out_features, self.groups = in_features, out_features, groups
    self.kernel_size, self.strides = _pair(kernel_size), _pair(strides)
    self.padding, self.depthwise_impl, self.dtype = padding, depthwise_impl, dtype
    self.conv3x3_impl = conv3x3_impl
    shape = (*self.kernel_size, in_features // groups, out_features)
    self.kernel = nnx.Param(_torch_default_init(rngs.params(), shape, param_dtype))
    if use_bias:
      bound = 1.0 / np.sqrt(np.prod(shape[:3]))
      self.bias = nnx.Param(jax.random.uniform(rngs.params(), (out_features,), param_dtype,
                                               -bound, bound))
    else:
      self.bias = None

  def algorithm(self, x_shape: Sequence[int], dtype, pads) -> str:
    """How this convolution runs on an input of ``x_shape``: 'pointwise', 'patch' (matmuls),
    'shifted' (depthwise), 'winograd' or 'xla'."""
    dense = self.groups == 1
    no_cropping = min(min(p) for p in pads) >= 0  # XLA's conv alone takes negative padding.
    if dense and self.kernel_size == (1, 1) and self.strides == (1, 1) and no_cropping:
      return 'pointwise'
    if dense and self.kernel_size == self.strides and all(tuple(p) == (0, 0) for p in pads):
      return 'patch'
    if (self.groups > 1 and self.groups == self.in_features == self.out_features
        and _use_shifted_depthwise(self.depthwise_impl)):
      return 'shifted'
    if (dense and self.kernel_size == (3, 3) and self.strides == (1, 1) and no_cropping
        and _use_winograd(self.conv3x3_impl, x_shape, dtype, self.in_features,
                          self.out_features)):
      return 'winograd'
    return 'xla'

  def __call__(self, x: jax.Array) -> jax.Array:
    if x.shape[-1] != self.in_features:
      raise ValueError(f'Conv expects {self.in_features} input channels, got input of shape '
                       f'{x.shape} (NHWC).')
    dtype = self.dtype or x.dtype
    x = x.astype(dtype)
    kernel = self.kernel[...].astype(dtype)
    pads = _explicit_padding(self.padding, self.kernel_size, self.strides, x.shape[1:3])
    algorithm = self.algorithm(x.shape, dtype, pads)
    # The name scope labels the ops in profiles (benchmarks/profile_train_step.py).
    with jax.named_scope(f'conv_{algorithm}'):
      if algorithm == 'pointwise':
        y = pointwise_conv(x, kernel, pads)
      elif algorithm == 'patch':
        y = patch_conv(x, kernel)
      elif algorithm == 'shifted':
        y = depthwise.conv_shifted(x, kernel, self.strides, pads)
      elif algorithm == 'winograd':
        y = winograd.conv3x3(x, kernel, pads)
      else:
        y = jax.lax.conv_general_dilated(
            x, kernel, self.strides, pads, dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
            feature_group_count=self.groups)
    if self.bias is not None:
      y = y + self.bias[...].astype(dtype)
    return y


class SeparableConv(nnx.Module):
  """Depthwise-separable convolution: a depthwise kxk conv then a pointwise 1x1 conv.

  Takes the same arguments as ``Conv`` (groups excepted), so it can stand wherever one does.
  """

  def __init__(self, in_features: int, out_features: int, kernel_size: int | Sequence[int], *,
               strides: int | Sequence[int] = 1, padding: Padding = 'SAME',
               use_bias: bool = True, dtype=None, param_dtype=jnp.float32, rngs: nnx.Rngs):
    self.depthwise = Conv(in_features, in_features, kernel_size, strides=strides,
                          padding=padding, groups=in_features, use_bias=False, dtype=dtype,
                          param_dtype=param_dtype, rngs=rngs)
    self.pointwise = Conv(in_features, out_features, 1, padding=0, use_bias=use_bias,
                          dtype=dtype, param_dtype=param_dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.pointwise(self.depthwise(x))


CONV_KINDS = {'standard': Conv, 'dws': SeparableConv}


def set_conv_impls(model: nnx.Module, *, depthwise_impl: str | None = None,
                   conv3x3_impl: str | None = None) -> None:
  """Chooses how every convolution inside ``model`` runs (``Conv``'s arguments of those names).

  Models are built with the defaults and configured by this, after building or at any time
  later (export, benchmarks); only speed and rounding change, never the weights. None leaves a
  choice as it is.
  """
  if depthwise_impl is not None and depthwise_impl not in DEPTHWISE_IMPLS:
    raise ValueError(f'depthwise impl must be one of {DEPTHWISE_IMPLS}, got {depthwise_impl!r}.')
  if conv3x3_impl is not None:
    _check_conv3x3_impl(conv3x3_impl)
  for _, module in nnx.iter_graph(model):
    if isinstance(module, Conv):
      if depthwise_impl is not None:
        module.depthwise_impl = depthwise_impl
      if conv3x3_impl is not None:
        module.conv3x3_impl = conv3x3_impl


@contextlib.contextmanager
def conv_impls(model: nnx.Module, *, depthwise_impl: str | None = None,
               conv3x3_impl: str | None = None) -> Iterator[None]:
  """Within: ``set_conv_impls(model, ...)``; after: every convolution runs as it did before."""
  saved = [(conv, conv.depthwise_impl, conv.conv3x3_impl) for _, conv in nnx.iter_graph(model)
           if isinstance(conv, Conv)]
  set_conv_impls(model, depthwise_impl=depthwise_impl, conv3x3_impl=conv3x3_impl)
  try:
    yield
  finally:
    for conv, saved_depthwise, saved_conv3x3 in saved:
      conv.depthwise_impl, conv.conv3x3_impl = saved_depthwise, saved_conv3x3


def make_conv(kind: str, in_features: int, out_features: int, kernel_size, **kwargs):
  """Builds a standard ('standard') or depthwise-separable ('dws') convolution."""
  if kind not in CONV_KINDS:
    raise ValueError(f'conv kind must be one of {sorted(CONV_KINDS)}, got {kind!r}.')
  if kind == 'dws' and _pair(kernel_size) == (1, 1):
    kind = 'standard'  # A 1x1 conv has nothing to separate.
  return CONV_KINDS[kind](in_features, out_features, kernel_size, **kwargs)


class BatchNorm(nnx.BatchNorm):
  """``nnx.BatchNorm`` whose training-mode call replaces its running statistics wholesale.

  ``nnx.BatchNorm`` writes them with ``self.mean[...] = ...``; under ``jit`` that assignment asks
  the traced value for its sharding, and the tracer's error message for that walks the whole
  program traced so far. Once per layer, that makes tracing a deep model's train step quadratic
  in its depth. The arithmetic here is flax's (fast variance, statistics
  in at least float32); evaluation mode is flax's own code.
  """

  def __call__(self, x: jax.Array, use_running_average: bool | None = None, *,
               mask: jax.Array | None = None) -> jax.Array:
    running = self.use_running_average if use_running_average is None else use_running_average
    with jax.named_scope('batch_norm'):
      if running or mask is not None or self.axis_name is not None:
        return super().__call__(x, use_running_average=running, mask=mask)
      return self._train(x)

  def _train(self, x: jax.Array) -> jax.Array:
    scale = self.scale[...] if self.scale is not None else None
    bias = self.bias[...] if self.bias is not None else None
    x, scale, bias = self.promote_dtype((x, scale, bias), dtype=self.dtype)
    axes = tuple(range(x.ndim - 1))
    stats = x.astype(jnp.promote_types(x.dtype, jnp.float32))
    mean = jnp.mean(stats, axes)
    var = jnp.maximum(0.0, jnp.mean(jnp.square(stats), axes) - jnp.square(mean))
    m = self.momentum
    self.mean.set_value(jax.lax.stop_gradient(m * self.mean.get_value() + (1 - m) * mean))
    self.var.set_value(jax.lax.stop_gradient(m * self.var.get_value() + (1 - m) * var))
    mul = jax.lax.rsqrt(var + self.epsilon)
    if scale is not None:
      mul = mul * scale
    y = (x - mean) * mul
    if bias is not None:
      y = y + bias
    return jnp.asarray(y, self.dtype or y.dtype)


def batch_norm(features: int, *, torch_momentum: float = 0.1, eps: float = 1e-5, dtype=None,
               param_dtype=jnp.float32, rngs: nnx.Rngs) -> BatchNorm:
  """BatchNorm with PyTorch's momentum convention (new = (1-m) * old + m * batch).

  Under jit over a sharded batch the statistics are those of the global batch, i.e. synchronised
  BatchNorm; the PyTorch release trained with per-GPU statistics.
  """
  return BatchNorm(features, momentum=1.0 - torch_momentum, epsilon=eps, dtype=dtype,
                   param_dtype=param_dtype, rngs=rngs)


def drop_path(rate: float, rngs: nnx.Rngs) -> nnx.Dropout:
  """Stochastic depth: drops whole residual branches per example (mask broadcast over H, W, C)."""
  return nnx.Dropout(rate, broadcast_dims=(1, 2, 3), rngs=rngs)


def leaky_relu(x: jax.Array) -> jax.Array:
  """PyTorch's default LeakyReLU slope."""
  return jax.nn.leaky_relu(x, 0.01)

