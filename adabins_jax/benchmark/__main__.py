"""Speed and size of each model on this machine, beside the published ones::

  python -m adabins_jax.benchmark                    # the six configs with published numbers
  python -m adabins_jax.benchmark --configs=unet128_dws,effnet_b5_256 --batch_sizes=1 \\
      --repeats=3 --skip_train --output=benchmark.json
  python -m adabins_jax.benchmark --configs=demo --runtimes=jax,onnxruntime,litert

Per config: parameters, MB of the parameters and of a training checkpoint, inference and
training images/s, compile seconds and FLOPs per image; --runtimes adds the model exported to
each runtime beyond JAX. ``measure`` says how each number is taken.
"""

import json
import sys

from absl import app
from absl import flags

from adabins_jax import configs
from adabins_jax import files
from adabins_jax import host_memory
from adabins_jax import network_input
from adabins_jax.configs import reference
from adabins_jax.datasets import nyu

# The configs benchmarked by default: those with published speed and size.
REFERENCE_CONFIGS = tuple(name for name, row in reference.REFERENCE.items()
                          if row.fps is not None)


def _define_flags() -> None:
  """The command line's flags; only when run as a program, since predict_flags also has
  --output."""
  flags.DEFINE_list('configs', list(REFERENCE_CONFIGS),
                    'Config names under configs/ or paths to config files.')
  flags.DEFINE_string('output', None, 'Write the results as JSON to this file.')
  flags.DEFINE_list('batch_sizes', ['1', '8'], 'Inference batch sizes.')
  flags.DEFINE_integer('repeats', 5, 'Timed runs per measurement (median kept).')
  flags.DEFINE_boolean('skip_train', False, 'Leave out the training step.')
  flags.DEFINE_integer('train_batch_size', None,
                       "Training batch (default: the config's on accelerators, 2 on a CPU).")
  # measure.EVAL_HW and TRAIN_HW: NYU's test frame and training crop.
  flags.DEFINE_string('eval_size', 'x'.join(map(str, nyu.FRAME_HW)),
                      'Inference HxW before data.input_scale.')
  flags.DEFINE_list('runtimes', ['jax'],
                    'Runtimes to time: jax, and onnxruntime and litert, which run the model '
                    "exported at batch 1 (they need the 'export' extra).")
  flags.DEFINE_string('train_size', 'x'.join(map(str, nyu.TRAIN_CROP_HW)),
                      'Training crop HxW before data.input_scale.')


def _hw(text: str, flag: str) -> tuple[int, int]:
  try:
    return network_input.parse_size(text, f'--{flag}')
  except ValueError as e:
    raise app.UsageError(str(e)) from None


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  f = flags.FLAGS
  batch_sizes = [int(b) for b in f.batch_sizes]
  eval_hw, train_hw = _hw(f.eval_size, 'eval_size'), _hw(f.train_size, 'train_size')
  # pylint: disable=g-import-not-at-top  # Here, not above: --help needs none of them.
  from adabins_jax.benchmark import exported
  from adabins_jax.benchmark import measure
  # pylint: enable=g-import-not-at-top
  try:
    exported.check_runtimes(f.runtimes)
  except (ImportError, ValueError) as e:
    raise app.UsageError(str(e)) from None
  results = measure.run_configs(f.configs, batch_sizes=batch_sizes, repeats=f.repeats,
                                skip_train=f.skip_train, train_batch_size=f.train_batch_size,
                                eval_hw=eval_hw, train_hw=train_hw, runtimes=f.runtimes)
  results['environment']['command'] = ' '.join(sys.argv)
  env = results['environment']
  print(f'{env["device"]} ({env["backend"]}, {env["cpu_count"]} CPUs, load average '
        f'{", ".join(f"{x:.2f}" for x in env["load_average"])}), jax {env["jax"]}')
  print(measure.markdown_table(results['rows'], batch_sizes, f.runtimes))
  ratios = measure.study_ratios(results['rows'], batch_sizes[0])
  if ratios:
    print(ratios)
  if f.output:
    files.write_bytes(f.output, json.dumps(results, indent=2).encode())
    print(f'Wrote {f.output}.')


def run() -> None:
  """The console command: parses the flags and runs ``main``, with glibc's malloc as
  ``adabins_jax.main`` has it (``host_memory``: tuned with ``ADABINS_JAX_MALLOC=tuned``)."""
  host_memory.tune()
  _define_flags()
  configs.run_command(main)


if __name__ == '__main__':
  run()
