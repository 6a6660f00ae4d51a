"""bfloat16 compute with float32 parameters (config.model.dtype) through the real train step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from adabins_jax import optim
from adabins_jax import steps
from adabins_jax.models import build_model
from adabins_jax.configs import smoke


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_bfloat16_train_step_keeps_float32_params_and_finite_loss():
  config = smoke.get_config()
  config.model.dtype = 'bfloat16'
  model = build_model(config.model, rngs=nnx.Rngs(params=0, dropout=1))
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, 10), wrt=nnx.Param)
  graphdef, state = nnx.split((model, optimizer))
  train_step = steps.make_train_step(config, graphdef, optim.learning_rate_schedule(
      config.optim, 10))
  rng = np.random.default_rng(0)
  batch = {'image': jnp.asarray(rng.standard_normal((2, 64, 80, 3)), jnp.float32),
           'depth': jnp.asarray(rng.uniform(0.5, 9.0, (2, 64, 80, 1)), jnp.float32)}
  before = [np.array(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))]  # Donated below.
  state, metrics = train_step(state, batch, jax.random.key(0))
  assert np.isfinite(float(metrics['loss']))
  model, _ = nnx.merge(graphdef, state)
  after = jax.tree.leaves(nnx.state(model, nnx.Param))
  assert all(p.dtype == jnp.float32 for p in after)
  assert any(not np.allclose(a, b) for a, b in zip(before, after))
  model.eval()
  edges, depth = nnx.jit(lambda m, x: m(x))(model, batch['image'])
  assert edges.dtype == jnp.float32 and depth.dtype == jnp.float32
  assert np.all(np.isfinite(np.asarray(depth)))
