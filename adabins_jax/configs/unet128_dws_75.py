"""Depthwise-separable U-Net, 128 bins, 75% input scale: the variant study's smallest model.

4,566,784 parameters (4.6 M; about 55 MB as a training checkpoint with AdamW's state). The
network sees 312x408 training crops (and 360x480 test images); ground truth stays at full
resolution. At that size 16-px patches of the 156x204 decoder map give only 108 tokens, fewer
than the 129 the head needs, so the patch is 12 px (221 tokens), which also matches the size the
variant study gives for this model. Its published results are
``adabins_jax.configs.reference.REFERENCE['unet128_dws_75']`` (docs/reference.md), far below
unet128_dws's: the study's run of this model collapsed, and a working pipeline should lose much
less to the smaller input::

  python -m adabins_jax.main --config=unet128_dws_75 --workdir=runs/unet128_dws_75
"""

from adabins_jax.configs import unet128_dws


def get_config():
  """unet128_dws on 75%-scale inputs."""
  config = unet128_dws.get_config()
  config.data.input_scale = 0.75
  config.model.patch_size = 12
  config.eval.reference = 'unet128_dws_75'
  return config
