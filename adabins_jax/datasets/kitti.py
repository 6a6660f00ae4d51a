"""KITTI's frames as the AdaBins release uses them: sizes, crops, depth range, encoding, camera.

Facts of the dataset and of the release's KITTI Eigen-split recipe and protocol
(docs/reference.md), kept in one place: the dataset builder, the evaluation's crops, the
KITTI config and prediction's point clouds read them from here. Pixel coordinates are (rows,
cols) of the camera's original frame unless said otherwise.
"""

from __future__ import annotations

# The sizes (height, width) of KITTI's raw colour frames; they vary with the recording day.
FRAME_SIZES = ((375, 1242), (370, 1224), (374, 1238), (376, 1241))

# The KITTI-benchmark ("KB") crop the release cuts from every train and test frame
# (`do_kb_crop`): the bottom 352 rows and the middle 1216 columns, see ``kb_crop_offset``.
KB_CROP_HW = (352, 1216)

# The release's random training crop, (height, width), cut from a KB-cropped frame.
TRAIN_CROP_HW = (352, 704)

# Garg et al.'s evaluation crop, [start, stop) as fractions of the original frame's rows and
# columns; a bound is ``int(fraction * size)``, as in the BTS / AdaBins evaluation.
GARG_CROP_ROWS, GARG_CROP_COLS = (0.40810811, 0.99189189), (0.03594771, 0.96405229)

# The depth-completion ground truth (`data_depth_annotated`): uint16 PNGs holding metres * 256,
# 0 where no depth was measured.
DEPTH_PNG_SCALE = 256.0

# The depth range (metres) the release's KITTI model predicts and is evaluated in.
MIN_DEPTH_M = 1e-3
MAX_DEPTH_M = 80.0

# The colour camera's pinhole intrinsics, (fx, fy, cx, cy) in pixels of an INTRINSICS_FRAME_HW
# frame: P_rect_02 of the raw data's 2011_09_26 calibration (calib_cam_to_cam.txt).
INTRINSICS = (721.5377, 721.5377, 609.5593, 172.854)
INTRINSICS_FRAME_HW = (375, 1242)


def kb_crop_offset(height: int, width: int) -> tuple[int, int]:
  """(top, left) of the KB crop in a frame of ``height`` x ``width`` pixels.

  Raises:
    ValueError: naming the size, if the frame is smaller than the crop.
  """
  if height < KB_CROP_HW[0] or width < KB_CROP_HW[1]:
    raise ValueError(f'A {height}x{width} frame is smaller than the KITTI benchmark crop '
                     f'{KB_CROP_HW[0]}x{KB_CROP_HW[1]}')
  return height - KB_CROP_HW[0], (width - KB_CROP_HW[1]) // 2


def garg_crop(height: int, width: int) -> tuple[tuple[int, int], tuple[int, int]]:
  """Garg's crop of a ``height`` x ``width`` frame: ([start, stop) rows, [start, stop) cols)."""
  return ((int(GARG_CROP_ROWS[0] * height), int(GARG_CROP_ROWS[1] * height)),
          (int(GARG_CROP_COLS[0] * width), int(GARG_CROP_COLS[1] * width)))
