"""A regular install from the project's wheel, used from an empty folder: train, predict, serve.

The wheel is built once, installed with ``pip install --target`` into a folder of its own, and
every command runs in a child process whose working directory is an empty folder and whose
``PYTHONPATH`` is that folder alone, so it imports the installed copy instead of the editable
one. A module, config or data file that only the repository has fails here, where the other
tests, which import the repository, cannot notice it.

The demo is trained once (the notebook's quick settings: a tiny model, 16 rendered rooms, four
steps) and its workdir serves the prediction and web app tests.
"""

import dataclasses
import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

# Before gradio_client is imported: no analytics or hub look-ups from this process either.
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
os.environ['HF_HUB_OFFLINE'] = '1'

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
from PIL import Image
import pytest

from helpers import app_server
# pylint: enable=g-import-not-at-top,wrong-import-position

# The whole module: building the wheel, training, three prediction processes and a server take
# about two minutes on a busy 2-core CPU.
pytestmark = pytest.mark.slow

_REPO = pathlib.Path(__file__).resolve().parents[1]
# What the copy of the source to build from leaves out: at the top, the environment, VCS data,
# runs and build leftovers (a stale build/lib would put deleted modules into the wheel); anywhere,
# bytecode and egg-info.
_NOT_SOURCE_AT_TOP = {'.git', '.venv', 'build', 'dist', 'runs', '.pytest_cache'}
_NOT_SOURCE = shutil.ignore_patterns('__pycache__', '*.egg-info')
# The notebook's quick mode (notebooks/colab.ipynb): the demo config with the smoke model on
# synthetic_rooms/tiny for four steps, with one evaluation and one checkpoint at step 4.
_STEPS = 4
_TINY = {
    'data.dataset': 'synthetic_rooms/tiny',
    'data.crop_size': (64, 80),
    # Half-size input: 32x40 gives the bins head 20 patches, 16 queries need 17.
    'data.input_scale': 0.5,
    'model.unet_widths': (8, 16, 32),
    'model.n_bins': 16,
    'model.n_queries': 16,
    'model.embed_dim': 16,
    'model.num_heads': 2,
    'model.num_layers': 1,
    'model.ffn_dim': 32,
    'train.batch_size': 4,
    'train.num_steps': _STEPS,
    'train.eval_every_steps': _STEPS,
    'train.checkpoint_every_steps': _STEPS,
    'train.log_every_steps': 2,
    'eval.batch_size': 8,
}
_TFDS = 'tfds'  # The rendered rooms, under the empty folder.
_WORKDIR = 'run'
_PHOTO = 'photo.png'


@dataclasses.dataclass
class Installed:
  """The installed package and an empty folder to run its commands in.

  Attributes:
    site: The folder the wheel is installed into.
    home: The working directory of every command; holds the run, the photo and the outputs.
    env: The commands' environment.
  """
  site: pathlib.Path
  home: pathlib.Path
  env: dict[str, str]

  def python(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess:
    """Runs ``python *args`` in ``home``; fails the test, with its output, on a non-zero exit."""
    return _run([sys.executable, *args], self.home, self.env, timeout_s)

  def config_flags(self) -> list[str]:
    """``--config=demo`` and the tiny overrides, with the rendered rooms kept under ``home``."""
    overrides = {**_TINY, 'data.tfds_data_dir': str(self.home / _TFDS)}
    return ['--config=demo'] + [f'--config.{k}={v}' for k, v in overrides.items()]


def _run(command: list[str], cwd: pathlib.Path, env: dict[str, str] | None,
         timeout_s: float) -> subprocess.CompletedProcess:
  """Runs ``command``; fails the test, with its output, on a non-zero exit."""
  done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=timeout_s, check=False)
  if done.returncode:
    pytest.fail(f'{" ".join(command)} exited with status {done.returncode}:\n'
                f'{done.stdout[-3000:]}\n{done.stderr[-5000:]}')
  return done


def _build_wheel(out: pathlib.Path) -> pathlib.Path:
  # Built from a copy: building in place would write build/ and the egg-info into the tree
  # other processes are editing.
  source = out / 'source'

  def ignore(folder, names):
    top = _NOT_SOURCE_AT_TOP & set(names) if pathlib.Path(folder) == _REPO else set()
    return top | _NOT_SOURCE(folder, names)

  shutil.copytree(_REPO, source, symlinks=True, ignore=ignore)
  wheels = out / 'wheels'
  _run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
        '--no-cache-dir', '--quiet', '-w', str(wheels), str(source)], out, None, 300)
  (wheel,) = wheels.glob('adabins_jax-*.whl')
  return wheel


def _environment(site: pathlib.Path, home: pathlib.Path) -> dict[str, str]:
  env = dict(os.environ)
  # Only the installed copy: no path into the repository.
  env['PYTHONPATH'] = str(site)
  env.update({
      # Nothing reaches for the network: no gradio analytics or hub look-ups; CPU only.
      'GRADIO_ANALYTICS_ENABLED': 'False',
      'HF_HUB_OFFLINE': '1',
      'JAX_PLATFORMS': 'cpu',
      'GRADIO_TEMP_DIR': str(home.parent / 'gradio'),
      # The compilation cache the commands share, outside the user's own.
      'XDG_CACHE_HOME': str(home.parent / 'cache'),
  })
  return env


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> pathlib.Path:
  return _build_wheel(tmp_path_factory.mktemp('wheel'))


@pytest.fixture(scope='module')
def installed(tmp_path_factory, wheel) -> Installed:
  """The wheel installed into its own folder; fails unless that copy is the one imported."""
  root = tmp_path_factory.mktemp('installed')
  site, home = root / 'site', root / 'home'
  home.mkdir()
  _run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-cache-dir', '--quiet',
        f'--target={site}', str(wheel)], home, None, 300)
  env = Installed(site, home, _environment(site, home))
  imported = env.python('-c', 'import adabins_jax; print(adabins_jax.__file__)', timeout_s=60)
  path = pathlib.Path(imported.stdout.strip())
  assert path.is_relative_to(site), f'imported {path}, not the installed copy under {site}'
  return env


@pytest.fixture(scope='module')
def photo(installed) -> pathlib.Path:
  """A 48x64 photo in the empty folder: a smooth gradient with noise."""
  rng = np.random.default_rng(0)
  ramp = np.linspace(0, 200, 64)[None, :, None] + np.linspace(0, 40, 48)[:, None, None]
  pixels = np.clip(ramp + rng.normal(0, 10, (48, 64, 3)), 0, 255).astype(np.uint8)
  path = installed.home / _PHOTO
  Image.fromarray(pixels).save(path)
  return path


@pytest.fixture(scope='module')
def trained(installed) -> subprocess.CompletedProcess:
  """The demo trained in ``home/run``; its finished process."""
  return installed.python('-m', 'adabins_jax.main', *installed.config_flags(),
                          f'--workdir={_WORKDIR}', timeout_s=300)


@pytest.fixture(scope='module')
def cli_depth(installed, trained, photo) -> np.ndarray:  # pylint: disable=unused-argument
  """The photo's depth from ``--mode=predict`` with the trained run, as written to its .npy."""
  installed.python('-m', 'adabins_jax.main', *installed.config_flags(), '--mode=predict',
                   f'--workdir={_WORKDIR}', f'--input={_PHOTO}', '--output=out',
                   timeout_s=240)
  return np.load(installed.home / 'out' / 'photo_depth.npy')


def test_the_wheel_holds_every_module_and_is_what_imports(installed, wheel):
  package = _REPO / 'adabins_jax'
  # Every module, and the web app's example photos (package data).
  in_repo = {p.relative_to(_REPO).as_posix()
             for p in [*package.rglob('*.py'), *package.glob('inference/examples/*.jpg')]}
  assert any(name.endswith('.jpg') for name in in_repo)
  with zipfile.ZipFile(wheel) as archive:
    in_wheel = {n for n in archive.namelist() if n.startswith('adabins_jax/')}
  assert in_repo <= in_wheel, f'not in the wheel: {sorted(in_repo - in_wheel)}'
  # The installed copy serves the shipped configs by name, from its own folder.
  done = installed.python('-c', 'from adabins_jax import configs; print(configs.resolve("demo"))',
                          timeout_s=60)
  assert pathlib.Path(done.stdout.strip()).is_relative_to(installed.site)
  done = installed.python('-c', 'from adabins_jax.inference import examples; '
                          'print(*examples.paths(), sep="\\n")', timeout_s=60)
  shipped = [pathlib.Path(p) for p in done.stdout.split()]
  assert len(shipped) == 3 and all(p.is_file() and p.is_relative_to(installed.site)
                                   for p in shipped), shipped


def test_demo_trains_checkpoints_and_evaluates(installed, trained):
  run = installed.home / _WORKDIR
  assert f'Evaluation at step {_STEPS}' in trained.stdout + trained.stderr
  assert (run / 'checkpoints' / str(_STEPS)).is_dir()
  assert (run / f'eval_predictions_{_STEPS:08d}.png').is_file()
  assert (installed.home / _TFDS / 'synthetic_rooms' / 'tiny').is_dir()
  # --mode=eval scores the best checkpoint and writes the report beside the picture.
  done = installed.python('-m', 'adabins_jax.main', *installed.config_flags(), '--mode=eval',
                          f'--workdir={_WORKDIR}', timeout_s=240)
  assert f'Evaluation of step {_STEPS} on synthetic_rooms/tiny/test' in done.stdout
  assert (run / f'eval_test_step_{_STEPS}.json').is_file()
  report = (run / 'report.md').read_text()
  assert f'eval_predictions_{_STEPS:08d}.png' in report


def test_cli_and_predictor_give_the_same_depth(installed, photo, cli_depth):
  assert cli_depth.shape == (48, 64) and cli_depth.dtype == np.float32
  assert np.isfinite(cli_depth).all() and (cli_depth > 0).all()
  for name in ('photo_depth.png', 'photo_color.png'):
    assert (installed.home / 'out' / name).is_file()
  # The config as the command line builds it: demo with the same overrides.
  script = '\n'.join([
      'import sys',
      'import numpy as np',
      'import adabins_jax',
      'from adabins_jax import configs',
      "config = configs.load('demo')",
      f'for field, value in {_TINY!r}.items():',
      "  group, name = field.split('.')",
      '  config[group][name] = value',
      f'config.data.tfds_data_dir = {str(installed.home / _TFDS)!r}',
      f'predictor = adabins_jax.Predictor(config, workdir={_WORKDIR!r}, batch_size=1)',
      f'np.save("predictor_depth.npy", predictor({photo.name!r}))',
  ])
  installed.python('-c', script, timeout_s=240)
  np.testing.assert_array_equal(np.load(installed.home / 'predictor_depth.npy'), cli_depth)


def test_web_app_serves_the_clis_depth(installed, photo, cli_depth):
  gradio_client = pytest.importorskip('gradio_client')
  port = app_server.free_port()
  command = [sys.executable, '-m', 'adabins_jax.inference.app', *installed.config_flags(),
             f'--workdir={_WORKDIR}', '--host=127.0.0.1', f'--port={port}']
  with app_server.serving(command, port, installed.home.parent / 'app.log', timeout_s=120,
                          cwd=installed.home, env=installed.env) as (url, _):
    client = gradio_client.Client(url, verbose=False)
    _, files, _ = client.predict(gradio_client.handle_file(str(photo)), api_name='/predict')
    npy = next(f for f in files if f.endswith('_depth.npy'))
    np.testing.assert_array_equal(np.load(npy), cli_depth)
