"""docs/data.md's "Your own RGB-D frames", followed through main: train, then --mode=eval."""

import pathlib
import re
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest

from adabins_jax import main
from adabins_jax import parallel
from adabins_jax.configs import smoke

_REPO = pathlib.Path(__file__).resolve().parents[2]
# An odd size instead of the how-to's 240x320, and the smoke model, to run in seconds.
_SHRINK = ['--config.data.frame_size=(36, 52)', '--config.data.crop_size=(32, 48)',
           '--config.train.num_steps=2', '--config.train.batch_size=2',
           '--config.eval.batch_size=2', '--config.model.patch_size=4',
           *(f'--config.model.{k}={v}' for k, v in smoke.get_config().model.items()
             if k in ('unet_widths', 'n_bins', 'n_queries', 'embed_dim', 'num_heads',
                      'num_layers', 'ffn_dim'))]


def _how_to():
  """The section's config file and its two commands."""
  text = (_REPO / 'docs' / 'data.md').read_text()
  section = text[text.index('## Your own RGB-D frames'):]
  section = section[:section.index('\n## ', 1)]
  config = re.search(r'```python\n(.*?)```', section, re.S).group(1)
  commands = re.findall(r'^python -m adabins_jax\.main (.*?)\s+#', section, re.M)
  return config, [c.split() for c in commands]


def _write_frames(root, hw=(36, 52)):
  """8 train and 4 test frames in the how-to's layout: PNG images, millimetre depth PNGs."""
  rng = np.random.default_rng(0)
  for split, n in (('train', 8), ('test', 4)):
    for i in range(n):
      for kind in ('rgb', 'depth'):
        (root / split / kind).mkdir(parents=True, exist_ok=True)
      Image.fromarray(rng.integers(0, 256, (*hw, 3), dtype=np.uint8)).save(
          root / split / 'rgb' / f'{i:04d}.png')
      depth_mm = rng.integers(500, 25000, hw, dtype=np.uint16)  # Some beyond the 20 m range.
      depth_mm[:3] = 0
      Image.fromarray(depth_mm).save(root / split / 'depth' / f'{i:04d}.png')


# Compiles the smoke model's train and eval steps through main: about 110 CPU-seconds, a minute or
# more on an idle 2-core CPU.
@pytest.mark.slow
def test_the_how_to_trains_and_reports_on_a_folder_of_frames(tmp_path, monkeypatch):
  config_text, commands = _how_to()
  assert [c[-1] for c in commands] == ['--workdir=runs/mine', '--mode=eval']
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'my_rgbd.py').write_text(config_text)
  _write_frames(tmp_path / 'my_frames')
  monkeypatch.setattr(parallel, 'maybe_initialize_distributed', lambda: None)
  for command in commands:
    argv = ['main', *command, f'--config.data.tfds_data_dir={tmp_path}/tfds', *_SHRINK]
    monkeypatch.setattr(sys, 'argv', argv)  # config_flags reads overrides from sys.argv.
    with flagsaver.flagsaver():
      main.main(flags.FLAGS(argv))
  run = tmp_path / 'runs' / 'mine'
  report = (run / 'report.md').read_text()
  assert '| this run |' in report and 'eval.reference is unset' in report
  assert list(run.glob('eval_predictions_00000002.png'))
  assert (run / 'eval_test_step_2.json').exists()
  assert len(list((tmp_path / 'tfds' / 'rgbd_folder').glob('my_frames_*/1.0.0'))) == 1
