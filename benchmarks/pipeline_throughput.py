"""Measures the training pipeline's throughput in images/s: 416x544 crops of 480x640 frames.

By default it renders a small 480x640 synthetic_rooms config ('bench', PNG-stored like the
h5 builder) into --data_dir and reads it with the paper's augmentation; a built dataset can be
named instead::

  python benchmarks/pipeline_throughput.py --data_dir=/tmp/bench
  python benchmarks/pipeline_throughput.py --dataset=nyu_depth_v2_bts --manual_dir=/data/nyu

A pipeline that keeps up needs more images/s than the training step consumes (steps/s x batch).
"""

import os
import tempfile
import time

from absl import app
from absl import flags
import tensorflow_datasets as tfds

from adabins_jax import input_pipeline
from adabins_jax.datasets import nyu
from adabins_jax.configs import default
from adabins_jax.datasets import synthetic_rooms

_DATASET = flags.DEFINE_string('dataset', None, 'Dataset to read (default: rendered rooms).')
_DATA_DIR = flags.DEFINE_string('data_dir', None, 'TFDS data directory (default: temporary).')
_MANUAL_DIR = flags.DEFINE_string('manual_dir', None, 'Manual dir of the NYU builders.')
_NUM_EXAMPLES = flags.DEFINE_integer('num_examples', 64, 'Rendered training examples.')
_BATCH_SIZE = flags.DEFINE_integer('batch_size', 16, 'Batch size.')
_NUM_BATCHES = flags.DEFINE_integer('num_batches', 40, 'Batches timed.')
_WARMUP_BATCHES = flags.DEFINE_integer('warmup_batches', 5, 'Batches read before timing.')


def measure_train_pipeline(data_config, batch_size: int, num_batches: int,
                           warmup_batches: int = 5, builder=None) -> tuple[float, float]:
  """Images per second that `create_train_dataset` delivers, and its CPU cost per image.

  Args:
    data_config: `config.data`.
    batch_size: global batch size (one process).
    num_batches: batches timed.
    warmup_batches: batches read first (tf.data tunes itself, the shuffle buffer fills).
    builder: a prepared builder to read instead of `data_config.dataset`.

  Returns:
    Images per second (wall clock), and CPU milliseconds per image (all threads of this
    process), which says what the pipeline costs on a busy or a smaller machine.
  """
  batches = input_pipeline.create_train_dataset(data_config, batch_size, seed=0,
                                                builder=builder)
  for _ in range(warmup_batches):
    next(batches)
  start, start_cpu = time.perf_counter(), time.process_time()
  for _ in range(num_batches):
    next(batches)
  num_images = num_batches * batch_size
  return (num_images / (time.perf_counter() - start),
          1000.0 * (time.process_time() - start_cpu) / num_images)


def bench_builder(data_dir: str, num_examples: int):
  """A prepared synthetic_rooms builder of `num_examples` 480x640 training frames."""
  height, width = nyu.FRAME_HW
  config = synthetic_rooms.SyntheticRoomsConfig(
      name=f'bench{num_examples}', height=height, width=width, num_train=num_examples, num_test=1,
      description='480x640 frames for pipeline benchmarks.')
  builder = tfds.builder('synthetic_rooms', config=config, data_dir=data_dir)
  builder.download_and_prepare()
  return builder


def main(argv):
  del argv
  data_config = default.get_config().data  # the paper's recipe: border crop, 416x544
  data_config.manual_dir = _MANUAL_DIR.value
  data_config.tfds_data_dir = _DATA_DIR.value
  data_config.shuffle_buffer = min(data_config.shuffle_buffer, _NUM_EXAMPLES.value)
  with tempfile.TemporaryDirectory() as tmp:
    if _DATASET.value:
      data_config.dataset = _DATASET.value
      builder = input_pipeline.get_builder(data_config)
    else:
      builder = bench_builder(_DATA_DIR.value or tmp, _NUM_EXAMPLES.value)
    images_per_s, cpu_ms = measure_train_pipeline(data_config, _BATCH_SIZE.value,
                                                  _NUM_BATCHES.value, _WARMUP_BATCHES.value,
                                                  builder=builder)
  config_name = builder.builder_config.name if builder.builder_config else ''
  print(f'{builder.name}/{config_name}: {images_per_s:.1f} images/s on {os.cpu_count()} '
        f'cores, {cpu_ms:.1f} CPU ms per image (batch {_BATCH_SIZE.value}, crop '
        f'{tuple(data_config.crop_size)}, input_scale {data_config.input_scale})')


if __name__ == '__main__':
  app.run(main)
