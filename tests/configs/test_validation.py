"""Tests for adabins_jax.configs.validation: every invalid field named at once, NaN and inf
refused, every shipped config valid.
"""

import pytest

from adabins_jax.configs import validation as config_validation
from adabins_jax import configs
from adabins_jax.configs import smoke


def test_every_invalid_field_is_named_at_once(config):
  bad = smoke.get_config()
  bad.train.num_steps = -5
  bad.train.log_every_steps = 0
  bad.train.checkpoint_every_steps = 0
  bad.optim.learning_rate = -1.0
  bad.eval.crop = 'center'
  with pytest.raises(ValueError) as info:
    config_validation.validate(bad)
  message = str(info.value)
  for field in ('train.num_steps=-5', 'train.log_every_steps=0',
                'train.checkpoint_every_steps=0', 'optim.learning_rate=-1.0',
                "eval.crop='center'"):
    assert field in message, message


@pytest.mark.parametrize('field', ['optim.learning_rate', 'data.input_scale', 'optim.eps',
                                   'model.max_depth_m', 'train.silog_weight'])
@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf')])
def test_nan_and_inf_are_refused_in_every_numeric_field(field, value):
  bad = smoke.get_config()
  group, name = field.split('.')
  bad[group][name] = value
  with pytest.raises(ValueError, match=f'{field}={value!r}: must be a finite number'):
    config_validation.validate(bad)


@pytest.mark.parametrize('name', configs.names() + ['default'])
def test_every_shipped_config_is_valid(name):
  config_validation.validate(configs.load(name))
