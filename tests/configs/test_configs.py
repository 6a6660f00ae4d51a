"""The shipped configs: found by name or path from any folder; a copy works like the original."""

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from adabins_jax import configs

_REPO = pathlib.Path(__file__).resolve().parents[2]


def test_names_are_the_shipped_configs():
  assert {'demo', 'smoke', 'unet128', 'unet128_dws', 'unet128_dws_75', 'unet256',
          'effnet_b0_256', 'effnet_b5_256', 'kitti_effnet_b5_256',
          'sun_rgbd_effnet_b5_256'} == set(configs.names())


def test_resolve_by_name_or_path(tmp_path):
  packaged = pathlib.Path(configs.resolve('unet128'))
  assert packaged.name == 'unet128.py' and packaged.parent == pathlib.Path(configs.__file__).parent
  assert configs.resolve('unet128.py') == str(packaged)
  copy = tmp_path / 'unet128.py'
  shutil.copy(packaged, copy)
  assert configs.resolve(str(copy)) == str(copy)  # A file that exists wins over a name.
  assert configs.resolve_argv(['main', '--config=demo', '--config.seed=3']) == [
      'main', f'--config={configs.resolve("demo")}', '--config.seed=3']
  with pytest.raises(FileNotFoundError, match='shipped: demo, '):
    configs.resolve('unet512')


def test_a_copied_config_loads_from_outside_the_repository(tmp_path):
  copy = tmp_path / 'mine.py'
  copy.write_text((pathlib.Path(configs.resolve('unet128_dws'))).read_text()
                  + '\n\n_get = get_config\n\ndef get_config():\n  c = _get()\n'
                  '  c.train.batch_size = 4\n  return c\n')
  config = configs.load(str(copy))
  assert config.model.conv == 'dws' and config.train.batch_size == 4


@pytest.mark.slow  # Subprocess end-to-end: main in a child process (about 25 s on 2 busy cores).
def test_main_takes_a_config_name_from_any_folder(tmp_path):
  # An invalid override: main stops after reading the config, before any work.
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  result = subprocess.run(
      [sys.executable, '-m', 'adabins_jax.main', '--config=smoke', f'--workdir={tmp_path}/run',
       '--config.train.log_every_steps=0'], cwd=tmp_path, env=env, capture_output=True,
      text=True, timeout=120)
  assert result.returncode == 2, result.stderr[-2000:]
  assert 'train.log_every_steps=0' in result.stderr
  unknown = subprocess.run([sys.executable, '-m', 'adabins_jax.main', '--config=unet512'],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
  assert unknown.returncode == 2 and 'shipped: demo' in unknown.stderr
