"""Renders the web app's example photos: ``python -m adabins_jax.inference.examples [--out=DIR]``.

Without ``--out`` it rewrites the files shipped in this package's folder.
"""

from absl import app
from absl import flags

from adabins_jax.inference import examples

_OUT = flags.DEFINE_string('out', None, 'Folder to write the examples into; default the '
                           "package's own, replacing the shipped files.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}', exitcode=2)
  for path in examples.write(_OUT.value or examples.FOLDER):
    print(path)


if __name__ == '__main__':
  app.run(main)
