"""The errors a run reports to its user in one line, and the exit status each one gives.

``adabins_jax.main`` prints their message without a traceback: the message names the file,
step or field and what to do.
"""

from __future__ import annotations

import importlib.util
import signal


class MissingTensorFlowError(ImportError):
  """TensorFlow, which training, evaluation, dataset builds and export read data with, is absent."""


def require_tensorflow(task: str) -> None:
  """Raises ``MissingTensorFlowError`` naming ``task`` and the install that provides TensorFlow.

  Any TensorFlow distribution will do (``tensorflow`` as on Colab, ``tensorflow-cpu``, ...); the
  package depends on none, since pip cannot accept one or the other (pyproject.toml).
  """
  if importlib.util.find_spec('tensorflow') is None:
    raise MissingTensorFlowError(
        f'{task} needs TensorFlow, which is not installed. Install its CPU build with the '
        'package: pip install "adabins-jax[tensorflow-cpu]" (in a checkout: pip install -e '
        '".[tensorflow-cpu]"), or any tensorflow. Prediction runs without it.')


class CheckpointError(RuntimeError):
  """A checkpoint could not be saved or restored; the message says which step and file."""


class ConfigMismatchError(CheckpointError):
  """A checkpoint was saved by another model config; the message names both."""


class WorkdirBusyError(RuntimeError):
  """Another live run holds the workdir (see ``workdir_lock``)."""


class DivergedError(FloatingPointError):
  """Training produced a non-finite loss, gradient or weights; nothing of that step is saved."""


class NonFinitePredictionError(ValueError):
  """The model predicted NaN or infinite depth, which no metric may score."""


class Interrupted(Exception):
  """Training stopped on a signal after saving; running the same command again resumes.

  Attributes:
    signum: The signal (SIGTERM for a multi-process preemption).
    step: The step saved.
  """

  def __init__(self, signum: int, step: int):
    super().__init__(f'Stopped by {signal.Signals(signum).name} after saving step {step}; run '
                     'the same command again to resume.')
    self.signum, self.step = signum, step

  @property
  def exit_status(self) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + self.signum
