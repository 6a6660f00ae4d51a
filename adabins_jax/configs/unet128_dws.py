"""Depthwise-separable U-Net + 128 adaptive bins: the variant study's depthwise U-Net.

6,401,792 parameters (6.4 M; about 77 MB as a training checkpoint with AdamW's state). Every
U-Net 3x3 conv but the first is depthwise 3x3 + pointwise 1x1; the bins head is unchanged. Its
published results are ``adabins_jax.configs.reference.REFERENCE['unet128_dws']`` (docs/reference.md)::

  python -m adabins_jax.main --config=unet128_dws --workdir=runs/unet128_dws
"""

from adabins_jax.configs import unet128


def get_config():
  """unet128 with depthwise-separable convolutions."""
  config = unet128.get_config()
  config.model.conv = 'dws'
  config.eval.reference = 'unet128_dws'
  return config
