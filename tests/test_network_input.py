"""network_input.py: photos go to the network at the scale and resampling the model learned."""

import numpy as np
import pytest
import tensorflow as tf

from adabins_jax import configs
from adabins_jax.datasets import kitti
from adabins_jax import models
from adabins_jax import network_input
from adabins_jax.datasets import nyu
from adabins_jax.datasets import synthetic_rooms

_NYU_CONFIGS = ('effnet_b5_256', 'effnet_b0_256', 'unet128', 'unet128_dws', 'unet256')


def _config(name, **model_fields):
  config = configs.load(name)
  config.model.update(model_fields)
  return config


def test_frame_size_is_the_frame_of_each_configs_dataset():
  rooms = {c.name: (c.height, c.width) for c in synthetic_rooms.SyntheticRooms.BUILDER_CONFIGS}
  for name in configs.names() + ['default']:
    config = configs.load(name)
    dataset, _, builder_config = config.data.dataset.partition('/')
    if dataset == synthetic_rooms.SyntheticRooms.name:
      expected = rooms[builder_config or synthetic_rooms.SyntheticRooms.DEFAULT_CONFIG_NAME]
    elif dataset == 'kitti_eigen':
      expected = kitti.KB_CROP_HW
    else:
      expected = nyu.FRAME_HW
    assert network_input.frame_size(config) == expected, name


def test_frame_size_is_the_configs_and_a_bad_one_is_named():
  config = configs.load('demo')
  assert network_input.frame_size(config) == (120, 160)
  config.data.frame_size = (120, 0)
  with pytest.raises(ValueError, match=r'data.frame_size=\(120, 0\)'):
    network_input.frame_size(config)


def test_photos_shaped_like_the_frames_get_the_trained_input():
  demo = configs.load('demo')
  # 120x160 frames at input_scale 0.4.
  assert network_input.trained_input_size(demo) == (48, 64)
  assert network_input.network_size((120, 160), demo) == (48, 64)
  assert network_input.network_size((3024, 4032), demo) == (48, 64)
  for name in _NYU_CONFIGS:
    config = configs.load(name)
    assert network_input.network_size((480, 640), config) == (480, 640), name
    assert network_input.network_size((3024, 4032), config) == (480, 640), name
    # 16:9: sqrt(307200 * 9 / 16) = 415.7 -> 416; sqrt(307200 * 16 / 9) = 739 -> 736.
    assert network_input.network_size((1080, 1920), config) == (416, 736), name
  assert network_input.network_size((480, 640), configs.load('unet128_dws_75')) == (360, 480)


def test_other_aspects_are_rounded_to_the_models_multiple_and_fit_the_bins_head():
  for name in configs.names():
    config = configs.load(name)
    multiple = network_input.size_multiple(config.model)
    trained = network_input.trained_input_size(config)
    for hw in [(1080, 1920), (1920, 1080), (100, 2000), (5000, 50)]:
      h, w = network_input.network_size(hw, config)
      assert h % multiple == 0 and w % multiple == 0, (name, hw, h, w)
      p = config.model.patch_size
      assert config.model.n_queries < (h // 2 // p) * (w // 2 // p) <= config.model.pos_table_size
      if hw == (1080, 1920):  # About the trained area.
        assert 0.8 < h * w / (trained[0] * trained[1]) < 1.25, (name, h, w)
  with pytest.raises(ValueError, match='pass --size'):
    network_input.network_size((480, 640), _config('effnet_b5_256', pos_table_size=10))


@pytest.mark.parametrize('name, multiple', [
    ('demo', 8), ('smoke', 8), ('unet128_dws_75', 48), ('effnet_b0_256', 32)])
def test_size_multiple_covers_the_encoders_stride_and_the_patches(name, multiple):
  config = configs.load(name)
  model = models.build_abstract_model(config.model)
  assert network_input.size_multiple(config.model) == multiple
  # min_input_size is the encoder's total stride; the decoder map is half the input.
  assert multiple % model.min_input_size == 0
  assert multiple % (2 * config.model.patch_size) == 0


@pytest.mark.parametrize('shape, hw', [
    ((120, 160), (60, 80)), ((480, 640), (360, 480)), ((50, 70), (64, 80)), ((97, 131), (40, 33))])
def test_resize_as_pipeline_is_tensorflows_bilinear(shape, hw):
  rgb = np.random.default_rng(0).random((*shape, 3)).astype(np.float32)
  expected = tf.image.resize(rgb, hw, method='bilinear').numpy()
  np.testing.assert_allclose(network_input.resize_as_pipeline(rgb, hw), expected, atol=1e-6)


def test_network_image_goes_through_the_frame_scale():
  rng = np.random.default_rng(1)
  frame = rng.random((120, 160, 3)).astype(np.float32)
  # A frame-sized image: only the pipeline's resize, as evaluation feeds it.
  np.testing.assert_array_equal(network_input.network_image(frame, (60, 80), 0.5),
                                network_input.resize_as_pipeline(frame, (60, 80)))
  photo = rng.random((300, 400, 3)).astype(np.float32)
  image = network_input.network_image(photo, (60, 80), 0.5)
  assert image.shape == (60, 80, 3) and image.dtype == np.float32
  np.testing.assert_allclose(image.mean(axis=(0, 1)), photo.mean(axis=(0, 1)), atol=1e-3)
