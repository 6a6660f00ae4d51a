"""NYU Depth V2's frame: its size, the crops the recipe and the protocol cut from it, its camera.

Facts of the dataset and of the AdaBins release's use of it, kept in one place: the training
augmentation, the evaluation protocol, the dataset builders, prediction and the benchmark read
them from here. Pixel coordinates are of the full frame, (rows, cols) unless said otherwise.
"""

# Kinect v1 colour frames, (height, width) in pixels.
FRAME_HW = (480, 640)

# The release's random training crop, (height, width), cut after the white border.
TRAIN_CROP_HW = (416, 544)

# Registration leaves a white border: keep x 43..608, y 45..472. (left, top, right, bottom), as
# PIL's crop box; the training recipe cuts it before augmenting.
BORDER_BOX = (43, 45, 608, 472)

# Eigen et al.'s evaluation crop: [start, stop) rows and columns of the frame.
EIGEN_CROP_ROWS, EIGEN_CROP_COLS = (45, 471), (41, 601)

# The Kinect colour camera's pinhole intrinsics (the release's), (fx, fy, cx, cy) in pixels of
# a FRAME_HW frame.
INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)
# The focal length every line of the BTS / AdaBins file lists gives: INTRINSICS' fx.
FOCAL_PX = INTRINSICS[0]

# The depth range (metres) the release's NYU models predict and are evaluated in.
MIN_DEPTH_M = 1e-3
MAX_DEPTH_M = 10.0
