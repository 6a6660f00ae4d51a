"""EfficientNet-B0 encoder + AdaBins decoder (bottleneck 1280) + 256 bins, from the variant study.

27,164,188 parameters (27.2 M; about 326 MB as a training checkpoint with AdamW's state). Its
published results are ``adabins_jax.configs.reference.REFERENCE['effnet_b0_256']`` (docs/reference.md)::

  python -m adabins_jax.main --config=effnet_b0_256 --workdir=runs/effnet_b0_256
"""

from adabins_jax.configs import default


def get_config():
  """B0 encoder; the decoder's widths follow its 1280-channel head."""
  config = default.get_config()
  config.model.name = 'effnet_b0'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  config.eval.reference = 'effnet_b0_256'
  return config
