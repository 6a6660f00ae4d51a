"""U-Net (widths 24-48-96-192-384) + 128 adaptive bins: the variant study's "U-Net, 128".

10,327,064 parameters (10.3 M; about 124 MB as a training checkpoint with AdamW's state). Its
published results are ``adabins_jax.configs.reference.REFERENCE['unet128']`` (docs/reference.md)::

  python -m adabins_jax.main --config=unet128 --workdir=runs/unet128
"""

from adabins_jax.configs import default


def get_config():
  """U-Net with standard convolutions and 128 bins."""
  config = default.get_config()
  config.model.name = 'unet'
  config.model.n_bins = 128
  config.data.dataset = 'nyu_depth_v2_bts'
  config.eval.reference = 'unet128'
  return config
