"""Winograd F(4x4, 3x3) convolution against XLA's, and how ``Conv`` chooses between them."""

import importlib

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from adabins_jax import models
from adabins_jax import parallel
from adabins_jax.models import layers
from adabins_jax.models import winograd

_DIMS = ('NHWC', 'HWIO', 'NHWC')


def _reference(x, kernel, pads):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), pads, dimension_numbers=_DIMS,
                                      precision=jax.lax.Precision.HIGHEST)


def _rel(a, b):
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return np.linalg.norm(a - b) / np.linalg.norm(b)


def _inputs(shape, c_out, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.standard_normal(shape), jnp.float32)
  kernel = jnp.asarray(rng.standard_normal((3, 3, shape[-1], c_out)) / np.sqrt(9 * shape[-1]),
                       jnp.float32)
  return x, kernel


@pytest.mark.parametrize('shape,c_out,pads', [
    ((1, 16, 16, 8), 8, ((1, 1), (1, 1))),      # whole tiles
    ((2, 13, 10, 5), 7, ((1, 1), (1, 1))),      # ragged edge tiles, batch 2
    ((1, 9, 11, 4), 3, ((0, 0), (0, 0))),       # 'VALID'
    ((1, 8, 8, 4), 6, ((0, 1), (1, 0))),        # TF 'SAME'-style uneven padding
    ((1, 3, 3, 2), 2, ((1, 1), (1, 1))),        # smaller than one tile
    ((1, 1, 1, 2), 2, ((1, 1), (1, 1))),        # a single pixel
    ((1, 26, 34, 96), 64, ((1, 1), (1, 1))),    # a decoder-like map
])
def test_matches_xla_convolution(shape, c_out, pads):
  x, kernel = _inputs(shape, c_out)
  expected = _reference(x, kernel, pads)
  got = winograd.conv3x3(x, kernel, pads)
  assert got.shape == expected.shape
  assert _rel(got, expected) < 1e-5


@pytest.mark.parametrize('shape,c_out,pads', [
    ((2, 11, 14, 6), 5, ((1, 1), (1, 1))),      # ragged edge tiles, batch 2
    ((1, 16, 16, 8), 8, ((1, 1), (1, 1))),      # whole tiles
    ((1, 9, 11, 4), 3, ((0, 0), (0, 0))),       # 'VALID'
    ((1, 8, 8, 4), 6, ((0, 1), (1, 0))),        # TF 'SAME'-style uneven padding
    ((1, 7, 9, 3), 4, ((3, 2), (0, 3))),        # padding above 2: cropped input gradient
    ((1, 3, 3, 2), 2, ((1, 1), (1, 1))),        # smaller than one tile
])
@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_gradients_match_xla_convolution(shape, c_out, pads):
  x, kernel = _inputs(shape, c_out, seed=1)
  out_shape = _reference(x, kernel, pads).shape
  weights = jnp.asarray(np.random.default_rng(2).standard_normal(out_shape), jnp.float32)

  def loss(fn):
    return lambda x, k: jnp.sum(fn(x, k, pads) * weights)

  got = jax.grad(loss(winograd.conv3x3), argnums=(0, 1))(x, kernel)
  expected = jax.grad(loss(_reference), argnums=(0, 1))(x, kernel)
  for g, e in zip(got, expected):
    assert _rel(g, e) < 1e-5


def test_transformed_kernel_is_g_g_gt():
  kernel = jnp.asarray(np.random.default_rng(3).standard_normal((3, 3, 2, 3)), jnp.float32)
  u = np.asarray(winograd.transform_kernel(kernel)).reshape(6, 6, 2, 3)  # (col, row, ...)
  g = winograd._G
  expected = np.einsum('pi,ijco,qj->qpco', g, np.asarray(kernel, np.float64), g)
  np.testing.assert_allclose(u, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kernel_shape,pads,message', [
    ((5, 5, 4, 4), ((2, 2), (2, 2)), '3x3 kernel'),
    ((3, 3, 3, 4), ((1, 1), (1, 1)), 'does not fit'),
    ((3, 3, 4, 4), ((-1, 0), (0, 0)), 'non-negative'),
])
def test_bad_arguments_are_named(kernel_shape, pads, message):
  x = jnp.zeros((1, 8, 8, 4))
  with pytest.raises(ValueError, match=message):
    winograd.conv3x3(x, jnp.zeros(kernel_shape), pads)


def _primitives(fn, *args):
  """Every primitive in ``fn``'s program, inside calls such as custom VJPs included."""
  names = set()

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      names.add(eqn.primitive.name)
      for sub in jax.extend.core.jaxprs_in_params(eqn.params):
        walk(sub)

  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return names


def _conv(impl, c_in=64, c_out=64, dtype=None):
  return layers.Conv(c_in, c_out, 3, padding=1, conv3x3_impl=impl, dtype=dtype,
                     rngs=nnx.Rngs(0))


@pytest.mark.parametrize('shape,dtype,winograd_expected', [
    ((1, 64, 64, 64), jnp.float32, True),    # 256 tiles, 64 channels
    ((1, 24, 24, 64), jnp.float32, False),   # 36 tiles: too few to gain
    ((8, 24, 24, 64), jnp.float32, True),    # ... but 288 in a batch of 8
    ((1, 26, 34, 64), jnp.float32, False),   # 63 tiles: B5's 26x34 decoder maps at batch 1
    ((2, 26, 34, 64), jnp.float32, True),    # 126 tiles: the same maps at batch 2
    ((1, 64, 64, 64), jnp.bfloat16, False),  # transforms too lossy in bfloat16
])
def test_auto_chooses_winograd_on_cpu_where_it_gains(shape, dtype, winograd_expected):
  if jax.default_backend() != 'cpu':
    pytest.skip("'auto' uses Winograd on CPU only")
  conv = _conv('auto', dtype=dtype)
  used = _primitives(conv, jnp.zeros(shape, dtype))
  assert ('conv_general_dilated' not in used) == winograd_expected
  assert ('dot_general' in used) == winograd_expected


def test_auto_keeps_xla_for_few_channels_and_other_kernels():
  x = jnp.zeros((1, 64, 64, 16))
  assert 'conv_general_dilated' in _primitives(_conv('auto', c_in=16, c_out=16), x)
  assert 'conv_general_dilated' in _primitives(_conv('auto', c_in=16, c_out=32), x)
  wide = _primitives(_conv('auto', c_in=32, c_out=32), jnp.zeros((1, 64, 64, 32)))
  assert 'conv_general_dilated' not in wide and 'dot_general' in wide
  strided = layers.Conv(16, 64, 3, strides=2, conv3x3_impl='winograd', rngs=nnx.Rngs(0))
  assert 'conv_general_dilated' in _primitives(strided, x)
  # A 1x1 conv is a matmul over channels whatever conv3x3_impl says, never a Winograd transform.
  pointwise = layers.Conv(16, 64, 1, conv3x3_impl='winograd', rngs=nnx.Rngs(0))
  assert _primitives(pointwise, x) & {'conv_general_dilated', 'slice', 'concatenate'} == set()


def test_conv_module_gives_the_same_numbers_either_way():
  x = jnp.asarray(np.random.default_rng(4).standard_normal((2, 12, 20, 32)), jnp.float32)
  outputs = {}
  for impl in ('winograd', 'xla'):
    conv = layers.Conv(32, 48, 3, padding='SAME', conv3x3_impl=impl, rngs=nnx.Rngs(5))
    outputs[impl] = conv(x)
  assert 'conv_general_dilated' not in _primitives(
      layers.Conv(32, 48, 3, conv3x3_impl='winograd', rngs=nnx.Rngs(5)), x)
  assert _rel(outputs['winograd'], outputs['xla']) < 1e-5


def test_unknown_impl_is_named():
  with pytest.raises(ValueError, match="'fft'"):
    _conv('fft')(jnp.zeros((1, 8, 8, 64)))
  with pytest.raises(ValueError, match="'fft'"):
    layers.set_conv_impls(_conv('auto'), conv3x3_impl='fft')


@pytest.mark.parametrize('impl', ['xla', 'winograd'])
def test_model_config_sets_every_convolution(impl):
  config = importlib.import_module('configs.smoke').get_config()
  assert config.model.conv3x3_impl == 'auto'
  config.model.conv3x3_impl = impl
  model = nnx.eval_shape(lambda: models.build_model(config.model, rngs=nnx.Rngs(0)))
  impls = {m.conv3x3_impl for _, m in nnx.iter_graph(model) if isinstance(m, layers.Conv)}
  assert impls == {impl}


def test_batch_sharded_over_two_devices_gives_the_same_result():
  """Data parallelism: the tiles of a sharded batch are split with it (two fake CPU devices)."""
  mesh = parallel.create_mesh(2)
  x, kernel = _inputs((4, 20, 28, 16), 24, seed=6)
  pads = ((1, 1), (1, 1))
  single = jax.jit(winograd.conv3x3, static_argnums=2)(x, kernel, pads)
  sharded_x = jax.device_put(x, NamedSharding(mesh, P('data')))
  with jax.set_mesh(mesh):
    sharded = jax.jit(winograd.conv3x3, static_argnums=2)(sharded_x, kernel, pads)
  assert len(sharded.sharding.device_set) == 2
  np.testing.assert_allclose(np.asarray(sharded), np.asarray(single), rtol=1e-5, atol=1e-5)
