"""Fixtures the inference tests share."""

import pytest

from adabins_jax import models
from adabins_jax.configs import smoke
from helpers import stand_ins


@pytest.fixture(scope='module')
def weights(tmp_path_factory):
  """A released-style .pt of the smoke model with random weights."""
  pytest.importorskip('torch')
  model = models.random_model(smoke.get_config().model, seed=1)
  return stand_ins.save_torch_weights(model, tmp_path_factory.mktemp('weights') / 'smoke.pt')
