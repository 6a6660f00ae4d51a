"""Depthwise-separable U-Net + 128 adaptive bins: the seed's "U-Net, depthwise separable" row.

6,401,792 parameters (6.4 M, about 77 MB with Adam state; seed: 78 MB). Every U-Net 3x3 conv but
the first is depthwise 3x3 + pointwise 1x1; the bins head is unchanged.
Seed result on NYU Depth V2: d1 0.689, d2 0.919, d3 0.981::

  python -m adabins_jax.main --config=configs/unet128_dws.py --workdir=runs/unet128_dws
"""

from adabins_jax.configs import unet128


def get_config():
  """unet128 with depthwise-separable convolutions."""
  config = unet128.get_config()
  config.model.conv = 'dws'
  return config
