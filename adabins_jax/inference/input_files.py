"""Which files a prediction reads (paths, folders, globs, lists) and their output names.

A folder is searched for images and video clips (by extension); files this project wrote into
the output folder are never taken as inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
import collections
import glob
import os
import pathlib

from PIL import Image


_GLOB_CHARS = frozenset('*?[')


def _image_extensions() -> frozenset[str]:
  return frozenset(ext.lower() for ext in Image.registered_extensions())


# Containers ffmpeg reads that hold video; an input with one of these extensions is a clip
# (inference/video.py), never tried as a picture.
VIDEO_EXTENSIONS = frozenset({
    '.mp4', '.m4v', '.mov', '.avi', '.mkv', '.webm', '.mpg', '.mpeg', '.ts', '.mts', '.m2ts',
    '.wmv', '.flv', '.3gp', '.ogv'})


def is_video(path: str | os.PathLike) -> bool:
  """Whether ``path`` names a video clip (by its extension, as folders are searched)."""
  return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


# What write_outputs (and predict_video for clips) names its files: <name> + one of these.
# Found in the output folder, such files are this project's outputs and never taken as inputs.
OUTPUT_SUFFIXES = ('_depth.npy', '_depth.png', '_color.png', '_strip.png', '.ply',
                   '_depth.npz', '_depth.mp4', '_strip.mp4', '_camera.json')


def is_output_file(path: str | os.PathLike, output_dir: str | os.PathLike | None) -> bool:
  """Whether ``path`` is in ``output_dir`` and named like one of ``write_outputs``' files."""
  if output_dir is None:
    return False
  folder = os.path.dirname(os.path.abspath(path))
  return (os.path.basename(path).endswith(OUTPUT_SUFFIXES)
          and os.path.realpath(folder) == os.path.realpath(output_dir))


def read_input_list(path: str | os.PathLike) -> list[str]:
  """The paths in a list file: one per line, taken literally; blank lines and '#...' skipped."""
  try:
    with open(path, encoding='utf-8') as f:
      lines = [line.rstrip('\n') for line in f]
  except (OSError, UnicodeDecodeError) as e:
    raise ValueError(f'{os.fspath(path)}: cannot read the input list ({e}).') from e
  return [line for line in lines if line.strip() and not line.lstrip().startswith('#')]


def _expand(spec: str, output_dir) -> tuple[list[str], str, bool]:
  """(files, reason if none, whether spec named one file) for one path, folder or glob."""
  spec = os.path.expanduser(spec)
  outputs_left_out = ' (outputs of this run not counted)' if output_dir is not None else ''
  if os.path.isdir(spec):
    extensions = _image_extensions() | VIDEO_EXTENSIONS
    found = [os.path.join(spec, n) for n in sorted(os.listdir(spec))
             if not n.startswith('.') and os.path.splitext(n)[1].lower() in extensions
             and os.path.isfile(os.path.join(spec, n))]
    found = [p for p in found if not is_output_file(p, output_dir)]
    return found, 'the folder holds no image or video file' + outputs_left_out, False
  if os.path.isfile(spec):  # An existing name is literal, even with glob characters in it.
    return [spec], '', True
  if _GLOB_CHARS & set(spec):
    found = [p for p in sorted(glob.glob(spec, recursive=True))
             if os.path.isfile(p) and not is_output_file(p, output_dir)]
    return found, 'the pattern matches no file' + outputs_left_out, False
  return [], 'no such file', True


def find_images(inputs: str | Sequence[str], *, literal: Sequence[str] = (),
                output_dir: str | os.PathLike | None = None
                ) -> tuple[list[pathlib.Path], list[tuple[str, str]]]:
  """Expands files, folders (their image and video files, not recursive) and globs into paths.

  An existing file or folder is always taken as it is named, glob characters and commas
  included. Any other string may hold several specs separated by commas.

  Args:
    inputs: one spec or several.
    literal: more paths, taken exactly as given (no comma splitting, no globbing), e.g. from
      ``read_input_list``.
    output_dir: the run's output folder: files in it named like ``write_outputs``' files are
      left out of folders and globs, and refused when named.

  Returns:
    (paths, problems): the files in the order given (folders and globs sorted, duplicates
    dropped), and (spec, reason) for each spec that names no usable file.
  """
  specs = [inputs] if isinstance(inputs, str) else list(inputs or ())
  expanded = []  # (spec, files, reason if none, whether the spec named one file)
  for spec in map(str, specs):
    parts = [spec] if os.path.exists(os.path.expanduser(spec)) else spec.split(',')
    for part in parts:
      part = part if os.path.exists(os.path.expanduser(part)) else part.strip()
      if part:
        expanded.append((part, *_expand(part, output_dir)))
  for path in literal:
    exists = os.path.isfile(os.path.expanduser(path))
    expanded.append((path, [os.path.expanduser(path)] if exists else [], 'no such file', True))
  paths, problems, seen = [], [], set()
  for spec, found, reason, named in expanded:
    if named and found and is_output_file(found[0], output_dir):
      found, reason = [], 'an output of this run (in --output, named like its depth files)'
    if not found:
      problems.append((os.path.expanduser(spec), reason))
    for p in found:
      key = os.path.realpath(p)
      if key not in seen:
        seen.add(key)
        paths.append(pathlib.Path(p))
  return paths, problems


def output_names(paths: Sequence[pathlib.Path]) -> list[str]:
  """A distinct output base name for every input path, short where nothing collides.

  1. The file's stem (``photos/kitchen.jpg`` -> ``kitchen``) when no other input has it.
  2. Else its path below the inputs' common folder, folders joined by '_' (``a/x.png`` ->
     ``a_x``), with the extension added where that is still shared (``x.png`` -> ``x_png``).
  3. A name still taken gets ``-2``, ``-3``, ... in input order.
  Names are compared ignoring case, as macOS and Windows file systems do.
  """
  def clashing(names):
    counts = collections.Counter(n.casefold() for n in names)
    return {n for n in names if counts[n.casefold()] > 1}

  absolute = [os.path.abspath(p) for p in paths]
  names = [pathlib.Path(p).stem for p in paths]
  clashes = clashing(names)
  if clashes:
    root = os.path.commonpath([os.path.dirname(a) for a in absolute])
    relative = [os.path.relpath(a, root) for a in absolute]
    below = [os.path.splitext(r)[0].replace(os.sep, '_') for r in relative]
    names = [b if n in clashes else n for n, b in zip(names, below)]
    clashes = clashing(names)
    with_ext = [r.replace(os.sep, '_').replace('.', '_') for r in relative]
    names = [w if n in clashes else n for n, w in zip(names, with_ext)]
  taken, unique = set(), []
  for name in names:
    candidate, i = name, 1
    while candidate.casefold() in taken:
      i += 1
      candidate = f'{name}-{i}'
    taken.add(candidate.casefold())
    unique.append(candidate)
  return unique
