"""The optimiser against torch: OneCycleLR's lr and beta1, and AdamW + clip_grad_norm_ steps."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
from flax import nnx

from adabins_jax import optim
from adabins_jax.configs import default


def _optim_config(**overrides):
  config = default.get_config().optim
  config.update(overrides)
  return config


def _torch_one_cycle(optimizer, config, total_steps, max_lr):
  return torch.optim.lr_scheduler.OneCycleLR(
      optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=config.pct_start,
      anneal_strategy='cos', cycle_momentum=True, base_momentum=config.base_beta1,
      max_momentum=config.max_beta1, div_factor=config.div_factor,
      final_div_factor=config.final_div_factor, three_phase=False)


@pytest.mark.parametrize('total_steps', [100, 37, 3])
def test_schedules_match_torch_one_cycle(total_steps):
  config = _optim_config()
  param = torch.zeros(1, requires_grad=True)
  opt = torch.optim.AdamW([param], lr=config.learning_rate, betas=(0.9, config.beta2))
  sched = _torch_one_cycle(opt, config, total_steps, config.learning_rate)
  want_lr, want_b1 = [], []
  for _ in range(total_steps):
    want_lr.append(opt.param_groups[0]['lr'])
    want_b1.append(opt.param_groups[0]['betas'][0])
    opt.step()
    sched.step()
  steps = jnp.arange(total_steps)
  got_lr = jax.vmap(optim.learning_rate_schedule(config, total_steps))(steps)
  got_b1 = jax.vmap(optim.beta1_schedule(config, total_steps))(steps)
  np.testing.assert_allclose(got_lr, want_lr, rtol=1e-6)
  np.testing.assert_allclose(got_b1, want_b1, rtol=1e-6)
  if total_steps * config.pct_start > 1:  # else torch skips the warm-up phase, and so do we
    assert want_lr[0] == pytest.approx(config.learning_rate / 25)
  # Past the end the schedule holds its last value instead of raising.
  assert optim.learning_rate_schedule(config, total_steps)(total_steps + 5) == got_lr[-1]


def _run_both(config, total_steps, grads, params):
  """Runs optax and torch (AdamW, clip_grad_norm_, OneCycleLR per group) on the same grads."""
  tx = optim.create_optimizer(config, total_steps)
  state = tx.init(params)
  jax_params = params
  update = jax.jit(tx.update)
  torch_params = {k: {n: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True)
                      for n, v in group.items()} for k, group in params.items()}
  enc = config.encoder_lr_multiplier * config.learning_rate
  opt = torch.optim.AdamW(
      [{'params': list(torch_params['encoder'].values()), 'lr': enc},
       {'params': list(torch_params['decoder'].values()), 'lr': config.learning_rate}],
      betas=(0.9, config.beta2), eps=config.eps, weight_decay=config.weight_decay)
  sched = _torch_one_cycle(opt, config, total_steps, [enc, config.learning_rate])
  for g in grads:
    updates, state = update(g, state, jax_params)
    jax_params = optax.apply_updates(jax_params, updates)
    for k, group in torch_params.items():
      for n, p in group.items():
        p.grad = torch.tensor(np.asarray(g[k][n]), dtype=torch.float64)
    torch.nn.utils.clip_grad_norm_([p for group in torch_params.values() for p in group.values()],
                                   config.grad_clip_norm)
    opt.step()
    sched.step()
  return jax_params, torch_params


@pytest.mark.parametrize('encoder_lr_multiplier', [1.0, 0.1])
def test_steps_match_torch_adamw(encoder_lr_multiplier):
  # A large lr so the parameters travel far enough for a mismatch to show.
  config = _optim_config(learning_rate=0.05, encoder_lr_multiplier=encoder_lr_multiplier)
  rng = np.random.default_rng(0)
  params = {'encoder': {'kernel': jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)},
            'decoder': {'bias': jnp.asarray(rng.normal(size=(5,)), jnp.float32),
                        'kernel': jnp.asarray(rng.normal(size=(2, 2)), jnp.float32)}}
  total_steps = 12
  # Alternate large gradients (clipped to norm 0.1) and small ones (left alone).
  grads = [jax.tree.map(lambda p, s=s: jnp.asarray(rng.normal(size=p.shape) * s, jnp.float32),
                        params) for s in [1.0, 0.005] * (total_steps // 2)]
  jax_params, torch_params = _run_both(config, total_steps, grads, params)
  for k, group in torch_params.items():
    for n, p in group.items():
      np.testing.assert_allclose(jax_params[k][n], p.detach().numpy(), rtol=1e-5, atol=1e-6,
                                 err_msg=f'{k}/{n}')
      assert not np.allclose(jax_params[k][n], params[k][n], atol=1e-2)  # they did move


def test_encoder_multiplier_scales_only_the_encoder_group():
  params = {'encoder': {'w': jnp.ones((4,))}, 'decoder': {'w': jnp.ones((4,))}}
  grads = {'encoder': {'w': jnp.full((4,), 0.01)}, 'decoder': {'w': jnp.full((4,), -0.02)}}

  def first_update(mult):
    tx = optim.create_optimizer(_optim_config(encoder_lr_multiplier=mult), 100)
    return tx.update(grads, tx.init(params), params)[0]

  base, scaled = first_update(1.0), first_update(0.1)
  np.testing.assert_allclose(scaled['encoder']['w'], 0.1 * base['encoder']['w'], rtol=1e-6)
  np.testing.assert_allclose(scaled['decoder']['w'], base['decoder']['w'], rtol=1e-6)


class _Tiny(nnx.Module):

  def __init__(self, rngs):
    self.encoder = nnx.Linear(2, 3, rngs=rngs)
    self.head = nnx.List([nnx.Linear(3, 1, rngs=rngs)])


def test_labels_on_nnx_state_and_rules_order():
  model = _Tiny(nnx.Rngs(0))
  config = _optim_config(encoder_lr_multiplier=0.1, lr_multiplier_rules=((r'/bias$', 2.0),))
  labels = optim.param_group_labels(nnx.state(model, nnx.Param),
                                    optim.lr_multiplier_rules(config))
  named = {optim.parameter_path(p): l for p, l in jax.tree_util.tree_flatten_with_path(labels)[0]}
  # The config's rule comes first, so the encoder's bias goes to the x2 group.
  assert named == {'encoder/kernel': 'lr_x0.1', 'encoder/bias': 'lr_x2',
                   'head/0/kernel': 'lr_x1', 'head/0/bias': 'lr_x2'}


def test_nnx_optimizer_updates_with_the_chain():
  model = _Tiny(nnx.Rngs(0))
  before = nnx.state(model, nnx.Param)
  before = jax.tree.map(jnp.copy, before)
  opt = nnx.Optimizer(model, optim.create_optimizer(_optim_config(encoder_lr_multiplier=0.1), 10),
                      wrt=nnx.Param)

  @nnx.jit
  def step(model, opt):
    grads = nnx.grad(lambda m: jnp.sum(m.head[0](m.encoder(jnp.ones((1, 2))))))(model)
    opt.update(model, grads)

  step(model, opt)
  after = nnx.state(model, nnx.Param)
  moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), after, before)
  assert all(v > 0 for v in jax.tree.leaves(moved))


def test_bad_config_values_raise():
  with pytest.raises(ValueError, match='pct_start'):
    optim.create_optimizer(_optim_config(pct_start=1.5), 100)
  with pytest.raises(ValueError, match='total_steps'):
    optim.create_optimizer(_optim_config(), 0)
  with pytest.raises(ValueError, match='bad regex'):
    optim.create_optimizer(_optim_config(lr_multiplier_rules=(('(', 1.0),)), 100)
