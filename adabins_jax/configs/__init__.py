"""The shipped configs, usable by name from any folder: ``--config=unet128``.

Each module here defines ``get_config()``; ``default`` holds the recipe the others override,
with a comment on every field, ``validation`` the rules every field must meet, and
``reference`` the published numbers a config names in ``eval.reference``.
The repository's top-level ``configs/`` is this folder, for reading and copying; a copied file
given by path (``--config=my_configs/b5_small.py``) works the same as a name.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pathlib
import sys
from collections.abc import Callable

import ml_collections
from absl import app
from absl import flags

_FOLDER = pathlib.Path(__file__).resolve().parent
# Modules here that are not configs to train: the defaults every config overrides, their rules,
# and the published numbers configs are compared with.
_NOT_CONFIGS = ('__init__', 'default', 'reference', 'validation')


def names() -> list[str]:
  """The shipped configs' names, e.g. ['demo', 'effnet_b0_256', ...]."""
  return sorted(p.stem for p in _FOLDER.glob('*.py') if p.stem not in _NOT_CONFIGS)


def resolve(spec: str) -> str:
  """The file of a config given by path or by name ('unet128' or 'unet128.py').

  A path that exists wins over a shipped config of the same name. An optional ':<arg>'
  suffix (ml_collections' config argument) is kept.

  Raises:
    FileNotFoundError: naming the shipped configs, if ``spec`` is neither.
  """
  path, colon, argument = spec.partition(':')
  if os.path.isfile(os.path.expanduser(path)):
    return spec
  name = path[:-3] if path.endswith('.py') else path
  if os.sep not in name and name in names() + ['default']:
    return str(_FOLDER / f'{name}.py') + colon + argument
  raise FileNotFoundError(f'No config file {path!r} and no shipped config of that name; '
                          f'shipped: {", ".join(names())}.')


def load(spec: str) -> ml_collections.ConfigDict:
  """``get_config()`` of a config given by path or by name."""
  path = resolve(spec).partition(':')[0]
  name = os.path.splitext(os.path.basename(path))[0]
  if pathlib.Path(path).resolve().parent == _FOLDER:
    module = importlib.import_module(f'{__name__}.{name}')
  else:
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
  return module.get_config()


def resolve_argv(argv: list[str]) -> list[str]:
  """``argv`` with a ``--config`` given by name (``--config=unet128``) turned into its file.

  ml_collections' config flag reads a file, and its ``--config.*`` overrides from
  ``sys.argv``, so commands resolve the name there before parsing flags.
  """
  out = list(argv)
  for i, arg in enumerate(argv):
    if arg.startswith('--config='):
      out[i] = '--config=' + resolve(arg[len('--config='):])
    elif arg == '--config' and i + 1 < len(argv):
      out[i + 1] = resolve(argv[i + 1])
  return out


_HELP_FLAGS = ('--help', '-h', '-?', '--helpshort', '--helpfull', '--helpxml')


def asks_for_help(argv: list[str]) -> bool:
  """Whether the command line asks for the usage text (which needs no heavy imports)."""
  return any(arg in _HELP_FLAGS for arg in argv[1:])


def may_set_jax_flags(argv: list[str]) -> bool:
  """Whether the command line may set one of JAX's own flags (--jax_platforms, ...): names one,
  or reads flags from a --flagfile. Only then need they be defined before parsing, which
  imports JAX; unset, they keep the values JAX takes from the environment either way."""
  for arg in argv[1:]:
    if arg == '--':
      break
    name = arg.lstrip('-') if arg.startswith('-') else ''
    if name.startswith(('jax_', 'nojax_', 'flagfile')):
      return True
  return False


class _QuietProbe(logging.Filter):
  """Drops JAX's INFO line that no TPU was found, which every CPU or GPU run would print."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not (record.levelno < logging.WARNING
                and record.getMessage().startswith("Unable to initialize backend 'tpu'"))


def _help_names_command_flags(command_module: str) -> None:
  """Makes ``--help`` show the usage and key flags of ``command_module``.

  absl's ``--help`` prints ``__main__``'s docstring and key flags, which are the command
  module's own under ``python -m``, but the console script's (none) under the installed
  command, whose module only imports and calls ``run``.
  """
  if command_module == '__main__':
    return
  main_module, command = sys.modules['__main__'], sys.modules[command_module]
  if not main_module.__doc__:
    main_module.__doc__ = command.__doc__
  for flag in flags.FLAGS.get_key_flags_for_module(command):
    # absl looks the main module's key flags up under the program's name.
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)


def run_command(main: Callable[[list[str]], None], *, jax_flags: bool = False) -> None:
  """Runs an absl ``main`` whose ``--config`` may name a shipped config.

  A config that is neither a file nor a shipped name is a usage error (exit status 2); a
  request for help prints the usage and the flags of ``main``'s module and exits 0.

  Commands keep JAX, TensorFlow and the like out of their module's imports, importing them in
  ``main``, so that help and errors in the command line come at once.

  Args:
    main: The command's ``main(argv)``, called with the flags parsed.
    jax_flags: Also accept JAX's own flags (--jax_platforms, ...), when the command line may
      set one (``may_set_jax_flags``); a request for help lists none of them.
  """
  try:
    sys.argv = resolve_argv(sys.argv)
  except FileNotFoundError as e:
    print(f'--config: {e}', file=sys.stderr)
    sys.exit(2)
  if jax_flags and may_set_jax_flags(sys.argv) and not asks_for_help(sys.argv):
    import jax  # pylint: disable=g-import-not-at-top
    jax.config.config_with_absl()
  _help_names_command_flags(main.__module__)
  logging.getLogger('jax._src.xla_bridge').addFilter(_QuietProbe())
  try:
    app.run(main)
  except SystemExit as e:
    # absl ends a help request with status 1, as if it were an error.
    if asks_for_help(sys.argv) and e.code == 1:
      sys.exit(0)
    raise
