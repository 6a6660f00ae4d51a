"""A tiny U-Net AdaBins for tests and a first check that everything runs (seconds on a CPU).

Not a depth model worth evaluating: 3 U-Net levels of 8-16-32 channels, a 1-layer, 16-wide bins
head with 16 queries over 4x4 patches, 16 bins, on 64x80 crops::

  python -m adabins_jax.main --config=configs/smoke.py --workdir=/tmp/smoke
"""

from adabins_jax.configs import default


def get_config():
  """Tiny everything; trains on the tiny synthetic_rooms split."""
  config = default.get_config()
  config.data.dataset = 'synthetic_rooms/tiny'
  config.data.crop_white_border = False
  config.eval.crop = 'none'
  config.data.crop_size = (64, 80)
  config.data.frame_size = (64, 80)  # synthetic_rooms/tiny
  config.model.name = 'unet'
  config.model.unet_widths = (8, 16, 32)
  config.model.n_bins = 16
  config.model.patch_size = 4
  config.model.n_queries = 16
  config.model.embed_dim = 16
  config.model.num_heads = 2
  config.model.num_layers = 1
  config.model.ffn_dim = 32
  config.train.batch_size = 2
  config.eval.batch_size = 2
  return config
