"""The embedded demo: a small U-Net 128-bin AdaBins trained on rendered rooms, on a CPU.

  python -m adabins_jax.main --config=demo --workdir=runs/demo

Needs no download: the first run renders `synthetic_rooms/demo` (2000 train / 200 test rooms
at 120x160 with exact depth, once) into the TFDS data directory, then
trains and evaluates with the full protocol (flip averaging, d1 ... silog on whole frames).
The network sees the frames at 0.4 scale (48x64); ground truth and scoring stay at 120x160.
701,904 parameters, 4000 steps of batch 8; no published numbers to compare with. What it
reaches and how long it takes, per machine: docs/benchmark.md; how its settings were chosen:
docs/demo.md.
"""

from adabins_jax.configs import default


def get_config():
  """Small U-Net, 128 bins, 0.4-scale inputs, on synthetic_rooms/demo."""
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
  # The network sees 48x64 images: accuracy here follows the images seen, and a smaller input
  # lets more of them through in the same minutes (60x80 reached d1 0.83 in 3000 steps,
  # 48x64 0.85 in 4000 in less time); depth is scored at 120x160.
  config.data.input_scale = 0.4

  # ---------------------------------------------------------------- model
  config.model.name = 'unet'
  config.model.n_bins = 128
  # Four levels over a 48x64 input leave a 6x8 bottleneck.
  config.model.unet_widths = (16, 32, 64, 128)
  # A 64-channel map for the head (the release's 128 costs 6% more per step here).
  config.model.feature_channels = 64
  # The 24x32 decoder map in 4x4 patches gives 48 tokens: 32 queries + the bins token fit
  # (2x2 patches give 4 times as many but cost more time per step for no accuracy).
  config.model.patch_size = 4
  config.model.n_queries = 32
  # A narrow, shallow transformer: its 3x3 conv over the feature map and its attention are
  # most of the head's cost on a CPU.
  config.model.embed_dim = 32
  config.model.num_heads = 4
  config.model.num_layers = 2
  config.model.ffn_dim = 128

  # ---------------------------------------------------------------- optim
  # Peak of the one-cycle schedule: 5e-4 and 1e-3 end equal in this short run, 2e-3 worse.
  config.optim.learning_rate = 5e-4

  # ---------------------------------------------------------------- train
  config.train.batch_size = 8
  config.train.num_steps = 4000
  # A line of train/... every 100 steps, the metrics table every 1000.
  config.train.log_every_steps = 100
  config.train.eval_every_steps = 1000
  config.train.checkpoint_every_steps = 1000

  # ---------------------------------------------------------------- eval
  # 200 test frames in 10 batches.
  config.eval.batch_size = 20
  # The Eigen crop is defined on 480x640 NYU frames only; score the whole rendered frame.
  config.eval.crop = 'none'
  return config
