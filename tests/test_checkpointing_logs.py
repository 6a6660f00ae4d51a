"""Orbax's per-save INFO lines stay out of a run's log unless --verbosity asks for them."""

import logging as std_logging

from absl import logging
from flax import nnx
import optax

from adabins_jax import checkpointing
from helpers.stand_ins import TinyDepthModel


def _orbax_records(caplog, tmp_path) -> list[std_logging.LogRecord]:
  model = TinyDepthModel(rngs=nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param)
  manager = checkpointing.create_manager(tmp_path)
  with caplog.at_level(std_logging.DEBUG):
    for step in (1, 2):
      checkpointing.save(manager, step, model, optimizer, force=True)
    checkpointing.finish(manager)
    checkpointing.restore_model(tmp_path, TinyDepthModel(rngs=nnx.Rngs(1)), 'latest')
  manager.close()
  return [r for r in caplog.records if '/orbax/' in r.pathname]


def test_two_saves_and_a_restore_log_no_orbax_info_or_read_only_warning(caplog, tmp_path):
  previous = logging.get_verbosity()
  logging.set_verbosity(logging.INFO)
  try:
    records = _orbax_records(caplog, tmp_path)
  finally:
    logging.set_verbosity(previous)
  assert not [r.getMessage() for r in records if r.levelno < std_logging.WARNING]
  assert not [r.getMessage() for r in records if 'read only' in r.getMessage()]
  # Our own lines still show.
  assert any('Saving checkpoint at step 2' in r.getMessage() for r in caplog.records)


def test_verbosity_1_shows_orbax_again(caplog, tmp_path):
  previous = logging.get_verbosity()
  logging.set_verbosity(1)
  try:
    records = _orbax_records(caplog, tmp_path)
  finally:
    logging.set_verbosity(previous)
  assert [r for r in records if r.levelno <= std_logging.INFO]
