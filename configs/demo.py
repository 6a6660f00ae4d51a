"""The embedded demo: a small U-Net 128-bin AdaBins trained on rendered rooms, on any machine.

  python -m adabins_jax.main --config=configs/demo.py --workdir=runs/demo

Renders its own data on first use (synthetic_rooms/demo: 2000 train / 200 test rooms at 120x160,
about a minute on 2 cores), trains 2000 steps of batch 8 on 60x80 network inputs (half-scale
crops; ground truth stays at 120x160) and evaluates the held-out rooms with the full protocol
(flip averaging, whole frames: the Eigen crop is for 480x640 NYU frames only).
775,696 parameters. Measured on a shared 2-core CPU (load about 2): 648 s wall for training and
four evaluations, reaching d1 0.789, d2 0.968, d3 0.993, abs_rel 0.153, rmse 0.564 m.
"""

from configs import default


def get_config():
  """Small U-Net, 128 bins, on synthetic_rooms/demo."""
  config = default.get_config()
  config.data.dataset = 'synthetic_rooms/demo'
  # The white-border crop is for 480x640 NYU frames.
  config.data.crop_white_border = False
  config.data.crop_size = (120, 160)
  # Half-scale inputs make each step about four times cheaper on a CPU.
  config.data.input_scale = 0.5
  config.model.name = 'unet'
  config.model.n_bins = 128
  config.model.unet_widths = (16, 32, 64, 128)
  # A 30x40 decoder map gives 70 patches of 4x4, enough for 64 queries.
  config.model.patch_size = 4
  config.model.n_queries = 64
  config.model.embed_dim = 32
  config.model.num_heads = 4
  config.model.num_layers = 2
  config.model.ffn_dim = 128
  config.optim.learning_rate = 1e-3
  config.train.batch_size = 8
  config.train.num_steps = 2000
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 500
  config.train.checkpoint_every_steps = 1000
  config.eval.batch_size = 20
  config.eval.crop = 'none'
  return config
