"""U-Net (widths 24-48-96-192-384) + 256 adaptive bins: the seed's "U-Net, 256" row.

10,376,472 parameters (10.4 M, about 125 MB with Adam state; seed: 131 MB).
Seed result on NYU Depth V2: d1 0.721, d2 0.932, d3 0.984::

  python -m adabins_jax.main --config=configs/unet256.py --workdir=runs/unet256
"""

from adabins_jax.configs import default


def get_config():
  """U-Net with standard convolutions and 256 bins."""
  config = default.get_config()
  config.model.name = 'unet'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  return config
