"""Command-line flags of ``--mode=predict`` (see predict.py).

Defined in their own light module so that main.py can declare them before parsing without
importing the prediction code, which other modes never need.
"""

from absl import flags

INPUT = flags.DEFINE_multi_string(
    'input', None, 'predict: image or video file (.mp4, .mov, .mkv, ...), folder or glob; '
    'repeat the flag or separate by commas for several. An existing path is always taken '
    'literally.')
INPUT_LIST = flags.DEFINE_string(
    'input_list', None, 'predict: a text file of image paths, one per line, taken literally '
    '(for names with commas or glob characters).')
OUTPUT = flags.DEFINE_string('output', None, 'predict: folder the depth maps are written to.')
WEIGHTS = flags.DEFINE_string(
    'weights', None, 'predict and eval: a released PyTorch AdaBins .pt to use instead of the '
    "--workdir checkpoint (config.eval.checkpoint picks which one: 'best', 'latest' or a "
    'step). eval still writes its results into --workdir.')
ALLOW_UNVERIFIED_CHECKPOINT = flags.DEFINE_boolean(
    'allow_unverified_checkpoint', False, 'predict and eval: load a --workdir checkpoint step '
    'that has no checksums.json (its files cannot be checked) instead of refusing it.')
ALLOW_PARTIAL_VIDEO = flags.DEFINE_boolean(
    'allow_partial_video', False, 'predict: keep the depth of a video clip that decodes to '
    'fewer frames than its container states (a truncated file) instead of failing it.')
BATCH_SIZE = flags.DEFINE_integer('batch_size', 1, 'predict: images per network call.')
FLIP_AVERAGE = flags.DEFINE_boolean(
    'flip_average', True, 'predict: average with the mirrored image (as evaluation does).')
SIZE = flags.DEFINE_string(
    'size', None, 'predict: network input size HxW (e.g. 480x640); default: about the 480x640 '
    'NYU frame x data.input_scale, at each image\'s aspect, rounded to multiples of 32.')
PER_IMAGE_RANGE = flags.DEFINE_boolean(
    'per_image_range', False, 'predict: colour each depth map over its own min..max instead '
    "of the model's [min_depth_m, max_depth_m] (which keeps sequences from flickering).")
CMAP = flags.DEFINE_enum('cmap', 'turbo', ['turbo', 'viridis', 'magma'],
                         'predict: colour map of the *_color.png pictures and *_depth.mp4 videos.')
STRIP = flags.DEFINE_boolean(
    'strip', False, 'predict: also write <name>_strip.png, input | coloured depth; for a video '
    'clip <name>_strip.mp4, each frame | its coloured depth.')
PLY = flags.DEFINE_boolean('ply', False, 'predict: also write a <name>.ply point cloud.')
PLY_STRIDE = flags.DEFINE_integer(
    'ply_stride', 1, 'predict: keep every n-th pixel along each axis in the point cloud.')
FRAMES = flags.DEFINE_boolean(
    'frames', False, 'predict: for video clips, write one <name>_frames/NNNNNN.npy per frame '
    '(float16 metres) instead of the single <name>_depth.npz.')
FX = flags.DEFINE_float('fx', None, 'predict: focal length in pixels of the input images at '
                        'their own size: depth is rescaled from the training camera to it, and '
                        'point clouds use it (default: --fov_deg, else each photo\'s EXIF, else '
                        "the training dataset's camera (NYU's Kinect or KITTI's), scaled).")
FOV_DEG = flags.DEFINE_float('fov_deg', None, 'predict: horizontal field of view in degrees of '
                             'the input images, instead of --fx.')
FY = flags.DEFINE_float('fy', None, 'predict: vertical focal length in pixels (default: fx).')
CX = flags.DEFINE_float('cx', None, 'predict: principal point column in pixels (default: the '
                        "image centre when --fx is given, else the training dataset's camera, "
                        'scaled).')
RUNTIME = flags.DEFINE_enum(
    'runtime', 'jax', ['jax', 'onnxruntime', 'litert'],
    'predict: what runs the network: jax, or litert or onnxruntime (the export extra), which '
    'export the weights once per input size to --runtime_cache and run the file.')
RUNTIME_CACHE = flags.DEFINE_string(
    'runtime_cache', None, 'predict: folder of the files --runtime exports (default: '
    '$XDG_CACHE_HOME/adabins_jax/exported, or ~/.cache/adabins_jax/exported).')
CY = flags.DEFINE_float('cy', None, 'predict: principal point row in pixels (see --cx).')


def given() -> list[str]:
  """The flags of this module that appear on the command line."""
  return [f'--{flag.name}' for flag in flags.FLAGS.get_flags_for_module(__name__)
          if flag.present]


def values() -> dict:
  """The flags above as keyword arguments of ``predict.PredictOptions``."""
  return dict(
      inputs=INPUT.value, input_list=INPUT_LIST.value, output=OUTPUT.value, weights=WEIGHTS.value,
      batch_size=BATCH_SIZE.value, flip_average=FLIP_AVERAGE.value, size=SIZE.value,
      per_image_range=PER_IMAGE_RANGE.value, cmap=CMAP.value, strip=STRIP.value,
      ply=PLY.value, ply_stride=PLY_STRIDE.value, frames=FRAMES.value,
      intrinsics=(FX.value, FY.value, CX.value, CY.value), fov_deg=FOV_DEG.value,
      runtime=RUNTIME.value, runtime_cache=RUNTIME_CACHE.value,
      allow_unverified_checkpoint=ALLOW_UNVERIFIED_CHECKPOINT.value,
      allow_partial_video=ALLOW_PARTIAL_VIDEO.value)
