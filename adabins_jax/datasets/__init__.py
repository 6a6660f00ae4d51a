"""Datasets: TFDS builders the project ships, and each dataset's frame, crop and camera facts.

  kitti_eigen       KITTI's Eigen split in the BTS/AdaBins layout, KB-cropped
  nyu_depth_v2_h5   NYU Depth V2 from a local copy of the fast-depth .h5 files
  nyu_depth_v2_bts  NYU Depth V2 in the BTS/AdaBins layout (sync train, official test)
  synthetic_rooms   procedurally rendered rooms with exact depth (no download)
  rgbd_folder       a user's own RGB-D frames from a folder (built from config.data.rgbd)
  sun_rgbd          SUN RGB-D's official test split (four sensors), for zero-shot scoring

``nyu`` and ``kitti`` hold those datasets' facts (frame size, crops, camera, depth range) and
import no TensorFlow; ``build`` imports the builders, which registers them with TFDS, and
prepares a dataset on first use.
"""

# Every ``data.dataset`` the input pipeline reads (optionally '/<builder config>'): TFDS's own
# NYU Depth V2 and the builders above.
DATASETS = ('synthetic_rooms', 'nyu_depth_v2', 'nyu_depth_v2_h5', 'nyu_depth_v2_bts',
            'rgbd_folder', 'kitti_eigen', 'sun_rgbd')
# The builder made from a config's data.rgbd fields rather than a builder config name.
RGBD_FOLDER = 'rgbd_folder'
