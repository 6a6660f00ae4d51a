"""U-Net (widths 24-48-96-192-384) + 256 adaptive bins: the variant study's "U-Net, 256".

10,376,472 parameters (10.4 M; about 125 MB as a training checkpoint with AdamW's state). Its
published results are ``adabins_jax.configs.reference.REFERENCE['unet256']`` (docs/reference.md)::

  python -m adabins_jax.main --config=unet256 --workdir=runs/unet256
"""

from adabins_jax.configs import default


def get_config():
  """U-Net with standard convolutions and 256 bins."""
  config = default.get_config()
  config.model.name = 'unet'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  config.eval.reference = 'unet256'
  return config
