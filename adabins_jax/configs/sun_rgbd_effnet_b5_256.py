"""The paper model trained on NYU, scored zero-shot on SUN RGB-D's official test split.

  python -m adabins_jax.datasets.build sun_rgbd --manual_dir=/data/sunrgbd
  python -m adabins_jax.main --mode=eval --config=sun_rgbd_effnet_b5_256 \\
      --weights=AdaBins_nyu.pt --workdir=runs/sun_rgbd --config.data.manual_dir=/data/sunrgbd

No fine-tuning: the NYU model (0.001-10 m bins) sees SUN RGB-D's frames, cropped to 3:4 and
resized to 480x640 (datasets/sun_rgbd.py), and is scored as SUN RGB-D's zero-shot evaluations
score it: ground truth up to 8 m, the Eigen crop, flip averaging (the protocol of the public
ZoeDepth evaluation code, isl-org/ZoeDepth, whose first author wrote AdaBins; the AdaBins paper
names the split but not its cap or crop, docs/reference.md). report.md sets the run beside the
paper's SUN RGB-D row (``reference.REFERENCE['sun_rgbd_effnet_b5_256']``).
``--config.eval.camera_transform=True`` rescales each frame's depth from NYU's Kinect to its own
sensor's focal length.
"""

from adabins_jax.configs import effnet_b5_256


def get_config():
  """effnet_b5_256 evaluated on sun_rgbd, depth capped at 8 m."""
  config = effnet_b5_256.get_config()
  config.data.dataset = 'sun_rgbd'
  # Ground truth beyond 8 m is not scored and predictions are clipped to it.
  config.eval.max_depth_m = 8.0
  config.eval.reference = 'sun_rgbd_effnet_b5_256'
  return config
