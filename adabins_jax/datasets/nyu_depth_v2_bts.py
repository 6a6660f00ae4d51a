"""`nyu_depth_v2_bts`: NYU Depth V2 as the BTS and AdaBins releases train and test on it.

Training uses the 24k "sync" frames (raw Kinect frames registered to the colour camera), testing
the 654 frames of the official split, both selected by the release's file lists. JPEG frames
are stored as they are (no re-encoding). Build with::

  python -m adabins_jax.datasets.build nyu_depth_v2_bts --manual_dir=/data/nyu
"""


import numpy as np
import tensorflow_datasets as tfds

from adabins_jax.datasets import nyu
from adabins_jax.datasets import depth_builder

TRAIN_LIST = 'nyudepthv2_train_files_with_gt.txt'
TEST_LIST = 'nyudepthv2_test_files_with_gt.txt'
# The sync_depth PNGs store millimetres.
_DEPTH_SCALE = 1000.0


class NyuDepthV2Bts(depth_builder.DepthBuilder):
  """NYU Depth V2 in the BTS/AdaBins layout, from a local folder."""

  name = 'nyu_depth_v2_bts'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Get the data as the AdaBins README describes (it follows BTS): the training frames `sync.zip`
  and the official test split (`official_splits/test`, made with BTS's
  utils/extract_official_train_test_set_from_mat.py), plus the release's two file lists
  `{TRAIN_LIST}` and `{TEST_LIST}` (BTS repository, train_test_inputs/). Expected layout:

    <manual_dir>/{TRAIN_LIST}
    <manual_dir>/{TEST_LIST}
    <manual_dir>/sync/<scene>/rgb_XXXXX.jpg, sync_depth_XXXXX.png
    <manual_dir>/official_splits/test/<class>/rgb_XXXXX.jpg, sync_depth_XXXXX.png

  Each list line is "<rgb path> <depth path> <focal>", the training paths relative to `sync/`
  (e.g. "/kitchen_0028b/rgb_00045.jpg /kitchen_0028b/sync_depth_00045.png 518.8579"), the test
  paths relative to `official_splits/test/`. Depth PNGs are uint16 millimetres (0 = invalid).
  """

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
        builder=self,
        description='NYU Depth V2, BTS/AdaBins train (sync) and official test split.',
        features=depth_builder.depth_features(*nyu.FRAME_HW, image_format='jpeg'),
        supervised_keys=('image', 'depth'),
        homepage='https://github.com/shariqfarooq123/AdaBins',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = dl_manager.manual_dir
    return {
        'train': self._generate_examples(root / TRAIN_LIST, _folder(root / 'sync')),
        'test': self._generate_examples(root / TEST_LIST,
                                        _folder(root / 'official_splits' / 'test')),
    }

  def _generate_examples(self, list_path, data_root):
    entries = depth_builder.read_file_list(list_path)
    for line_number, (rgb, depth, focal) in enumerate(entries, start=1):
      image_path, depth_path = data_root / rgb, data_root / depth
      yield f'{line_number:06d}:{rgb}', {
          'image': read_jpeg(image_path),
          'depth': read_depth_png(depth_path),
          'focal': focal,
          'name': rgb,
      }


def _folder(path):
  if not path.is_dir():
    raise FileNotFoundError(f'{path}: missing; see the nyu_depth_v2_bts MANUAL_DOWNLOAD_'
                            'INSTRUCTIONS for the expected layout')
  return path


def read_jpeg(path) -> bytes:
  """Checks that `path` decodes to a 480x640 RGB JPEG and returns its bytes unchanged."""
  image, data = depth_builder.open_image(path)
  if image.format != 'JPEG' or image.mode != 'RGB':
    raise ValueError(f'{path}: expected an RGB JPEG, got {image.format} {image.mode}')
  if (image.height, image.width) != nyu.FRAME_HW:
    height, width = nyu.FRAME_HW
    raise ValueError(f'{path}: expected an image of {height}x{width} pixels, '
                     f'got {image.height}x{image.width}')
  return data


def read_depth_png(path) -> np.ndarray:
  """Reads a uint16 millimetre depth PNG as float16 metres, checking its size."""
  image, _ = depth_builder.open_image(path)
  depth = np.asarray(image)
  if image.format != 'PNG' or depth.dtype not in (np.uint16, np.int32):
    raise ValueError(f'{path}: expected a 16-bit PNG of millimetres, got {image.format} '
                     f'{image.mode}')
  return depth_builder.depth_to_float16(depth / _DEPTH_SCALE, nyu.FRAME_HW, path)
