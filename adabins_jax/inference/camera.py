"""The pinhole camera behind a depth map: each training dataset's, or one the user gives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from adabins_jax import network_input
from adabins_jax.datasets import kitti
from adabins_jax.datasets import nyu


class Camera(NamedTuple):
  """A reference camera: pinhole (fx, fy, cx, cy) in pixels of a ``frame_hw`` frame.

  ``crops``: a dataset's frames are crops of this frame (KITTI's KB crop), which keep fx;
  otherwise they are this frame resized to ``data.frame_size``, which scales it.
  """
  intrinsics: tuple[float, float, float, float]
  frame_hw: tuple[int, int]
  name: str
  crops: bool = False


NYU_CAMERA = Camera(nyu.INTRINSICS, nyu.FRAME_HW, 'NYU Kinect')


KITTI_CAMERA = Camera(kitti.INTRINSICS, kitti.INTRINSICS_FRAME_HW, 'KITTI', crops=True)


# ``data.dataset`` names (before any '/config') whose frames come from KITTI's camera.
_KITTI_DATASETS = frozenset({'kitti_eigen'})


def dataset_camera(config: Any) -> Camera:
  """The camera of the frames a model's ``config.data.dataset`` holds: KITTI's or NYU's Kinect.

  Datasets other than KITTI's (NYU, synthetic rooms, your own RGB-D frames) get NYU's Kinect,
  the camera of the release's indoor models.
  """
  name = str(config.data.dataset).split('/')[0]
  return KITTI_CAMERA if name in _KITTI_DATASETS else NYU_CAMERA


def training_focal_px(config: Any) -> float:
  """The training camera's fx in pixels of the network input the model was trained on.

  ``dataset_camera``'s fx at ``data.frame_size`` (kept by a crop, scaled by a resize), times
  ``data.input_scale`` as the input pipeline resizes frames (``trained_input_size``). Training
  crops and flips keep it: a crop cuts pixels without resizing them.
  """
  camera = dataset_camera(config)
  frame_w = network_input.frame_size(config)[1]
  fx_frame = camera.intrinsics[0] * (1.0 if camera.crops else frame_w / camera.frame_hw[1])
  return fx_frame * network_input.trained_input_size(config)[1] / frame_w


def with_photo_focal(given: Sequence[float | None],
                     photo_fx_px: float | None) -> tuple[float | None, ...]:
  """The (fx, fy, cx, cy) to use for a photo: ``given`` when it has ``fx``, else the photo's own
  focal length (from ``focal.photo_focal``), else all None (the training camera, scaled)."""
  if given[0] is None and photo_fx_px is not None:
    return (photo_fx_px, None, None, None)
  return tuple(given)


def intrinsics_for(hw: Sequence[int], given: Sequence[float | None] = (None,) * 4,
                   camera: Camera = NYU_CAMERA) -> tuple[float, ...]:
  """Pinhole (fx, fy, cx, cy) in pixels of an image of size ``hw``.

  None given: ``camera``'s intrinsics (default NYU's Kinect at 480x640) scaled from its frame to
  the image, as the training dataset's camera for a model's photos (``dataset_camera``).
  Otherwise ``fx`` is needed; ``fy`` defaults to ``fx`` and the principal point to the image
  centre.
  """
  fx, fy, cx, cy = given
  h, w = hw
  if all(v is None for v in given):
    sy, sx = h / camera.frame_hw[0], w / camera.frame_hw[1]
    cfx, cfy, ccx, ccy = camera.intrinsics
    return cfx * sx, cfy * sy, ccx * sx, ccy * sy
  if fx is None:
    raise ValueError(f'Camera intrinsics {given}: --fy/--cx/--cy need --fx as well.')
  fy = fx if fy is None else fy
  if not (fx > 0 and fy > 0):
    raise ValueError(f'Focal lengths must be positive, got fx={fx}, fy={fy}.')
  return (float(fx), float(fy), (w - 1) / 2 if cx is None else float(cx),
          (h - 1) / 2 if cy is None else float(cy))
