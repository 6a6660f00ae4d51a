"""The paper model on KITTI's Eigen split: EfficientNet-B5 + AdaBins, 256 bins, up to 80 m.

The release's KITTI recipe (args_train_kitti_eigen.txt and args_test_kitti_eigen.txt of
shariqfarooq123/AdaBins): batch 16, 25 epochs, lr 3.57e-4, weight decay 0.1, the one-cycle
schedule of configs/default.py, depth 0.001 to 80 m, KB-cropped 352x1216 frames, random
352x704 crops after a rotation of up to 1 degree; evaluation with Garg's crop. It should reach
the paper's KITTI row, ``adabins_jax.configs.reference.REFERENCE['kitti_effnet_b5_256']``
(docs/reference.md). Needs the kitti_eigen dataset (docs/data.md)::

  python -m adabins_jax.datasets.build kitti_eigen --manual_dir=/data/kitti
  python -m adabins_jax.main --config=kitti_effnet_b5_256 --workdir=runs/kitti_effnet_b5_256 \\
      --config.data.manual_dir=/data/kitti
"""

from adabins_jax.datasets import kitti
from adabins_jax.configs import default


def get_config():
  """Paper model, KITTI Eigen split, the release's KITTI arguments."""
  config = default.get_config()
  # ---------------------------------------------------------------- data
  # KITTI's Eigen split, stored KB-cropped (the release's do_kb_crop) to 352x1216.
  config.data.dataset = 'kitti_eigen'
  config.data.frame_size = kitti.KB_CROP_HW
  # NYU's white border does not exist in KITTI frames.
  config.data.crop_white_border = False
  # The release's input_height x input_width: random 352x704 crops of the 352x1216 frames.
  config.data.crop_size = kitti.TRAIN_CROP_HW
  # The release's --degree 1.0 (with --do_random_rotate).
  config.data.rotation_deg = 1.0

  # ---------------------------------------------------------------- model
  config.model.name = 'effnet_b5'
  config.model.n_bins = 256
  # The release's --min_depth 0.001 --max_depth 80, in training and evaluation.
  config.model.min_depth_m = kitti.MIN_DEPTH_M
  config.model.max_depth_m = kitti.MAX_DEPTH_M

  # ---------------------------------------------------------------- eval
  # The release's --garg_crop, placed in each frame's original (uncropped) coordinates.
  config.eval.crop = 'garg'
  config.eval.reference = 'kitti_effnet_b5_256'
  return config
