"""The paper model: EfficientNet-B5 encoder + AdaBins decoder + 256 adaptive bins.

78,257,328 parameters (78.3 M; a training checkpoint with Adam state is about 940 MB).
Target on NYU Depth V2 (official test split, raw depth, Eigen crop): d1 0.903, d2 0.984,
d3 0.997, abs_rel 0.103, rmse 0.364, log10 0.044. Loads the released AdaBins_nyu.pt::

  python -m adabins_jax.import_torch --config=configs/effnet_b5_256.py \
      --checkpoint=AdaBins_nyu.pt --workdir=runs/effnet_b5_256
  python -m adabins_jax.main --config=configs/effnet_b5_256.py --workdir=runs/effnet_b5_256
"""

from adabins_jax.configs import default


def get_config():
  """Paper settings: B5 encoder, 256 bins, NYU in the BTS layout."""
  config = default.get_config()
  config.model.name = 'effnet_b5'
  config.model.n_bins = 256
  config.data.dataset = 'nyu_depth_v2_bts'
  return config
