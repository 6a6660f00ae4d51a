"""The embedded demo: a small U-Net 128-bin AdaBins trained on rendered rooms, on a CPU.

  python -m adabins_jax.main --config=demo --workdir=runs/demo

Needs no download: the first run renders `synthetic_rooms/demo` (2000 train / 200 test rooms
at 120x160 with exact depth, about a minute on 2 cores) into the TFDS data directory, then
trains and evaluates with the full protocol (flip averaging, d1 ... silog on whole frames).
The network sees the frames at half size (60x80); ground truth and scoring stay at 120x160.
775,696 parameters, 3000 steps of batch 8; no published numbers to compare with. What it
reaches and how long it takes, per machine: docs/benchmark.md; how its settings were chosen:
docs/demo.md.
"""

from adabins_jax.configs import default


def get_config():
  """Small U-Net, 128 bins, half-size inputs, on synthetic_rooms/demo."""
  config = default.get_config()
  # ---------------------------------------------------------------- data
  # 120x160 rendered rooms: built in about a minute, where 240x320 takes five.
  config.data.dataset = 'synthetic_rooms/demo'
  # The NYU border crop needs 480x640 frames; rendered frames have no border.
  config.data.crop_white_border = False
  # Whole frames: random rotation, flip and colour still apply; nothing to crop at this size.
  config.data.crop_size = (120, 160)
  # synthetic_rooms/demo's frames: photos are predicted at their scale x input_scale.
  config.data.frame_size = (120, 160)
  # The network sees 60x80 images, about 5x faster per step on a CPU than 120x160 and more
  # accurate for the same minutes (more steps); depth is scored at 120x160.
  config.data.input_scale = 0.5

  # ---------------------------------------------------------------- model
  config.model.name = 'unet'
  config.model.n_bins = 128
  # Four levels over a 60x80 input leave an 8x10 bottleneck.
  config.model.unet_widths = (16, 32, 64, 128)
  # The 30x40 decoder map in 4x4 patches gives 70 tokens: 64 queries + the bins token fit
  # (2x2 patches give 300 tokens but cost 30% more time per step for no accuracy).
  config.model.patch_size = 4
  config.model.n_queries = 64
  # A narrow, shallow transformer: its 3x3 conv over the 128-channel map and its attention
  # are most of the head's cost on a CPU.
  config.model.embed_dim = 32
  config.model.num_heads = 4
  config.model.num_layers = 2
  config.model.ffn_dim = 128

  # ---------------------------------------------------------------- optim
  # Peak of the one-cycle schedule: 5e-4 and 1e-3 end equal in this short run, 2e-3 worse.
  config.optim.learning_rate = 5e-4

  # ---------------------------------------------------------------- train
  config.train.batch_size = 8
  config.train.num_steps = 3000
  # A line of train/... every 100 steps, the metrics table every 500.
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 500
  config.train.checkpoint_every_steps = 500

  # ---------------------------------------------------------------- eval
  # 200 test frames in 10 batches.
  config.eval.batch_size = 20
  # The Eigen crop is defined on 480x640 NYU frames only; score the whole rendered frame.
  config.eval.crop = 'none'
  return config
