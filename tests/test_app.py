"""The web demo: its functions, its server through gradio_client, its command and its page."""

import errno
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Before gradio is imported: no analytics or update checks (the tests run offline), and its
# upload cache in a folder of the tests' own.
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
os.environ['HF_HUB_OFFLINE'] = '1'
os.environ.setdefault('GRADIO_TEMP_DIR', tempfile.mkdtemp(prefix='adabins-test-gradio-'))

# pylint: disable=g-import-not-at-top,wrong-import-position
from flax import nnx
import numpy as np
import optax
from PIL import Image
import pytest

from tests import app_server

gr = pytest.importorskip('gradio')
gradio_client = pytest.importorskip('gradio_client')

from adabins_jax.inference import app
from adabins_jax import checkpointing
from adabins_jax import configs
from adabins_jax.inference import predictor as predictor_lib
from adabins_jax import models
# pylint: enable=g-import-not-at-top,wrong-import-position

# A small network input: these tests check the plumbing, not the depth's accuracy.
_SIZE = '64x80'
_OFFLINE_ENV = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_OFFLINE': '1', 'JAX_PLATFORMS': 'cpu'}


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A demo-config run holding one checkpoint of a random initialisation."""
  path = tmp_path_factory.mktemp('run')
  model = models.random_model(configs.load('demo').model, seed=1)
  manager = checkpointing.create_manager(path)
  checkpointing.save(manager, 1, model, nnx.Optimizer(model, optax.sgd(0.1), wrt=nnx.Param),
                     force=True)
  manager.wait_until_finished()
  manager.close()
  return str(path)


@pytest.fixture(scope='module')
def predictor(workdir):
  return predictor_lib.Predictor('demo', workdir=workdir, size=_SIZE, batch_size=1)


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
  path = tmp_path_factory.mktemp('photo') / 'room.png'
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 50, 3), np.uint8)).save(path)
  return str(path)


@pytest.fixture(scope='module')
def url(predictor):
  """The page served in this process, closed after the module's tests."""
  demo = app.build_app(predictor)
  demo.launch(server_name='127.0.0.1', server_port=app_server.free_port(), prevent_thread_lock=True,
              quiet=True)
  yield demo.local_url
  demo.close()


def _read_ply_header(path) -> tuple[int, int]:
  """(vertex count, bytes of vertex data) of a binary PLY."""
  data = pathlib.Path(path).read_bytes()
  header, body = data.split(b'end_header\n', 1)
  count = int(re.search(r'element vertex (\d+)', header.decode('ascii')).group(1))
  return count, len(body)


def test_predict_photo_gives_the_predictors_depth_and_files_that_load(tmp_path, predictor,
                                                                      photo):
  view = app.predict_photo(predictor, photo, tmp_path, 'room')
  expected = predictor.predict(photo)
  np.testing.assert_array_equal(view.depth, expected.depth)
  np.testing.assert_array_equal(view.colorized, expected.colorized)
  npy, png, ply = view.files
  assert [os.path.basename(p) for p in view.files] == ['room_depth.npy', 'room_depth.png',
                                                       'room.ply']
  np.testing.assert_array_equal(np.load(npy), expected.depth)
  millimetres = np.asarray(Image.open(png))
  assert millimetres.dtype == np.uint16 and millimetres.shape == (36, 50)
  np.testing.assert_array_equal(
      millimetres, np.round(expected.depth.astype(np.float64) * 1000).astype(np.uint16))
  # Every pixel has a positive depth; each vertex is x, y, z float32 and r, g, b uint8.
  assert _read_ply_header(ply) == (36 * 50, 36 * 50 * 15)
  assert 'Depth from' in view.summary


def test_depth_at_reads_a_pixel_from_the_map_or_its_file(tmp_path):
  depth = np.arange(12, dtype=np.float32).reshape(3, 4) + 0.5
  np.save(tmp_path / 'd.npy', depth)
  for source in (depth, tmp_path / 'd.npy'):
    assert app.depth_at(source, 3, 1) == 'Depth at pixel (x=3, y=1): **7.500 m**'
    assert 'outside the 4x3 depth map' in app.depth_at(source, 4, 0)
  assert 'expired' in app.depth_at(tmp_path / 'gone.npy', 0, 0)
  assert 'Upload a photo' in app.depth_at(None, 0, 0)


def test_small_helpers():
  assert app.ply_stride((36, 50)) == 1
  assert app.ply_stride((3000, 4000)) == 4  # 750,000 points of 12 million pixels
  assert app.upload_name({'path': '/tmp/x', 'orig_name': 'my photo (1).JPG'}) == 'my_photo_1'
  assert app.upload_name('/a/b/room.png') == 'room'
  assert app.upload_name({'path': '/tmp/x'}) == 'photo'
  with pytest.raises(ValueError, match='neither given'):
    app.check_weights(None, None)
  with pytest.raises(ValueError, match='both given'):
    app.check_weights('a.pt', 'runs/x')
  app.check_weights('a.pt', None)


def test_request_folders_expire(tmp_path):
  old = app.request_folder(tmp_path)
  os.utime(old, (time.time() - 7200, time.time() - 7200))
  new = app.request_folder(tmp_path)
  assert os.path.isdir(new) and not os.path.exists(old)


def test_server_returns_the_predictors_depth(url, predictor, photo):
  client = gradio_client.Client(url, verbose=False)
  coloured, files, summary = client.predict(gradio_client.handle_file(photo), api_name='/predict')
  npy = next(f for f in files if f.endswith('_depth.npy'))
  assert os.path.basename(npy) == 'room_depth.npy'
  expected = predictor.predict(photo)
  np.testing.assert_array_equal(np.load(npy), expected.depth)
  np.testing.assert_array_equal(np.asarray(Image.open(coloured).convert('RGB')),
                                expected.colorized)  # A PNG: lossless
  assert sorted(os.path.splitext(f)[1] for f in files) == ['.npy', '.ply', '.png']
  assert summary.startswith('Depth from')


def test_server_explains_a_file_that_is_not_an_image(url, tmp_path):
  (tmp_path / 'notes.txt').write_text('not a photo')
  client = gradio_client.Client(url, verbose=False)
  with pytest.raises(Exception, match='notes: not an image this page can read'):
    client.predict(gradio_client.handle_file(str(tmp_path / 'notes.txt')), api_name='/predict')


def _chromium() -> str:
  found = '/usr/bin/chromium' if os.path.exists('/usr/bin/chromium') else shutil.which('chromium')
  if not found:
    pytest.skip('chromium is not installed: no screenshot of the page.')
  return found


def test_page_renders_in_a_browser(url, tmp_path):
  chromium = _chromium()
  shot = tmp_path / 'page.png'
  subprocess.run(
      [chromium, '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
       '--disable-component-update', '--disable-sync', '--no-first-run',
       f'--user-data-dir={tmp_path / "profile"}', f'--screenshot={shot}',
       '--window-size=1200,900', '--virtual-time-budget=10000', url],
      check=True, capture_output=True, timeout=60)
  pixels = np.asarray(Image.open(shot).convert('RGB'))
  assert pixels.shape[:2] == (900, 1200)
  assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10  # Text and widgets, not a blank


def _command(*args):
  return [sys.executable, '-m', 'adabins_jax.inference.app', '--config=demo', *args]


def test_command_needs_one_source_of_weights():
  # Both messages are checked on check_weights above; this checks the command reports them.
  done = subprocess.run(_command('--weights=a.pt', '--workdir=runs/x'), capture_output=True,
                        text=True, timeout=60, env={**os.environ, **_OFFLINE_ENV})
  assert done.returncode == 2, done.stderr[-2000:]
  assert ('Give exactly one of --weights=<released .pt> or --workdir=<training run> (both '
          'given)') in done.stderr


def test_command_serves_the_page(workdir, tmp_path):
  port = app_server.free_port()
  command = _command(f'--workdir={workdir}', '--host=127.0.0.1', f'--port={port}')
  with app_server.serving(command, port, tmp_path / 'log', timeout_s=90,
                          env={**os.environ, **_OFFLINE_ENV}) as (url, page):
    assert 'AdaBins depth' in page, page[:500]
    api = gradio_client.Client(url, verbose=False).view_api(print_info=False,
                                                            return_format='dict')
    assert '/predict' in api['named_endpoints']


def test_the_files_of_a_photo_are_all_or_nothing(tmp_path, monkeypatch):
  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(app.output_files, 'write_ply', disk_full)  # The last of the three files.
  with pytest.raises(OSError, match='No space left'):
    app.write_depth_files(tmp_path, 'x', np.zeros((8, 10, 3), np.float32),
                          np.ones((8, 10), np.float32), 10.0)
  assert os.listdir(tmp_path) == []
