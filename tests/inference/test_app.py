"""The web demo: its functions, its server through gradio_client, its command and its page."""

import errno
import json
import os
import pathlib
import re
import shutil
import signal
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
import numpy as np
import PIL.ImageFile
from PIL import Image
import pytest

from helpers import app_server

gr = pytest.importorskip('gradio')
gradio_client = pytest.importorskip('gradio_client')
httpx = pytest.importorskip('httpx')  # gradio's own HTTP client

from adabins_jax.inference import app
from adabins_jax.inference import page
from adabins_jax import configs
from adabins_jax.inference import examples
from helpers import stand_ins
from adabins_jax.inference import predictor as predictor_lib
from adabins_jax import models
from adabins_jax import network_input
from adabins_jax.inference import photos
# pylint: enable=g-import-not-at-top,wrong-import-position

# A small network input: these tests check the plumbing, not the depth's accuracy.
_SIZE = '64x80'
# The served page's pixel cap: the test photo (36x50) fits, and 49x49 is one pixel over.
_MAX_PIXELS = 2400
_OFFLINE_ENV = {'GRADIO_ANALYTICS_ENABLED': 'False', 'HF_HUB_OFFLINE': '1', 'JAX_PLATFORMS': 'cpu'}


@pytest.fixture(scope='module')
def workdir(tmp_path_factory):
  """A demo-config run holding one checkpoint of a random initialisation."""
  path = tmp_path_factory.mktemp('run')
  return str(stand_ins.save_run(path, models.random_model(configs.load('demo').model, seed=1)))


@pytest.fixture(scope='module')
def predictor(workdir):
  return predictor_lib.Predictor('demo', workdir=workdir, size=_SIZE, batch_size=1)


@pytest.fixture(scope='module')
def photo(tmp_path_factory):
  path = tmp_path_factory.mktemp('photo') / 'room.png'
  Image.fromarray(np.random.default_rng(0).integers(0, 256, (36, 50, 3), np.uint8)).save(path)
  return str(path)


@pytest.fixture(scope='module')
def files_root(tmp_path_factory):
  return str(tmp_path_factory.mktemp('downloads'))


@pytest.fixture(scope='module')
def url(predictor, files_root):
  """The page served in this process, closed after the module's tests."""
  demo = page.build_app(predictor, files_root, max_pixels=_MAX_PIXELS)
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


def _upload(url: str, path) -> str:
  """Uploads a file as the page does; returns its path on the server."""
  with httpx.Client(base_url=url, timeout=60) as http, open(path, 'rb') as f:
    reply = http.post('gradio_api/upload', files={'files': (os.path.basename(path), f)})
    return reply.raise_for_status().json()[0]


def _call_predict(url: str, photo, api_name: str = 'predict') -> tuple[str, object]:
  """Calls /predict (or another endpoint) as any HTTP client can; returns the result's event
  ('complete' or 'error') and its data."""
  with httpx.Client(base_url=url, timeout=60) as http:
    reply = http.post(f'gradio_api/call/{api_name}', json={'data': [photo]})
    stream = http.get(
        f'gradio_api/call/{api_name}/{reply.raise_for_status().json()["event_id"]}')
  events = re.findall(r'^event: (complete|error)\ndata: (.*)$', stream.text, re.MULTILINE)
  assert events, stream.text
  return events[-1][0], json.loads(events[-1][1])


def _files_under(*folders) -> set[str]:
  return {os.path.join(parent, name) for folder in folders
          for parent, _, names in os.walk(folder) for name in names}


@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_predict_photo_gives_the_predictors_depth_and_files_that_load(tmp_path, predictor,
                                                                      photo):
  view = page.predict_photo(predictor, photo, tmp_path, 'room')
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
    assert page.depth_at(source, 3, 1) == 'Depth at pixel (x=3, y=1): **7.500 m**'
    assert 'outside the 4x3 depth map' in page.depth_at(source, 4, 0)
  assert 'expired' in page.depth_at(tmp_path / 'gone.npy', 0, 0)
  assert 'Upload a photo' in page.depth_at(None, 0, 0)


def test_small_helpers():
  assert page.ply_stride((36, 50)) == 1
  assert page.ply_stride((3000, 4000)) == 4  # 750,000 points of 12 million pixels
  assert page.upload_name({'path': '/tmp/x', 'orig_name': 'my photo (1).JPG'}) == 'my_photo_1'
  assert page.upload_name('/a/b/room.png') == 'room'
  assert page.upload_name({'path': '/tmp/x'}) == 'photo'
  assert page.fit_pixels((36, 50), 1800) == (36, 50)
  assert page.fit_pixels((3000, 4000), 4_000_000) == (1732, 2309)
  with pytest.raises(page.PhotoTooLargeError, match='2401x1 is 2,401 pixels, more than this page '
                     r'takes \(2,400\), and too narrow to downscale'):
    page.fit_pixels((1, 2401), 2400)
  with pytest.raises(ValueError, match='neither given'):
    app.check_weights(None, None)
  with pytest.raises(ValueError, match='both given'):
    app.check_weights('a.pt', 'runs/x')
  app.check_weights('a.pt', None)


def test_request_folders_expire(tmp_path):
  old = page.request_folder(tmp_path)
  os.utime(old, (time.time() - 7200, time.time() - 7200))
  new = page.request_folder(tmp_path)
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


@pytest.mark.filterwarnings('ignore::PIL.Image.DecompressionBombWarning')
def test_read_photo_downscales_upright_from_the_header(tmp_path, monkeypatch):
  stored = np.random.default_rng(1).integers(0, 256, (200, 300, 3), np.uint8)
  exif = Image.Exif()
  exif[0x0112] = 6  # Orientation: stored on its side, shown turned a quarter clockwise.
  path = tmp_path / 'side.jpg'
  Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
  rgb, note = page.read_photo(path, max_pixels=6000)
  assert rgb.shape == (94, 63, 3) and rgb.dtype == np.float32
  assert note == 'Downscaled from 200x300 to 63x94 pixels (this page takes at most 6,000).'
  upright = photos.read_image(path)
  expected = np.asarray(Image.fromarray(network_input.to_uint8(upright)).resize((63, 94))) / 255
  assert np.abs(rgb - expected).mean() < 0.03  # Decoded at a JPEG draft scale, resampled apart
  rgb, note = page.read_photo(path, max_pixels=60_000)
  np.testing.assert_array_equal(rgb, upright)
  assert note == ''

  def no_decoding(self):
    raise AssertionError('decoded pixels to refuse a size its header gives')

  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 59_999)
  monkeypatch.setattr(PIL.ImageFile.ImageFile, 'load', no_decoding)
  with pytest.raises(page.PhotoTooLargeError,
                     match=r'300x200 is 60,000 pixels, more than this page decodes \(59,999\)'):
    page.read_photo(path, max_pixels=1000)


def test_server_downscales_a_photo_over_its_pixel_cap(url, tmp_path):
  rng = np.random.default_rng(2)
  Image.fromarray(rng.integers(0, 256, (49, 49, 3), np.uint8)).save(tmp_path / 'square.png')
  client = gradio_client.Client(url, verbose=False)
  _, files, summary = client.predict(gradio_client.handle_file(str(tmp_path / 'square.png')),
                                     api_name='/predict')
  assert summary.startswith('Depth from') and summary.endswith(
      'Downscaled from 49x49 to 48x48 pixels (this page takes at most 2,400).')
  assert np.load(next(f for f in files if f.endswith('_depth.npy'))).shape == (48, 48)
  # One pixel over the cap, and no shape of its aspect ratio fits under it.
  Image.fromarray(rng.integers(0, 256, (1, 2401, 3), np.uint8)).save(tmp_path / 'thin.png')
  with pytest.raises(Exception, match='thin: 2401x1 is 2,401 pixels, more than this page takes'):
    client.predict(gradio_client.handle_file(str(tmp_path / 'thin.png')), api_name='/predict')


def test_server_reads_only_files_uploaded_to_it(url, files_root, predictor, photo, tmp_path):
  uploaded = _upload(url, photo)
  event, data = _call_predict(
      url, {'path': uploaded, 'orig_name': 'room.png', 'meta': {'_type': 'gradio.FileData'}})
  assert event == 'complete', data
  npy = next(f['path'] for f in data[1] if f['path'].endswith('room_depth.npy'))
  np.testing.assert_array_equal(np.load(npy), predictor.predict(photo).depth)

  # An image elsewhere on the server's disk, named in every way a client can put it.
  secret = tmp_path / 'secret.png'
  Image.fromarray(np.full((30, 40, 3), (1, 2, 3), np.uint8)).save(secret)
  cache = os.environ['GRADIO_TEMP_DIR']
  link = pathlib.Path(cache, 'link.png')
  link.symlink_to(secret)
  before = _files_under(files_root, cache)
  try:
    # File data without gradio's `meta` reaches the page's function as it is.
    for attack in ({'path': str(secret)},
                   {'path': os.path.join(cache, os.path.relpath(secret, cache))},
                   {'path': str(link)}):
      event, data = _call_predict(url, attack)
      assert event == 'error' and 'not an upload of this page' in data['error'], (attack, data)
    # With `meta`, or as a bare string, gradio itself refuses it first.
    for attack in ({'path': str(secret), 'meta': {'_type': 'gradio.FileData'}}, str(secret)):
      assert _call_predict(url, attack)[0] == 'error', attack
    assert _files_under(files_root, cache) == before  # No depth, no point cloud of its pixels
  finally:
    link.unlink()


def test_predict_names_its_results_in_the_api(url):
  client = gradio_client.Client(url, verbose=False)
  api = client.view_api(print_info=False, return_format='dict')
  returns = [r['label'] for r in api['named_endpoints']['/predict']['returns']]
  assert returns == list(page.PREDICT_RETURNS) == ['Depth map', 'Depth files', 'Summary']
  # As gradio_client shows them to a person, and as any HTTP client reads them.
  assert ' -> (depth_map, depth_files, summary)' in client.view_api(print_info=False,
                                                                     return_format='str')
  info = httpx.get(f'{url}gradio_api/info', timeout=60).raise_for_status().json()
  assert [r['label'] for r in info['named_endpoints']['/predict']['returns']] == returns
  assert not [r['label'] for endpoint in info['named_endpoints'].values()
              for r in endpoint['returns'] if re.fullmatch(r'value_\d+', r['label'])]


def test_examples_are_listed_and_a_click_predicts_as_an_upload(url, predictor):
  config = httpx.get(f'{url}config', timeout=60).raise_for_status().json()
  [listed] = [c['props']['samples'] for c in config['components'] if c['type'] == 'dataset']
  shipped = examples.paths()
  assert [sample['orig_name'] for [sample] in listed] == [os.path.basename(p) for p in shipped]
  # Served from gradio's copies in its cache, the folder uploads land in.
  cache = pathlib.Path(os.path.realpath(os.environ['GRADIO_TEMP_DIR']))
  for [sample], original in zip(listed, shipped):
    copy = pathlib.Path(sample['path'])
    assert copy.is_relative_to(cache) and copy.read_bytes() == pathlib.Path(original).read_bytes()
  # A click on the first: the page loads the example into the photo, whose change is /predict.
  event, [update] = _call_predict(url, 0, api_name='load_example')
  assert event == 'complete' and update['value']['path'] == listed[0][0]['path'], update
  event, data = _call_predict(url, update['value'])
  assert event == 'complete', data
  coloured, files, state, summary = data
  assert state is None  # The page's state, which gradio keeps from clients
  rgb, _ = page.read_photo(shipped[0], _MAX_PIXELS)  # 640x480 over the test cap: 56x42
  expected = predictor.predict(rgb)
  np.testing.assert_array_equal(np.asarray(Image.open(coloured['path']).convert('RGB')),
                                expected.colorized)
  npy = next(f['path'] for f in files if f['path'].endswith('_depth.npy'))
  assert os.path.basename(npy) == 'study_depth.npy'
  np.testing.assert_array_equal(np.load(npy), expected.depth)
  assert summary.startswith('Depth from') and 'Downscaled from 640x480 to 56x42' in summary


def test_the_examples_outlive_gradios_clean_up_of_old_files(predictor, tmp_path):
  demo = page.build_app(predictor, str(tmp_path))
  [dataset] = [b for b in demo.blocks.values() if isinstance(b, gr.Dataset)]
  copies = [sample['path'] for [sample] in dataset.samples]
  # Gradio's own record of them, which its sweep of files older than KEEP_FILES_S goes through.
  assert set(copies) <= set().union(*demo.temp_file_sets)
  gr.route_utils.delete_files_created_by_app(demo, age=0)
  assert all(os.path.isfile(p) for p in copies)


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


@pytest.mark.slow  # Subprocess end-to-end: a browser process against the served page.
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


@pytest.mark.slow  # Subprocess end-to-end: starts the app server, loads a model, stops it.
def test_command_serves_the_page_and_leaves_no_files_after_sigterm(workdir, photo, tmp_path):
  port = app_server.free_port()
  command = _command(f'--workdir={workdir}', '--host=127.0.0.1', f'--port={port}')
  temp = tmp_path / 'tmp'  # The app's TMPDIR, to see what it leaves behind.
  temp.mkdir()
  with app_server.serving(command, port, tmp_path / 'log', timeout_s=90,
                          stop_signal=signal.SIGTERM,
                          env={**os.environ, **_OFFLINE_ENV, 'TMPDIR': str(temp)}) as (url, page):
    assert 'AdaBins depth' in page, page[:500]
    api = gradio_client.Client(url, verbose=False).view_api(print_info=False,
                                                            return_format='dict')
    assert '/predict' in api['named_endpoints']
    uploaded = pathlib.Path(_upload(url, photo))
    [folder] = temp.glob('adabins-app-*')
    assert uploaded.is_file() and uploaded.is_relative_to(folder)
  assert not list(temp.glob('adabins-app-*')), (tmp_path / 'log').read_text()[-3000:]


def test_the_files_of_a_photo_are_all_or_nothing(tmp_path, monkeypatch):
  def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, 'No space left on device')

  monkeypatch.setattr(page.output_files, 'write_ply', disk_full)  # The last of the three files.
  with pytest.raises(OSError, match='No space left'):
    page.write_depth_files(tmp_path, 'x', np.zeros((8, 10, 3), np.float32),
                           np.ones((8, 10), np.float32), 10.0)
  assert os.listdir(tmp_path) == []
