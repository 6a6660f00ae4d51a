"""The paper model: EfficientNet-B5 encoder + AdaBins decoder + 256 adaptive bins.

78,257,328 parameters (78.3 M; about 940 MB as a training checkpoint with AdamW's state). Its
published results on NYU Depth V2 are ``adabins_jax.configs.reference.REFERENCE['effnet_b5_256']``
(docs/reference.md). Loads the released AdaBins_nyu.pt::

  python -m adabins_jax.torch_weights --config=effnet_b5_256 \\
      --weights=AdaBins_nyu.pt --workdir=runs/effnet_b5_256
  python -m adabins_jax.main --config=effnet_b5_256 --workdir=runs/effnet_b5_256
"""

from adabins_jax.configs import default


def get_config():
  """Paper settings: B5 encoder, 256 bins, NYU in the BTS layout."""
  config = default.get_config()
  config.model.name = 'effnet_b5'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  config.eval.reference = 'effnet_b5_256'
  return config
