"""Training and evaluation batches from TFDS with tf.data, one host's share at a time.

Training order is a pure function of (seed, step): epoch `e` of this host's shard is shuffled
with a seed made from (seed, host, e), and example `g` of the global stream is augmented with
the stateless seed (seed, g). A run resumed at `start_step` therefore sees exactly the batches
an uninterrupted run sees from that step on, and skipping there reads at most one epoch of
still-encoded records: nothing is decoded or augmented before `start_step`.
"""

import math
from typing import Iterable, Iterator

import jax
import ml_collections
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from adabins_jax import augment
from adabins_jax import network_input
from adabins_jax import parallel
from adabins_jax.datasets import DATASETS
from adabins_jax.datasets import build as datasets_build
# TFDS's own nyu_depth_v2 calls its test split 'validation'.
_SPLIT_ALIASES = {'nyu_depth_v2': {'test': 'validation'}}
Batch = dict[str, np.ndarray]


def hide_gpus_from_tensorflow() -> None:
  """Keeps TensorFlow (tf.data here) off the GPUs, so that it reserves none of the memory JAX
  needs. Call before TensorFlow's first op: once it has set up its devices they are fixed, and
  this leaves them as they are."""
  try:
    tf.config.set_visible_devices([], 'GPU')
  except RuntimeError:
    pass


def _without_autotune_thread(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """Turns off tf.data's autotuning model for `dataset`; AUTOTUNE values take defaults.

  With it on, deleting a long-lived iterator waits for the autotuning thread, so a finished or
  preempted run lingers for most of a minute after its last checkpoint, eating a preempted
  job's grace period. Without the model, AUTOTUNE parallelism is min(16, cores) and prefetch
  buffers still grow on demand (throughput: benchmarks/pipeline_throughput.py).
  """
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.with_options(options)


def get_builder(data_config: ml_collections.ConfigDict) -> tfds.core.DatasetBuilder:
  """The prepared TFDS builder of `data_config.dataset` (prepared on first use).

  Preparing writes to `data.tfds_data_dir`; with several hosts, build once beforehand
  (python -m adabins_jax.datasets.build --config=<the config>) rather than from every host at
  once.
  """
  name = data_config.dataset.split('/')[0]
  if name not in DATASETS:
    raise ValueError(f'data.dataset={data_config.dataset!r}: expected one of {DATASETS} '
                     "(optionally with a '/config' suffix)")
  return datasets_build.prepare(data_config)


def _split(builder, split: str) -> str:
  return _SPLIT_ALIASES.get(builder.name, {}).get(split, split)


def image_decoder(builder):
  """Decodes stored image bytes; JPEGs as PIL (the release's reader) decodes them."""
  if builder.info.features['image'].encoding_format == 'jpeg':
    return lambda data: tf.io.decode_jpeg(data, channels=3, dct_method='INTEGER_ACCURATE')
  return lambda data: tf.io.decode_png(data, channels=3)


def read_examples(builder, split):
  """Examples of `split` in a fixed order, images still encoded."""
  return builder.as_dataset(split=split, shuffle_files=False,
                            decoders={'image': tfds.decode.SkipDecoding()})


def _decoder(builder):
  """`example -> (image float32 [0, 1] (H, W, 3), depth float32 metres (H, W, 1))`."""
  decode_image = image_decoder(builder)
  shape = builder.info.features['image'].shape

  def decode(example):
    image = tf.ensure_shape(decode_image(example['image']), shape)
    image = tf.image.convert_image_dtype(image, tf.float32)
    return image, tf.cast(example['depth'], tf.float32)[..., None]

  return decode


def _network_input(image, data_config):
  """Scales the image by `data.input_scale` and normalises it as ImageNet models expect."""
  if data_config.input_scale != 1.0:
    size = network_input.scaled_size(image.shape[:2], data_config.input_scale)
    image = tf.image.resize(image, size, method='bilinear')
  return network_input.normalize(image)


def _train_crop(image, depth, seed, data_config):
  """The training augmentation, or with `data.augment` off a fixed centre crop."""
  if data_config.augment:
    return augment.train_augment(
        image, depth, seed, crop_size=tuple(data_config.crop_size),
        rotation_deg=data_config.rotation_deg, crop_border=data_config.crop_white_border)
  if data_config.crop_white_border:
    image, depth = augment.crop_nyu_border(image, depth)
  h, w = data_config.crop_size
  top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
  if top < 0 or left < 0:
    raise ValueError(f'crop {(h, w)} is larger than the image {tuple(image.shape[:2])}')
  return image[top:top + h, left:left + w], depth[top:top + h, left:left + w]


def _processes(process_index, process_count):
  index = jax.process_index() if process_index is None else process_index
  count = jax.process_count() if process_count is None else process_count
  return index, count


def _shuffled_stream(examples, num_examples, shuffle_buffer, seed, index, count, start):
  """(position, example) pairs of this host's endless stream, from position `start` on.

  Epoch `e` is `examples` shuffled with a seed drawn from (seed, host, e), so any position's
  example is known without reading what came before its epoch; within that epoch the records
  before `start` are read but not decoded.
  """

  def epoch(e):
    # A full-range int64 from (seed, host, epoch): reshuffles every epoch, reproducibly.
    shuffle_seed = tf.random.stateless_uniform(
        [], tf.stack([tf.constant(seed, tf.int64), e * count + index]), dtype=tf.int64,
        minval=None, maxval=None)
    return examples.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=False)

  first_epoch, skip = divmod(start, num_examples)
  stream = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch)
  return tf.data.Dataset.zip(tf.data.Dataset.range(start, np.iinfo(np.int64).max),
                             stream.skip(skip))


def train_batch_shapes(data_config: ml_collections.ConfigDict,
                       global_batch_size: int) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes and dtypes of a global training batch, as ``create_train_dataset``'s batches of every
  process make it (``parallel.shard_batch``), without reading the dataset."""
  h, w = (int(s) for s in data_config.crop_size)
  image_hw = network_input.scaled_size((h, w), data_config.input_scale)
  return {'image': jax.ShapeDtypeStruct((global_batch_size, *image_hw, 3), np.float32),
          'depth': jax.ShapeDtypeStruct((global_batch_size, h, w, 1), np.float32)}


def create_train_dataset(data_config: ml_collections.ConfigDict, global_batch_size: int,
                         seed: int, start_step: int = 0, *, process_index: int | None = None,
                         process_count: int | None = None,
                         builder: tfds.core.DatasetBuilder | None = None) -> Iterator[Batch]:
  """Endless augmented training batches of this process.

  Args:
    data_config: `config.data`.
    global_batch_size: examples per step over all processes.
    seed: drives shuffling and augmentation.
    start_step: first step to produce; batches equal those an uninterrupted run gives then.
    process_index: this process (default `jax.process_index()`); for tests.
    process_count: number of processes (default `jax.process_count()`); for tests.
    builder: a prepared builder to read instead of the one `data_config` names.

  Returns:
    An iterator of dicts: `image` float32 (B, h', w', 3) ImageNet-normalised at
    `crop_size * input_scale`, `depth` float32 (B, h, w, 1) metres at `crop_size`, with
    B = global_batch_size / process_count.
  """
  index, count = _processes(process_index, process_count)
  batch_size = parallel.check_batch_size(global_batch_size, what='batch_size', process_count=count)
  if builder is None:
    builder = get_builder(data_config)
  # Equal shards, so every host has the same number of batches per epoch.
  split = tfds.split_for_jax_process(_split(builder, data_config.train_split),
                                     process_index=index, process_count=count,
                                     drop_remainder=True)
  num_examples = builder.info.splits[split].num_examples
  if num_examples == 0:
    raise ValueError(f'{builder.name}: the training shard of process {index} is empty')
  stream = _shuffled_stream(read_examples(builder, split), num_examples,
                            data_config.shuffle_buffer, seed, index, count,
                            start=start_step * batch_size)
  decode = _decoder(builder)

  def prepare(position, example):
    # Position in the global stream: step * global batch + this host's offset in the step.
    step, offset = position // batch_size, position % batch_size
    global_index = step * global_batch_size + index * batch_size + offset
    image, depth = decode(example)
    image, depth = _train_crop(image, depth, tf.stack([tf.constant(seed, tf.int64),
                                                       global_index]), data_config)
    return {'image': _network_input(image, data_config), 'depth': depth}

  stream = stream.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  stream = stream.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(_without_autotune_thread(stream)))


def create_eval_dataset(data_config: ml_collections.ConfigDict, global_batch_size: int, *,
                        process_index: int | None = None, process_count: int | None = None,
                        builder: tfds.core.DatasetBuilder | None = None,
                        with_focal: bool = False) -> Iterable[Batch]:
  """Every evaluation example exactly once, in full size, without augmentation.

  All processes yield the same number of batches (as a jitted step over a global batch
  needs); the last ones are padded with zero examples whose `example_mask` is False.

  Args:
    data_config: `config.data`.
    global_batch_size: examples per step over all processes.
    process_index: this process (default `jax.process_index()`); for tests.
    process_count: number of processes (default `jax.process_count()`); for tests.
    builder: a prepared builder to read instead of the one `data_config` names.
    with_focal: also yield `focal` float32 (B,), each frame's focal length in its pixels
      (0 for padding), for the camera transform (eval.camera_transform).

  Returns:
    A re-iterable of dicts: `image` float32 (B, H', W', 3) ImageNet-normalised at
    `input_scale` times the full size, `depth` float32 (B, H, W, 1) metres at full size,
    `example_mask` bool (B,), and for datasets stored cropped `source_frame` int32 (B, 4).
  """
  index, count = _processes(process_index, process_count)
  batch_size = parallel.check_batch_size(global_batch_size, what='batch_size', process_count=count)
  if builder is None:
    builder = get_builder(data_config)
  name = _split(builder, data_config.eval_split)
  splits = [tfds.split_for_jax_process(name, process_index=i, process_count=count)
            for i in range(count)]
  num_batches = math.ceil(max(builder.info.splits[s].num_examples for s in splits)
                          / batch_size)
  decode = _decoder(builder)
  # Frames stored cropped (kitti_eigen) say where they lie in the original frame, where the
  # evaluation places its crop (metrics.source_frame_crop_masks).
  has_source_frame = 'source_frame' in builder.info.features
  if with_focal and 'focal' not in builder.info.features:
    raise ValueError(f'{builder.name} stores no per-frame focal length; eval.camera_transform '
                     'needs one (the project\'s builders store it as "focal").')

  def prepare(example):
    image, depth = decode(example)
    prepared = {'image': _network_input(image, data_config), 'depth': depth,
                'example_mask': tf.constant(True)}
    if has_source_frame:
      prepared['source_frame'] = tf.cast(example['source_frame'], tf.int32)
    if with_focal:
      prepared['focal'] = tf.cast(example['focal'], tf.float32)
    return prepared

  examples = read_examples(builder, splits[index]).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
  padding = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype),
                                  examples.element_spec)
  examples = examples.concatenate(tf.data.Dataset.from_tensors(padding).repeat())
  examples = examples.take(num_batches * batch_size).batch(batch_size)
  return tfds.as_numpy(_without_autotune_thread(examples.prefetch(tf.data.AUTOTUNE)))
