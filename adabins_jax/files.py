"""Writing files so that a reader never sees half of one.

A file is written under a hidden temporary name in its own folder and renamed into place only
once complete; a failure (a full disk, an exception, a kill) leaves the old file, or none, and
at worst a hidden ``.tmp-*`` file, never a truncated file under the real name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
import contextlib
import os
import secrets
import shutil

from etils import epath

# The longest file name most file systems take, in bytes (ext4, XFS, APFS, NTFS in UTF-16 units).
NAME_MAX_BYTES = 255


def temporary_name(name: str, tag: str = '') -> str:
  """A hidden name beside ``name`` for writing it: ``.tmp-<random>[tag]-<name>``.

  The random part keeps concurrent writers apart. The name's stem is cut as needed (at a
  character boundary) so that the result fits ``NAME_MAX_BYTES`` whenever ``name`` itself
  does; its extension is kept, since some writers (``np.save``) go by it.
  """
  prefix = f'.tmp-{secrets.token_hex(4)}{tag}-'
  stem, extension = os.path.splitext(name)
  room = max(0, NAME_MAX_BYTES - len(prefix.encode()) - len(extension.encode()))
  stem = stem.encode()[:room].decode('utf-8', 'ignore')
  return prefix + stem + extension


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
  """Yields a temporary path to write; on success it is renamed to ``path``, else removed.

  The temporary file keeps ``path``'s extension, so writers that go by it (``np.save``) write
  the same bytes.
  """
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  temporary = os.path.join(folder, temporary_name(name))
  try:
    yield temporary
    os.replace(temporary, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(temporary)
    raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes ``data`` to ``path`` atomically (object stores such as gs:// are by themselves)."""
  if '://' in os.fspath(path):
    epath.Path(path).write_bytes(data)
    return
  with atomic_path(path) as temporary, open(temporary, 'wb') as f:
    f.write(data)


def write_all(writers: Mapping[str, Callable[[str], object]], *,
              before_rename: Callable[[], object] | None = None) -> list[str]:
  """Calls ``writers[path](temporary)`` for every path, renaming all into place once all succeed.

  All or nothing: a failure in any writer leaves none of the files (and any old ones as they
  were). ``before_rename``, if given, runs once every file is written, before any is renamed.
  Returns the paths, in order.
  """
  with contextlib.ExitStack() as stack:
    temporaries = {path: stack.enter_context(atomic_path(path)) for path in writers}
    for path, write in writers.items():
      write(temporaries[path])
    if before_rename is not None:
      before_rename()
  return list(writers)


def _remove(path: str) -> None:
  if os.path.isdir(path) and not os.path.islink(path):
    shutil.rmtree(path, ignore_errors=True)
  else:
    with contextlib.suppress(OSError):
      os.remove(path)


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[str]:
  """``atomic_path`` for a folder: yields a temporary folder's path (not yet created).

  On success whatever is at ``path`` is moved aside, the temporary folder takes its name and
  the old one is removed; on failure the temporary folder is removed and ``path`` is left as it
  was. Between the two renames, a kill leaves the old folder under a hidden ``.tmp-*-old-``
  name; never a part-written folder under ``path``.
  """
  path = os.fspath(path)
  folder, name = os.path.split(os.path.abspath(path))
  temporary = os.path.join(folder, temporary_name(name))
  old = os.path.join(folder, temporary_name(name, '-old'))
  try:
    yield temporary
    if not os.path.lexists(path):
      os.replace(temporary, path)
      return
    os.replace(path, old)
    try:
      os.replace(temporary, path)
    except BaseException:
      os.replace(old, path)
      raise
    _remove(old)
  except BaseException:
    _remove(temporary)
    raise
