"""`kitti_eigen`: KITTI's Eigen split as the BTS and AdaBins releases train and test on it.

RGB from the raw KITTI sequences, depth from KITTI's official depth-completion ground truth
(`data_depth_annotated`), both selected by the release's file lists. Every frame is stored
KB-cropped (the release's `do_kb_crop`, 352x1216 of frames of four sizes), with where the crop
lies in the original frame, so evaluation places Garg's crop in the original frame's
coordinates (adabins_jax/datasets/kitti.py, docs/reference.md). Build with::

  python -m adabins_jax.datasets.build kitti_eigen --manual_dir=/data/kitti
"""

from __future__ import annotations

from absl import logging
from etils import epath
import numpy as np
import tensorflow_datasets as tfds

from adabins_jax.datasets import kitti
from adabins_jax.datasets import depth_builder

TRAIN_LIST = 'kitti_eigen_train_files_with_gt.txt'
TEST_LIST = 'kitti_eigen_test_files_with_gt.txt'
RAW_FOLDER = 'raw'
DEPTH_FOLDER = 'data_depth_annotated'
# The annotated depth archive unpacks into train/ and val/; the release's instructions move both
# up into DEPTH_FOLDER, and either layout is read.
_DEPTH_SUBFOLDERS = ('', 'train', 'val')
# The list files' placeholder for a frame without ground truth.
_NO_DEPTH = 'None'


class KittiEigen(depth_builder.DepthBuilder):
  """KITTI, Eigen split, BTS/AdaBins layout, KB-cropped, from a local folder."""

  name = 'kitti_eigen'
  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'First release.'}
  MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
  Get the data as the AdaBins README describes (it follows BTS):

  1. The raw KITTI sequences of the Eigen split (the "raw data" downloads of
     https://www.cvlibs.net/datasets/kitti/raw_data.php, synced+rectified, e.g. with BTS's
     utils/kitti_archives_to_download.txt), unzipped into <manual_dir>/{RAW_FOLDER}/.
  2. KITTI's depth-completion ground truth, data_depth_annotated.zip
     (https://www.cvlibs.net/datasets/kitti/eval_depth.php?benchmark=depth_completion),
     unzipped into <manual_dir>/{DEPTH_FOLDER}/ (its train/ and val/ folders may stay or be
     merged, as BTS's instructions do).
  3. The release's two file lists `{TRAIN_LIST}` and `{TEST_LIST}` (AdaBins or BTS repository,
     train_test_inputs/), copied into <manual_dir>.

  Expected layout:

    <manual_dir>/{TRAIN_LIST}
    <manual_dir>/{TEST_LIST}
    <manual_dir>/{RAW_FOLDER}/<date>/<drive>/image_02/data/<frame>.png
    <manual_dir>/{DEPTH_FOLDER}/[train/|val/]<drive>/proj_depth/groundtruth/image_02/<frame>.png

  Each list line is "<rgb path> <depth path> <focal>", the rgb path relative to
  `{RAW_FOLDER}/`, the depth path relative to `{DEPTH_FOLDER}/`, e.g.
  "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png
  2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png 721.5377". As in
  the release, lines whose depth is "None" or whose depth PNG is absent are skipped (the build
  logs how many). Depth PNGs are uint16, metres x {kitti.DEPTH_PNG_SCALE:g}, 0 = no depth.
  """

  def _info(self) -> tfds.core.DatasetInfo:
    source_frame = tfds.features.Tensor(
        shape=(4,), dtype=np.int32,
        doc='(top, left, height, width): the stored crop\'s corner in the original frame and '
            'the original frame\'s size, in pixels.')
    return tfds.core.DatasetInfo(
        builder=self,
        description='KITTI Eigen split (BTS/AdaBins lists), KB-cropped to 352x1216, with the '
                    'depth-completion ground truth in metres.',
        features=depth_builder.depth_features(*kitti.KB_CROP_HW, image_format='png',
                                              extra={'source_frame': source_frame}),
        supervised_keys=('image', 'depth'),
        homepage='https://github.com/shariqfarooq123/AdaBins',
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    root = dl_manager.manual_dir
    for folder in (RAW_FOLDER, DEPTH_FOLDER):
      if not (root / folder).is_dir():
        raise FileNotFoundError(f'{root / folder}: missing; see the kitti_eigen MANUAL_'
                                'DOWNLOAD_INSTRUCTIONS for the expected layout')
    return {'train': self._generate_examples(root, TRAIN_LIST),
            'test': self._generate_examples(root, TEST_LIST)}

  def _generate_examples(self, root, list_name):
    entries = depth_builder.read_file_list(root / list_name)
    skipped = 0
    for line_number, (rgb, depth, focal) in enumerate(entries, start=1):
      depth_path = find_depth(root / DEPTH_FOLDER, depth)
      if depth_path is None:
        skipped += 1
        continue
      image, depth_m, source_frame = read_frame(root / RAW_FOLDER / rgb, depth_path)
      yield f'{line_number:06d}:{rgb}', {
          'image': image,
          'depth': depth_m,
          'focal': focal,
          'name': rgb,
          'source_frame': np.asarray(source_frame, np.int32),
      }
    logging.info('%s: skipped %d of %d lines whose ground truth is None or missing.',
                 root / list_name, skipped, len(entries))


def find_depth(depth_root: epath.Path, depth: str) -> epath.Path | None:
  """The ground-truth PNG a list line names, or None where it is 'None' or not on disk."""
  if depth == _NO_DEPTH:
    return None
  for subfolder in _DEPTH_SUBFOLDERS:
    path = depth_root / subfolder / depth if subfolder else depth_root / depth
    if path.exists():
      return path
  return None


def read_frame(image_path, depth_path) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
  """One KB-cropped example: the RGB image, its depth in metres and where the crop lies.

  Args:
    image_path: an 8-bit RGB PNG of a raw KITTI sequence.
    depth_path: its uint16 depth-completion ground truth, of the same size.

  Returns:
    (image uint8 (352, 1216, 3), depth float16 (352, 1216) metres with 0 = no depth,
    (top, left, height, width) of the crop in the original frame).

  Raises:
    FileNotFoundError, ValueError: naming the file, for a missing or undecodable file, a wrong
      format, a frame smaller than the crop, or depth of another size than its image.
  """
  image, _ = depth_builder.open_image(image_path)
  if image.format != 'PNG' or image.mode != 'RGB':
    raise ValueError(f'{image_path}: expected an 8-bit RGB PNG, got {image.format} {image.mode}')
  depth_image, _ = depth_builder.open_image(depth_path)
  depth = np.asarray(depth_image)
  if depth_image.format != 'PNG' or depth.dtype not in (np.uint16, np.int32):
    raise ValueError(f'{depth_path}: expected a 16-bit PNG of metres x '
                     f'{kitti.DEPTH_PNG_SCALE:g}, got {depth_image.format} {depth_image.mode}')
  height, width = image.height, image.width
  if depth.shape != (height, width):
    raise ValueError(f'{depth_path}: depth of {depth.shape[0]}x{depth.shape[1]} pixels for an '
                     f'image of {height}x{width} ({image_path})')
  try:
    top, left = kitti.kb_crop_offset(height, width)
  except ValueError as e:
    raise ValueError(f'{image_path}: {e}') from None
  rows, cols = slice(top, top + kitti.KB_CROP_HW[0]), slice(left, left + kitti.KB_CROP_HW[1])
  rgb = np.asarray(image)[rows, cols]
  depth_m = depth_builder.depth_to_float16(depth[rows, cols] / kitti.DEPTH_PNG_SCALE,
                                           kitti.KB_CROP_HW, depth_path)
  return rgb, depth_m, (top, left, height, width)
