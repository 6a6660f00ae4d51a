"""Default configuration: the paper's recipe around a U-Net 128-bin model.

Every other config imports this one and overrides a few fields. Not meant to be run on its own;
see the per-model configs, e.g.::

  python -m adabins_jax.main --config=configs/unet128.py --workdir=runs/unet128
"""

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  """Returns the default configuration."""
  config = ml_collections.ConfigDict()
  # One seed drives parameter init, dropout, data order and augmentation.
  config.seed = 0

  # ---------------------------------------------------------------- data
  config.data = data = ml_collections.ConfigDict()
  # TFDS dataset, optionally with its builder config ('name/config'): 'synthetic_rooms/vga'
  # (rendered 480x640 rooms, built on first use in minutes), 'nyu_depth_v2_bts' (the paper's
  # data), 'nyu_depth_v2_h5', 'nyu_depth_v2' (TFDS's download); see docs/data.md.
  data.dataset = 'synthetic_rooms/vga'
  # TFDS data directory (None: TFDS default, ~/tensorflow_datasets).
  data.tfds_data_dir = config_dict.placeholder(str)
  # Folder holding a manually downloaded dataset (NYU layouts), read by the builders.
  data.manual_dir = config_dict.placeholder(str)
  # Splits used for training and evaluation.
  data.train_split = 'train'
  data.eval_split = 'test'
  # Cut NYU's white registration border (x 43..608, y 45..472) before augmenting; needs
  # 480x640 frames (NYU, synthetic_rooms/vga), turn off for other sizes.
  data.crop_white_border = True
  # The paper's random rotation, crop, flip and colour; off: only a centre crop to crop_size.
  data.augment = True
  # Random training crop (height, width) in pixels, before input scaling.
  data.crop_size = (416, 544)
  # The dataset's frames (height, width) in pixels, as evaluation scores them: with input_scale,
  # the scale the model learns, which prediction brings photos to (network_input.py). 480x640
  # for NYU and synthetic_rooms/vga; set it with data.dataset.
  data.frame_size = (480, 640)
  # Multiplies the network's input size (0.75 for the variant study's 75%-input model);
  # ground truth for evaluation stays at full resolution.
  data.input_scale = 1.0
  # Maximum random rotation in degrees (the paper's +-2.5).
  data.rotation_deg = 2.5
  # Shuffle buffer in examples.
  data.shuffle_buffer = 1024
  # Your own RGB-D frames, read when data.dataset = 'rgbd_folder' (docs/data.md, "Your own
  # RGB-D frames"); set data.frame_size to their size. A changed setting prepares a new copy.
  data.rgbd = rgbd = ml_collections.ConfigDict()
  # The frames' folder (relative: to the working directory). Without lists it holds
  # train/rgb/, train/depth/, test/rgb/ and test/depth/, with matching file names.
  rgbd.folder = config_dict.placeholder(str)
  # List files (relative: to rgbd.folder), both or neither: lines 'rgb_path depth_path [focal]',
  # paths relative to the list's folder or absolute.
  rgbd.train_list = config_dict.placeholder(str)
  rgbd.test_list = config_dict.placeholder(str)
  # Stored integer depth (16-bit PNG, integer TIFF / .npy) per metre: 1000 for millimetres, 256
  # for KITTI-style PNGs. Float depth (.npy, TIFF, EXR) is read as metres.
  rgbd.depth_scale = 1000.0
  # The stored value meaning "no depth" (e.g. 0 or 65535), read as invalid (None: none; NaN and
  # infinite floats always are). Depths outside model's range stay; evaluation masks them.
  # A float placeholder, so that the 0.0 default may be set to None.
  rgbd.invalid_depth = config_dict.placeholder(float)
  rgbd.invalid_depth = 0.0
  # Focal length in pixels of frames whose list line gives none (0: unknown).
  rgbd.focal_px = 0.0

  # ---------------------------------------------------------------- model
  config.model = model = ml_collections.ConfigDict()
  # Architecture, a key of adabins_jax.models.MODELS.
  model.name = 'unet'
  # Number of adaptive bins.
  model.n_bins = 128
  # Depth range of the bins in metres.
  model.min_depth_m = 1e-3
  model.max_depth_m = 10.0
  # Load a released .pt whose file name says another depth range than the one above
  # (AdaBins_kitti.pt: 80 m), e.g. to fine-tune it for this range; off, that is an error, since
  # the weights hold no range and would give scaled depth (adabins_jax/torch_weights/release.py).
  model.allow_range_mismatch = False
  # Channels of the half-resolution feature map the decoder (or the U-Net) hands the bins
  # head: the release's 128, which its weights need.
  model.feature_channels = 128
  # Bin-width normalisation: 'linear' (the release), 'softmax' or 'sigmoid'.
  model.bin_norm = 'linear'
  # 'standard' or 'dws' (depthwise-separable) convolutions in the U-Net.
  model.conv = 'standard'
  # U-Net widths, one per resolution level (full, 1/2, 1/4, ...).
  model.unet_widths = (24, 48, 96, 192, 384)
  # mViT head: patch size in pixels of the decoder map, query count, embedding width,
  # attention heads, transformer layers, feed-forward width, positional-table rows.
  model.patch_size = 16
  model.n_queries = 128
  model.embed_dim = 128
  model.num_heads = 4
  model.num_layers = 4
  model.ffn_dim = 1024
  model.pos_table_size = 500
  # Dropout in the transformer (PyTorch's default 0.1, as in the release).
  model.dropout_rate = 0.1
  # Stochastic depth in EfficientNet encoders, reaching this rate at the last block. The release
  # (geffnet defaults) trained without it.
  model.drop_path_rate = 0.0
  # Width of the AdaBins decoder's bottleneck (None: the encoder head's width, 2048 for B5).
  model.decoder_features = config_dict.placeholder(int)
  # Depthwise convolution kernel: 'auto' (shifted sums on CPU, XLA's grouped conv elsewhere),
  # 'shifted' or 'xla'. All give the same numbers; only speed differs.
  model.depthwise_impl = 'auto'
  # Dense stride-1 3x3 convolutions: 'auto' (Winograd F(4x4, 3x3) in float32 on CPU where the
  # maps are large enough to gain, XLA's convolution elsewhere), 'winograd' or 'xla'. Results
  # agree to float rounding (~1e-7 relative after the paper model); only speed differs.
  model.conv3x3_impl = 'auto'
  # Computation and parameter dtypes ('float32' or 'bfloat16' for dtype).
  model.dtype = 'float32'
  model.param_dtype = 'float32'

  # ---------------------------------------------------------------- optim
  config.optim = optim = ml_collections.ConfigDict()
  # Peak learning rate of the one-cycle schedule.
  optim.learning_rate = 3.57e-4
  # AdamW decoupled weight decay, applied to every parameter as in the release.
  optim.weight_decay = 0.1
  # Global-norm gradient clipping, applied to the whole gradient before AdamW.
  optim.grad_clip_norm = 0.1
  # One-cycle schedule (PyTorch OneCycleLR, cosine, two phases): the fraction of steps spent
  # warming up, the start lr = learning_rate / div_factor and the final lr = start lr /
  # final_div_factor (the release's 25 and 100; torch's own default final factor is 1e4).
  optim.pct_start = 0.3
  optim.div_factor = 25.0
  optim.final_div_factor = 100.0
  # Adam beta1, cycled inversely to the lr: max_beta1 -> base_beta1 at the peak -> max_beta1.
  optim.base_beta1 = 0.85
  optim.max_beta1 = 0.95
  # Adam beta2 and epsilon (added to the root of the bias-corrected second moment).
  optim.beta2 = 0.999
  optim.eps = 1e-8
  # Learning-rate multiplier of parameters under encoder/. 1.0 reproduces the published weights
  # (the release's scheduler reset its lr/10 encoder group to one lr); 0.1 gives the
  # two-group variant the release meant.
  optim.encoder_lr_multiplier = 1.0
  # Further (regex over the '/'-joined parameter path, lr multiplier) pairs; the first match
  # wins and these are tried before the encoder rule. Unmatched parameters get 1.0.
  optim.lr_multiplier_rules = ()
  # Run each lr group's AdamW on one vector of all its parameters: the same arithmetic to a
  # float32 rounding, a fifth fewer operations to trace and kernels to compile
  # (benchmarks/compile_breakdown.py --optimizer=both; docs/benchmark.md). Checkpoints of the
  # per-tensor optimizer (False) are converted on restore.
  optim.flatten_groups = True

  # ---------------------------------------------------------------- train
  config.train = train = ml_collections.ConfigDict()
  # Global batch size (split over all devices of all hosts).
  train.batch_size = 16
  # Length of training in epochs of the training split.
  train.num_epochs = 25
  # Length of training in steps; overrides num_epochs when > 0.
  train.num_steps = 0
  # Loss weights: SILog and the bin-centre chamfer term.
  train.silog_weight = 1.0
  train.chamfer_weight = 0.1
  # Write train/... scalars (means since the last write) every this many steps.
  train.log_every_steps = 100
  # Run the full evaluation protocol every this many steps (0: only after the last step).
  train.eval_every_steps = 2000
  # Save a checkpoint every this many steps (also after each evaluation, the last step and
  # on SIGTERM / SIGINT).
  train.checkpoint_every_steps = 1000
  # Checkpoints kept: the newest few, plus the best few by eval/abs_rel.
  train.keep_checkpoints = 3
  train.keep_best_checkpoints = 1
  # Devices to train on (0: every device of every process; a smaller number for tests).
  train.num_devices = 0

  # ---------------------------------------------------------------- eval
  config.eval = evaluation = ml_collections.ConfigDict()
  # Global evaluation batch size.
  evaluation.batch_size = 8
  # Crop of the evaluation protocol: 'eigen' (NYU), 'garg' (KITTI) or 'none'.
  evaluation.crop = 'eigen'
  # Average the prediction with that of the mirrored image (the release's protocol).
  evaluation.flip_average = True
  # Checkpoint that --mode=eval scores: 'best' (lowest eval/abs_rel), 'latest' or a step.
  evaluation.checkpoint = 'best'
  # Predictions shown in the image | ground truth | prediction strip of each evaluation.
  evaluation.num_images_to_show = 4
  # Depth cap in metres of the protocol (ground truth beyond it is not scored, predictions are
  # clipped to it); None: the model's max_depth_m. Zero-shot protocols cap lower than the model.
  evaluation.max_depth_m = config_dict.placeholder(float)
  # Multiply each prediction by f_frame / f_train at the network input (the canonical camera
  # transform, inference/focal.py), f_frame being the dataset's per-frame focal length: for
  # frames from cameras other than the training one.
  evaluation.camera_transform = False
  # Also score Depth Pro's scale-invariant boundary F1 (metrics.boundary_f1), an edge metric
  # computed from depth alone; off by default as it costs a little time per image.
  evaluation.boundary_metrics = False
  # The published results report.md sets this config's beside: a key of
  # adabins_jax.configs.reference.REFERENCE (None: no published numbers). See docs/reference.md.
  evaluation.reference = config_dict.placeholder(str)
  return config
