"""ImageNet's per-channel statistics, with which every network input is normalised.

The encoders were pretrained on ImageNet images normalised this way, and the release kept it for
depth: the input pipeline, prediction and export normalise with ``normalize``; pictures of
network inputs undo it with ``denormalize``. Both take numpy arrays, jax arrays or TensorFlow
tensors of RGB in [0, 1] (channels last).
"""

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalize(rgb):
  """RGB in [0, 1] -> the network's input: zero mean and unit variance per ImageNet channel."""
  return (rgb - MEAN) / STD


def denormalize(image):
  """A network input -> RGB in [0, 1] (unclipped); the inverse of ``normalize``."""
  return image * STD + MEAN
