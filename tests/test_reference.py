"""adabins_jax.configs.reference: each config's published numbers, named by the config, as documented."""

import pathlib

import pytest

from adabins_jax.configs import validation as config_validation
from adabins_jax import configs
from adabins_jax.configs import reference

_DOC = pathlib.Path(__file__).resolve().parents[1] / 'docs' / 'reference.md'


@pytest.mark.parametrize('name', configs.names())
def test_each_config_names_its_own_row_or_none(name):
  config = configs.load(name)
  if name in reference.REFERENCE:
    assert config.eval.reference == name
    assert reference.REFERENCE[name].bins == config.model.n_bins
  else:
    assert config.eval.reference is None


def test_validation_rejects_an_unknown_row():
  config = configs.load('unet128')
  config.eval.reference = 'unet512'
  assert config_validation.problems(config) == [
      f"eval.reference='unet512': must be None or one of {tuple(reference.REFERENCE)}"]
  config.eval.reference = None
  assert not config_validation.problems(config)


def _doc_rows():
  """The variant-study table of docs/reference.md: {config: cells after the config}."""
  rows = {}
  for line in _DOC.read_text().splitlines():
    if line.startswith('| `'):
      cells = [c.strip() for c in line.strip('|').split('|')]
      rows[cells[0].strip('`')] = cells[1:]
  return rows


def test_documented_table_agrees_with_the_module():
  rows = _doc_rows()
  # The variant study's table lists the timed (NYU) models; KITTI's row is the paper's alone.
  assert list(rows) == [k for k, ref in reference.REFERENCE.items() if ref.fps is not None]
  for name, (model, bins, d1, d2, d3, fps, size_mb) in rows.items():
    ref = reference.REFERENCE[name]
    assert (model, int(bins)) == (ref.model, ref.bins)
    assert [float(d1), float(d2), float(d3)] == [ref.metrics[k] for k in ('d1', 'd2', 'd3')]
    assert (float(fps), float(size_mb)) == (ref.fps, ref.size_mb)
  assert reference.REFERENCE['effnet_b5_256'].source == reference.PAPER
  assert '| 0.903 | 0.984 | 0.997 | 0.103 | 0.364 | 0.044 |' in _DOC.read_text()
  kitti = reference.REFERENCE['kitti_effnet_b5_256']
  assert kitti.source == reference.PAPER and kitti.fps is None
  cells = ' | '.join(f'{kitti.metrics[k]:.3f}' for k in
                     ('d1', 'd2', 'd3', 'abs_rel', 'sq_rel', 'rmse', 'rmse_log'))
  assert f'| {cells} |' in _DOC.read_text()


def test_sun_rgbd_row_is_the_papers_and_documented():
  sun = reference.REFERENCE['sun_rgbd_effnet_b5_256']
  assert sun.source == reference.PAPER and sun.fps is None and sun.bins == 256
  cells = ' | '.join(f'{sun.metrics[k]:.3f}' for k in
                     ('d1', 'd2', 'd3', 'abs_rel', 'rmse', 'log10'))
  assert f'| {cells} |' in _DOC.read_text()
  # Zero-shot from NYU: the NYU model's depth range, scored against SUN RGB-D's row.
  config = configs.load('sun_rgbd_effnet_b5_256')
  assert config.data.dataset == 'sun_rgbd' and config.eval.reference == 'sun_rgbd_effnet_b5_256'
  assert config.model.max_depth_m == configs.load('effnet_b5_256').model.max_depth_m
