"""EfficientNet-B0 encoder + AdaBins decoder (bottleneck 1280) + 256 bins: the seed's B0 row.

27,164,188 parameters (27.2 M; about 326 MB as a training checkpoint, the seed's size).
Seed result on NYU Depth V2: d1 0.836, d2 0.974, d3 0.995::

  python -m adabins_jax.main --config=configs/effnet_b0_256.py --workdir=runs/effnet_b0_256
"""

from adabins_jax.configs import default


def get_config():
  """B0 encoder; the decoder's widths follow its 1280-channel head."""
  config = default.get_config()
  config.model.name = 'effnet_b0'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  return config
