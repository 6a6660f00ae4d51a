"""Convolutions, padding, depthwise implementations and align-corners resizing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from adabins_jax.models import count_params
from adabins_jax.models import layers


def _align_corners_reference(x, out_h, out_w):
  """Direct evaluation of the align_corners formula, one output pixel at a time."""
  n, h, w, c = x.shape
  out = np.zeros((n, out_h, out_w, c), np.float64)
  for i in range(out_h):
    sy = i * (h - 1) / (out_h - 1) if out_h > 1 else 0.0
    y0 = min(int(np.floor(sy)), h - 1)
    y1, fy = min(y0 + 1, h - 1), sy - y0
    for j in range(out_w):
      sx = j * (w - 1) / (out_w - 1) if out_w > 1 else 0.0
      x0 = min(int(np.floor(sx)), w - 1)
      x1, fx = min(x0 + 1, w - 1), sx - x0
      top = x[:, y0, x0] * (1 - fx) + x[:, y0, x1] * fx
      bottom = x[:, y1, x0] * (1 - fx) + x[:, y1, x1] * fx
      out[:, i, j] = top * (1 - fy) + bottom * fy
  return out


@pytest.mark.parametrize('in_hw,out_hw', [((7, 9), (15, 19)), ((13, 17), (26, 34)),
                                          ((15, 19), (7, 9)), ((5, 1), (9, 3)), ((4, 6), (4, 6))])
def test_resize_matches_align_corners_formula(in_hw, out_hw):
  x = np.random.default_rng(0).standard_normal((2, *in_hw, 3))
  got = layers.resize_bilinear(jnp.asarray(x, jnp.float32), out_hw)
  np.testing.assert_allclose(got, _align_corners_reference(x, *out_hw), atol=1e-5)


def test_resize_matches_torch_interpolate():
  x = np.random.default_rng(1).standard_normal((1, 11, 14, 4)).astype(np.float32)
  ref = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2)), size=(29, 31),
                                        mode='bilinear', align_corners=True)
  got = layers.resize_bilinear(jnp.asarray(x), (29, 31))
  np.testing.assert_allclose(got, ref.numpy().transpose(0, 2, 3, 1), atol=1e-5)


def test_resize_rejects_bad_input():
  with pytest.raises(ValueError, match='NHWC'):
    layers.resize_bilinear(jnp.zeros((4, 4, 3)), (8, 8))


@pytest.mark.parametrize('size,kernel,stride,expected', [
    (5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (7, 5, 1, (2, 2)), (8, 5, 2, (1, 2)), (4, 1, 1, (0, 0))])
def test_tf_same_padding_is_asymmetric(size, kernel, stride, expected):
  pads = layers._explicit_padding('SAME', (kernel, kernel), (stride, stride), (size, size))
  assert pads == [expected, expected]


@pytest.mark.parametrize('kernel,stride,padding,hw', [
    (3, 1, 'SAME', (13, 17)), (3, 2, 'SAME', (13, 17)), (5, 2, 'SAME', (12, 15)),
    (5, 1, 2, (9, 11)), (3, 2, 1, (10, 7)),
    # Padding beyond the kernel: the input gradient's spread-out cotangent is cropped.
    (3, 1, 3, (7, 6)), (3, 2, 3, (9, 8))])
def test_depthwise_shifted_equals_xla(kernel, stride, padding, hw):
  x = jax.random.normal(jax.random.key(0), (2, *hw, 6))
  convs = [layers.Conv(6, 6, kernel, strides=stride, padding=padding, groups=6,
                       depthwise_impl=impl, rngs=nnx.Rngs(3)) for impl in ('shifted', 'xla')]
  np.testing.assert_allclose(convs[0](x), convs[1](x), atol=1e-5)

  def grads(conv):
    graphdef, state = nnx.split(conv)
    loss = lambda state, x: jnp.sum(nnx.merge(graphdef, state)(x) ** 2)
    d_state, d_x = jax.grad(loss, argnums=(0, 1))(state, x)
    return d_state['kernel'][...], d_x

  for ours, reference in zip(grads(convs[0]), grads(convs[1])):  # kernel, then input
    assert float(jnp.linalg.norm(ours - reference) / jnp.linalg.norm(reference)) < 1e-5


def test_conv_matches_torch_with_symmetric_padding():
  conv = layers.Conv(4, 5, 3, padding=1, rngs=nnx.Rngs(0))
  x = np.random.default_rng(2).standard_normal((1, 8, 9, 4)).astype(np.float32)
  ref = torch.nn.functional.conv2d(
      torch.from_numpy(x.transpose(0, 3, 1, 2)),
      torch.from_numpy(np.array(conv.kernel[...]).transpose(3, 2, 0, 1).copy()),
      torch.from_numpy(np.array(conv.bias[...])), padding=1)
  np.testing.assert_allclose(conv(jnp.asarray(x)), ref.numpy().transpose(0, 2, 3, 1), atol=1e-5)


def test_separable_conv_is_depthwise_then_pointwise():
  sep = layers.SeparableConv(4, 7, 3, padding=1, rngs=nnx.Rngs(0))
  x = np.random.default_rng(3).standard_normal((2, 6, 5, 4)).astype(np.float32)
  dw = np.asarray(sep.depthwise.kernel[...])[:, :, 0, :]  # (3, 3, C)
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  depthwise = sum(xp[:, i:i + 6, j:j + 5, :] * dw[i, j] for i in range(3) for j in range(3))
  expected = depthwise @ np.asarray(sep.pointwise.kernel[...])[0, 0] + np.asarray(
      sep.pointwise.bias[...])
  np.testing.assert_allclose(sep(jnp.asarray(x)), expected, atol=1e-5)
  assert count_params(sep) == 3 * 3 * 4 + 4 * 7 + 7


def test_make_conv_rejects_unknown_kind_and_conv_checks_channels():
  with pytest.raises(ValueError, match='conv kind'):
    layers.make_conv('grouped', 4, 4, 3, rngs=nnx.Rngs(0))
  conv = layers.Conv(4, 4, 3, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match='4 input channels'):
    conv(jnp.zeros((1, 8, 8, 3)))


def _rel(a, b):
  return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


@pytest.mark.parametrize('kernel,stride,padding,hw', [
    (1, 1, 0, (9, 11)),             # a pointwise conv (EfficientNet's expand/project, conv_out)
    (1, 1, 1, (13, 17)),            # the decoder's 1x1 conv with padding 1
    (1, 1, 'SAME', (5, 6)),
    (4, 4, 'VALID', (17, 22)),      # a patch embedding, with rows and columns left over
    (2, 2, 'VALID', (8, 8))])
def test_matmul_convolutions_equal_xla_with_gradients(kernel, stride, padding, hw):
  """Pointwise and patch convs run as matmuls; values and gradients are XLA's conv's."""
  conv = layers.Conv(24, 40, kernel, strides=stride, padding=padding, rngs=nnx.Rngs(4))
  x = jax.random.normal(jax.random.key(1), (2, *hw, 24))
  pads = layers._explicit_padding(padding, conv.kernel_size, conv.strides, hw)

  def reference(kernel, bias, x):
    y = jax.lax.conv_general_dilated(x, kernel, conv.strides, pads,
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y + bias

  graphdef, state = nnx.split(conv)
  args = (conv.kernel[...], conv.bias[...], x)
  expected = reference(*args)
  cotangent = jax.random.normal(jax.random.key(2), expected.shape)
  got, vjp = jax.vjp(lambda state, x: nnx.merge(graphdef, state)(x), state, x)
  assert got.shape == expected.shape
  assert _rel(got, expected) < 1e-6
  d_state, d_x = vjp(cotangent)
  d_kernel, d_bias, d_x_expected = jax.vjp(reference, *args)[1](cotangent)
  assert _rel(d_state['kernel'][...], d_kernel) < 1e-5
  assert _rel(d_state['bias'][...], d_bias) < 1e-5
  assert _rel(d_x, d_x_expected) < 1e-5


def test_matmul_convolutions_are_matmuls_in_the_program():
  """Neither a pointwise nor a patch conv (nor their gradients) leaves a convolution behind."""
  for kernel, stride in ((1, 1), (4, 4)):
    conv = layers.Conv(8, 16, kernel, strides=stride, padding='VALID', rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(conv)
    loss = lambda p, x: jnp.sum(nnx.merge(graphdef, p)(x) ** 2)
    jaxpr = str(jax.make_jaxpr(jax.grad(loss, argnums=(0, 1)))(params, jnp.ones((1, 8, 8, 8))))
    assert 'conv_general_dilated' not in jaxpr and 'dot_general' in jaxpr


@pytest.mark.parametrize('dtype', [None, jnp.bfloat16])
def test_batch_norm_trains_like_flax_batch_norm(dtype):
  """Output, updated running statistics and gradients equal nnx.BatchNorm's in training mode."""
  ours = layers.batch_norm(16, torch_momentum=0.01, eps=1e-3, dtype=dtype, rngs=nnx.Rngs(0))
  flax_bn = nnx.BatchNorm(16, momentum=0.99, epsilon=1e-3, dtype=dtype, rngs=nnx.Rngs(0))
  for bn in (ours, flax_bn):
    bn.scale.set_value(jnp.linspace(0.5, 1.5, 16))
    bn.bias.set_value(jnp.linspace(-1.0, 1.0, 16))
    bn.mean.set_value(jnp.full((16,), 0.3))
    bn.var.set_value(jnp.full((16,), 2.0))
  x = (jax.random.normal(jax.random.key(0), (2, 5, 7, 16)) * 3 + 1).astype(dtype or jnp.float32)

  def step(bn):
    graphdef, state = nnx.split(bn)

    def f(state, x):
      bn = nnx.merge(graphdef, state)
      loss = lambda bn, x: jnp.sum(jnp.sin(bn(x).astype(jnp.float32)))
      grads = nnx.grad(loss, argnums=(0, 1))(bn, x)
      return bn(x), nnx.state(bn), grads

    return jax.jit(f)(state, x)

  (y, stats, (d_bn, d_x)), (y_ref, stats_ref, (d_bn_ref, d_x_ref)) = step(ours), step(flax_bn)
  assert y.dtype == y_ref.dtype
  np.testing.assert_allclose(np.asarray(y, np.float32), np.asarray(y_ref, np.float32), atol=1e-6)
  for name in ('mean', 'var'):
    np.testing.assert_allclose(stats[name][...], stats_ref[name][...], rtol=1e-6)
    assert not np.allclose(stats[name][...], {'mean': 0.3, 'var': 2.0}[name])  # Updated.
  np.testing.assert_allclose(np.asarray(d_x, np.float32), np.asarray(d_x_ref, np.float32),
                             atol=1e-5)
  for name in ('scale', 'bias'):
    np.testing.assert_allclose(d_bn[name][...], d_bn_ref[name][...], rtol=1e-5, atol=1e-5)


def test_pointwise_conv_with_cropping_padding_stays_on_xla():
  """Negative (cropping) padding is XLA's conv's alone; a 1x1 conv with it still runs there."""
  conv = layers.Conv(4, 5, 1, padding=[(-1, -1), (0, 1)], rngs=nnx.Rngs(0))
  pads = layers._explicit_padding(conv.padding, conv.kernel_size, conv.strides, (6, 7))
  assert conv.algorithm((1, 6, 7, 4), jnp.float32, pads) == 'xla'
  x = jax.random.normal(jax.random.key(0), (1, 6, 7, 4))
  expected = jax.lax.conv_general_dilated(x, conv.kernel[...], (1, 1), pads,
                                          dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  np.testing.assert_allclose(conv(x), expected + conv.bias[...], atol=1e-6)


def test_conv_impls_apply_within_and_restore_after_even_on_error():
  convs = nnx.List([layers.Conv(4, 4, 3, padding=1, rngs=nnx.Rngs(0)),
                    layers.Conv(4, 4, 3, padding=1, groups=4, depthwise_impl='xla',
                                rngs=nnx.Rngs(1))])
  before = [(c.depthwise_impl, c.conv3x3_impl) for c in convs]
  with layers.conv_impls(convs, depthwise_impl='shifted', conv3x3_impl='xla'):
    assert all((c.depthwise_impl, c.conv3x3_impl) == ('shifted', 'xla') for c in convs)
  assert [(c.depthwise_impl, c.conv3x3_impl) for c in convs] == before
  with pytest.raises(RuntimeError), layers.conv_impls(convs, conv3x3_impl='xla'):
    raise RuntimeError
  assert [(c.depthwise_impl, c.conv3x3_impl) for c in convs] == before
