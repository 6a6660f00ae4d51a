"""The web demo: serves a page for depth from photos (``page``) until interrupted.

  pip install -e ".[app]"
  python -m adabins_jax.inference.app --config=demo --workdir=runs/demo
  python -m adabins_jax.inference.app --config=effnet_b5_256 --weights=AdaBins_nyu.pt --share

Then open http://127.0.0.1:7860: upload a photo, see its depth coloured over the model's range,
click the depth map for metres, download the depth as .npy, 16-bit PNG and PLY.

The page reads only files uploaded to it, photos above ``--max_pixels`` are downscaled first,
and the command keeps everything it writes in one temporary folder, removed when it stops
(Ctrl-C or SIGTERM).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from adabins_jax import compilation_cache
from adabins_jax import configs
from adabins_jax import errors

# The network sees about 0.3 megapixels whatever the photo, so more pixels only add decoding,
# resizing, colouring and files: on 2 CPU cores about 1 s at 4 megapixels, 4 s for a
# 12-megapixel phone photo, 40 s and 6.7 GB at 81.
MAX_PIXELS = 4_000_000


def check_weights(weights: str | None, workdir: str | None) -> None:
  """Raises ValueError unless exactly one source of weights is given."""
  if bool(weights) == bool(workdir):
    given = 'both' if weights else 'neither'
    raise ValueError(f'Give exactly one of --weights=<released .pt> or --workdir=<training run> '
                     f'({given} given).')


def _define_flags():
  # Defined only when run as a program: adabins_jax.main owns --config, --weights and --workdir
  # in a process that imports both.
  config_flags.DEFINE_config_file(
      'config', None, 'A config file, or the name of a shipped one (demo, unet128, ...).',
      lock_config=True)
  flags.DEFINE_string('weights', None, 'A released PyTorch AdaBins .pt.')
  flags.DEFINE_string('workdir', None, "A training run's folder; config.eval.checkpoint picks "
                      "its checkpoint ('best', 'latest' or a step).")
  flags.DEFINE_string('host', '127.0.0.1', 'Address to serve on; 0.0.0.0 for every interface.')
  flags.DEFINE_integer('port', 7860, 'Port to serve on.')
  flags.DEFINE_integer('max_pixels', MAX_PIXELS, 'Photos with more pixels are downscaled to '
                       'this many, keeping their aspect ratio.', lower_bound=1)
  flags.DEFINE_bool('share', False, "Also serve through a public gradio.live link (gradio's "
                    'tunnel; needs the internet).')
  flags.mark_flags_as_required(['config'])


def main(argv):
  """Loads the model and serves the page until interrupted."""
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}', exitcode=2)
  args = flags.FLAGS
  try:
    check_weights(args.weights, args.workdir)
  except ValueError as e:
    raise app.UsageError(str(e), exitcode=2) from None
  if args.weights and not os.path.isfile(args.weights):  # Before gradio and JAX load.
    sys.exit(f'error: --weights={args.weights}: no such file.')
  # pylint: disable=g-import-not-at-top  # Here, not above: --help needs none of them.
  from adabins_jax.inference import page
  from adabins_jax.inference import predictor as predictor_lib
  # pylint: enable=g-import-not-at-top
  # Everything the app writes (uploads, gradio's copies, downloads) in one folder, removed when
  # it stops. SIGTERM would otherwise end the process without running atexit; as Ctrl-C it
  # also closes the server first.
  root = tempfile.mkdtemp(prefix='adabins-app-')
  atexit.register(shutil.rmtree, root, ignore_errors=True)
  signal.signal(signal.SIGTERM, signal.default_int_handler)
  # Read by gradio when the page is built and launched; its own folder also keeps the uploads
  # the page accepts to this app's (uploaded_path).
  os.environ['GRADIO_TEMP_DIR'] = os.path.join(root, 'gradio')
  files_root = os.path.join(root, 'files')
  os.mkdir(files_root)
  # A restart then loads the compiled network instead of compiling it again.
  compilation_cache.enable(compilation_cache.default_directory())
  try:
    # One photo per request: batching would only pad it.
    predictor = predictor_lib.Predictor(args.config, weights=args.weights, workdir=args.workdir,
                                        batch_size=1)
  except (errors.CheckpointError, FileNotFoundError, ValueError) as e:
    # No checkpoint, no such file, or weights that do not fit the config: all say so.
    sys.exit(f'error: {e}')
  logging.info('Serving %s on %s:%d.', predictor.source, args.host, args.port)
  page.build_app(predictor, files_root, args.max_pixels).launch(
      server_name=args.host, server_port=args.port, share=args.share)


def run() -> None:
  """The console command: parses the flags and runs ``main``."""
  _define_flags()
  configs.run_command(main, jax_flags=True)


if __name__ == '__main__':
  run()
