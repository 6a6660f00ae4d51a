"""U-Net (widths 24-48-96-192-384) + 128 adaptive bins: the seed's "U-Net, 128" row.

10,327,064 parameters (10.3 M, about 124 MB with Adam state; seed: 130 MB).
Seed result on NYU Depth V2: d1 0.728, d2 0.936, d3 0.983::

  python -m adabins_jax.main --config=configs/unet128.py --workdir=runs/unet128
"""

from adabins_jax.configs import default


def get_config():
  """U-Net with standard convolutions and 128 bins."""
  config = default.get_config()
  config.model.name = 'unet'
  config.model.n_bins = 128
  config.data.dataset = 'nyu_depth_v2_bts'
  return config
