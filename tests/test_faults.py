"""Faults and bad input, as a user meets them: nothing lost or corrupted without a word.

Each test states one promise of docs/training.md's "What happens when things go wrong": output
names never collide, one run per workdir, corrupt checkpoints are found, non-finite weights and
predictions are refused, literal names stay literal, no partial files, invalid configs fail
before any work, disk-full saves end in one line, signals give 128 + N. Cases covered where
the code lives are listed at the end of this file.
"""

import errno
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap

from absl import flags
from absl.testing import flagsaver
from flax import nnx
import jax
import numpy as np
import optax
from PIL import Image
import pytest

from adabins_jax import checkpointing
from adabins_jax.configs import validation as config_validation
from adabins_jax import configs
from adabins_jax import errors
from adabins_jax import files
from adabins_jax.torch_weights import importer as import_torch
from adabins_jax import main
from adabins_jax.inference import predict
from adabins_jax.inference import flags as predict_flags
from adabins_jax.inference import input_files
from adabins_jax.inference import output_files
from adabins_jax.inference import photos
from adabins_jax import steps
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax import train
from adabins_jax import workdir_lock
from adabins_jax.configs import smoke
from adabins_jax import models
from helpers.stand_ins import TinyDepthModel

_REPO = pathlib.Path(__file__).resolve().parents[1]

_SIZE = '64x80'


def _image(path, seed=0, size=(40, 50)):
  rgb = np.random.default_rng(seed).integers(0, 255, (*size, 3), np.uint8)
  path.parent.mkdir(parents=True, exist_ok=True)
  Image.fromarray(rgb).save(path)
  return path


def _options(inputs, output, **kw):
  return predict.PredictOptions(inputs, str(output), size=_SIZE, **kw)


# ------------------------------------------------------------------ predict: names and inputs

def test_output_names_are_unique_for_every_input():
  names = input_files.output_names([pathlib.Path(p) for p in (
      'in/x.png', 'in/x.jpg', 'in/a/x.png', 'in/b/x.png', 'in/a_x.png', 'in/Y.png', 'in/y.jpg',
      'in/kitchen.jpg')])
  assert len({n.casefold() for n in names}) == len(names), names
  assert names[-1] == 'kitchen'  # Short where nothing collides.
  assert names[:2] == ['x_png', 'x_jpg']
  assert names[3] == 'b_x'


def test_predict_writes_one_set_of_files_per_input(tmp_path, model, config):
  inputs = [_image(tmp_path / 'in' / p, i) for i, p in
            enumerate(('x.png', 'x.jpg', 'a/x.png', 'b/x.png', 'a_x.png'))]
  out = tmp_path / 'out'
  summary = predict.predict_images(model, config, _options(
      [str(tmp_path / 'in'), str(tmp_path / 'in/a/x.png'), str(tmp_path / 'in/b/x.png')], out))
  assert not summary.failed and len(summary.written) == len(inputs)
  written = [f for files_ in summary.written.values() for f in files_]
  assert len(set(written)) == len(written) == 3 * len(inputs)
  assert sorted(os.listdir(out)) == sorted(os.path.basename(f) for f in written)
  # Every depth file holds its own image's prediction, not a later one's.
  depths = {p: np.load(f[0]) for p, f in summary.written.items()}
  assert len({d.tobytes() for d in depths.values()}) == len(inputs)


def test_an_existing_name_is_literal_and_lists_take_any_name(tmp_path):
  literal = _image(tmp_path / 'img[1].jpg')
  _image(tmp_path / 'img1.jpg', 1)
  paths, problems = input_files.find_images(str(literal))
  assert paths == [literal] and not problems
  comma = _image(tmp_path / 'a,b.png', 2)
  paths, _ = input_files.find_images([str(comma)])
  assert paths == [comma]
  listing = tmp_path / 'list.txt'
  listing.write_text(f'# my photos\n{comma}\n\n{literal}\n')
  paths, problems = input_files.find_images(
      [], literal=input_files.read_input_list(listing))
  assert paths == [comma, literal] and not problems


def test_repeated_input_flag_and_input_list_reach_the_options(tmp_path):
  listing = tmp_path / 'list.txt'
  listing.write_text('x.png\n')
  with flagsaver.flagsaver():
    flags.FLAGS(['main', f'--config={_REPO / "configs" / "smoke.py"}', '--input=a.png',
                 '--input=b,c.png', f'--input_list={listing}', '--output=o'])
    values = predict_flags.values()
  assert values['inputs'] == ['a.png', 'b,c.png'] and values['input_list'] == str(listing)


def test_outputs_are_never_taken_as_inputs(tmp_path, model, config):
  folder = tmp_path / 'photos'
  _image(folder / 'ok.jpg')
  first = predict.predict_images(model, config, _options(str(folder), folder))
  assert len(first.written) == 1
  before = sorted(os.listdir(folder))
  second = predict.predict_images(model, config, _options(str(folder), folder))
  # Rerun into the same folder: the same image again, the same files replaced, no *_depth_depth.
  assert list(second.written) == list(first.written) and not second.failed
  assert sorted(os.listdir(folder)) == before
  _, problems = input_files.find_images(str(folder / 'ok_depth.png'), output_dir=folder)
  assert 'an output of this run' in problems[0][1]


def test_output_problems_are_named_before_the_model_loads(tmp_path, config, monkeypatch):
  def no_model(*args):
    raise AssertionError('the model was loaded before the output was checked')

  monkeypatch.setattr(predict, 'load_model', no_model)
  _image(tmp_path / 'x.png')
  (tmp_path / 'taken').write_text('a file')
  with pytest.raises(ValueError, match='is a file, not a folder'):
    predict.predict(config, None, _options(str(tmp_path / 'x.png'), tmp_path / 'taken'))
  # No input found: exit non-zero, and no empty output folder left behind.
  with pytest.raises(SystemExit, match='no image to read'):
    predict.predict(config, None, _options(str(tmp_path / 'nothing*.png'), tmp_path / 'new'))
  assert not (tmp_path / 'new').exists()


@pytest.mark.skipif(os.geteuid() == 0, reason='root may write to read-only folders')
def test_read_only_output_is_named_before_the_model_loads(tmp_path, config, monkeypatch):
  monkeypatch.setattr(predict, 'load_model', lambda *a: pytest.fail('model loaded'))
  _image(tmp_path / 'x.png')
  (tmp_path / 'ro').mkdir(mode=0o555)
  with pytest.raises(ValueError, match='not writable'):
    predict.predict(config, None, _options(str(tmp_path / 'x.png'), tmp_path / 'ro'))


# ------------------------------------------------------------------ predict: no partial files

def test_a_failed_write_leaves_no_partial_files(tmp_path, monkeypatch):
  real = output_files.visualize.save_png

  def disk_full_on_colour(path, array):
    if path.endswith('_color.png'):
      with open(path, 'wb') as f:
        f.write(b'\x89PNG half')  # What a full disk leaves: a truncated file...
      raise OSError(errno.ENOSPC, 'No space left on device')
    real(path, array)

  monkeypatch.setattr(output_files.visualize, 'save_png', disk_full_on_colour)
  rgb = np.zeros((8, 10, 3), np.float32)
  with pytest.raises(OSError, match='No space left'):
    output_files.write_outputs(tmp_path, 'x', rgb, np.ones((8, 10)), depth_range=(1e-3, 10.0),
                             strip=True, ply=True)
  assert os.listdir(tmp_path) == []  # ... under a temporary name, removed with the rest.


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
  target = tmp_path / 'report.md'
  files.write_bytes(target, b'old')
  with pytest.raises(RuntimeError):
    with files.atomic_path(target) as temporary:
      pathlib.Path(temporary).write_bytes(b'half')
      raise RuntimeError('killed mid-write')
  assert target.read_bytes() == b'old' and os.listdir(tmp_path) == ['report.md']


# ------------------------------------------------------------------ non-finite weights

def _write_pt(state, path):
  torch = pytest.importorskip('torch')
  torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)


def test_non_finite_and_non_floating_weights_are_refused_by_name(tmp_path, model):
  state = torch_mapping.model_to_state_dict(model)
  key_nan, key_int = sorted(state)[:2]
  state[key_nan] = np.full_like(state[key_nan], np.nan)
  state[key_int] = state[key_int].astype(np.int64)
  _write_pt(state, tmp_path / 'bad.pt')
  target = models.random_model(smoke.get_config().model, seed=2)
  with pytest.raises(ValueError) as info:
    torch_mapping.load_torch_checkpoint(target, tmp_path / 'bad.pt')
  assert f'{key_nan} has ' in str(info.value) and 'non-finite' in str(info.value)
  assert f'{key_int} is not floating point (dtype int64)' in str(info.value)


def test_empty_pt_files_give_a_reason_and_failed_imports_leave_no_folder(tmp_path, config):
  (tmp_path / 'zero.pt').write_bytes(b'')
  with pytest.raises(ValueError, match=r'zero.pt: .*empty, 0 bytes'):
    torch_mapping.read_torch_file(tmp_path / 'zero.pt')
  _write_pt({}, tmp_path / 'empty.pt')
  workdir = tmp_path / 'run'
  with pytest.raises(ValueError, match='empty.pt holds no tensors'):
    import_torch.import_checkpoint(config, tmp_path / 'empty.pt', workdir)
  assert not checkpointing.checkpoint_dir(workdir).exists()


def test_a_nan_prediction_fails_its_image_instead_of_becoming_min_depth(tmp_path, config):
  broken = models.random_model(config.model, seed=1)
  broken.eval()
  kernel = broken.conv_out.kernel
  kernel.set_value(kernel.get_value() * np.nan)
  _image(tmp_path / 'x.png')
  summary = predict.predict_images(broken, config, _options(str(tmp_path / 'x.png'),
                                                            tmp_path / 'out'))
  assert not summary.written and 'non-finite depth' in summary.failed[0][1]
  assert os.listdir(tmp_path / 'out') == []


# ------------------------------------------------------------------ config validation

def test_every_invalid_field_is_named_at_once(config):
  bad = smoke.get_config()
  bad.train.num_steps = -5
  bad.train.log_every_steps = 0
  bad.train.checkpoint_every_steps = 0
  bad.optim.learning_rate = -1.0
  bad.eval.crop = 'center'
  with pytest.raises(ValueError) as info:
    config_validation.validate(bad)
  message = str(info.value)
  for field in ('train.num_steps=-5', 'train.log_every_steps=0',
                'train.checkpoint_every_steps=0', 'optim.learning_rate=-1.0',
                "eval.crop='center'"):
    assert field in message, message


@pytest.mark.parametrize('field', ['optim.learning_rate', 'data.input_scale', 'optim.eps',
                                   'model.max_depth_m', 'train.silog_weight'])
@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf')])
def test_nan_and_inf_are_refused_in_every_numeric_field(field, value):
  bad = smoke.get_config()
  group, name = field.split('.')
  bad[group][name] = value
  with pytest.raises(ValueError, match=f'{field}={value!r}: must be a finite number'):
    config_validation.validate(bad)


@pytest.mark.parametrize('name', configs.names() + ['default'])
def test_every_shipped_config_is_valid(name):
  config_validation.validate(configs.load(name))


def _main(monkeypatch, *args):
  # config_flags reads --config.* overrides from sys.argv itself.
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', *args]
  monkeypatch.setattr(sys, 'argv', argv)
  with pytest.raises(SystemExit) as info:
    main.main(flags.FLAGS(argv))
  return info.value.code


@flagsaver.flagsaver
def test_main_refuses_an_invalid_config_before_any_work(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(main, '_dispatch', lambda mode: pytest.fail('work started'))
  assert _main(monkeypatch, f'--workdir={tmp_path}', '--config.train.log_every_steps=0',
               '--config.train.num_steps=-5') == 2
  assert 'train.log_every_steps=0' in capsys.readouterr().err


@flagsaver.flagsaver
def test_main_refuses_a_nan_learning_rate_before_any_work(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(main, '_dispatch', lambda mode: pytest.fail('work started'))
  assert _main(monkeypatch, f'--workdir={tmp_path}', '--config.optim.learning_rate=nan') == 2
  assert 'optim.learning_rate=nan: must be a finite number' in capsys.readouterr().err


# ------------------------------------------------------------------ exit status of signals

@pytest.mark.parametrize('signum, status', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_exits_128_plus_the_signal(tmp_path, monkeypatch, signum, status):
  def stopped(config, workdir):
    raise errors.Interrupted(signum, 3)

  monkeypatch.setattr(main, '_dispatch', lambda mode: stopped)
  monkeypatch.setattr(main.parallel, 'maybe_initialize_distributed', lambda: False)
  with flagsaver.flagsaver():
    assert _main(monkeypatch, f'--workdir={tmp_path}') == status


# ------------------------------------------------------------------ one run per workdir

_HOLDER = textwrap.dedent('''
    import sys, time
    from adabins_jax import workdir_lock
    lock = workdir_lock.WorkdirLock(sys.argv[1])
    lock.acquire()
    print('locked', flush=True)
    time.sleep(600)
''')


def _hold_in_child(workdir):
  child = subprocess.Popen([sys.executable, '-c', _HOLDER, str(workdir)],
                           stdout=subprocess.PIPE, text=True)
  assert child.stdout.readline().strip() == 'locked'
  return child


def test_a_second_run_refuses_at_once_naming_the_holder(tmp_path, config):
  child = _hold_in_child(tmp_path)
  try:
    with pytest.raises(errors.WorkdirBusyError) as info:
      train.train_and_evaluate(config, str(tmp_path))
    assert f'PID {child.pid}' in str(info.value) and 'host ' in str(info.value)
    assert not (tmp_path / 'checkpoints').exists()  # Refused before building anything.
  finally:
    child.kill()
    child.wait()


def test_a_killed_runs_lock_is_taken_over(tmp_path):
  child = _hold_in_child(tmp_path)
  child.send_signal(signal.SIGKILL)
  child.wait()
  lock = workdir_lock.WorkdirLock(tmp_path)
  with lock:
    holder = json.loads((tmp_path / workdir_lock.LOCK_FILE).read_text())
    assert holder['pid'] == os.getpid()
    with pytest.raises(errors.WorkdirBusyError):  # Held now, even within one process.
      workdir_lock.WorkdirLock(tmp_path).acquire()
  workdir_lock.WorkdirLock(tmp_path).acquire()  # Released on exit.


# ------------------------------------------------------------------ checkpoint integrity

_TX = optax.adam(1e-3)


def _saved_steps(workdir, steps):
  model = TinyDepthModel(rngs=nnx.Rngs(params=0, dropout=0))
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  manager = checkpointing.create_manager(workdir)
  for step in steps:
    nnx.update(model, jax.tree.map(lambda x: x + 1.0, nnx.state(model, nnx.Param)))
    checkpointing.save(manager, step, model, optimizer, force=True)
  checkpointing.finish(manager)
  manager.close()
  return model


def _largest_data_file(step_dir):
  step_dir = pathlib.Path(step_dir)
  data = [p for p in step_dir.rglob('*') if p.is_file() and p.name != 'checksums.json'
          and not p.name.startswith('_')]
  return max(data, key=lambda p: p.stat().st_size)


def _flip_bytes(path, count=19):
  raw = bytearray(path.read_bytes())
  for i in range(count):
    raw[(i * 7919) % len(raw)] ^= 0xFF
  path.write_bytes(bytes(raw))


def test_a_corrupt_checkpoint_is_named_and_training_falls_back(tmp_path):
  _saved_steps(tmp_path, (1, 2))
  step_dir = checkpointing.checkpoint_dir(tmp_path) / '2'
  assert json.loads((step_dir / 'checksums.json').read_text())['step'] == 2
  victim = _largest_data_file(step_dir)
  _flip_bytes(victim)
  # Evaluation and prediction refuse it, naming the step and the file.
  model = TinyDepthModel(rngs=nnx.Rngs(params=5, dropout=5))
  with pytest.raises(errors.CheckpointError, match=f'step 2 is corrupt: .*{victim.name}'):
    checkpointing.restore_model(tmp_path, model, 'latest')
  # Training resumes from step 1 and sets step 2 aside, so that it can be trained again.
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  manager = checkpointing.create_manager(tmp_path)
  assert checkpointing.restore(manager, model, optimizer) == 1
  assert manager.all_steps() == [1]
  assert (tmp_path / checkpointing.CORRUPT_DIR / '2').is_dir()
  assert checkpointing.save(manager, 2, model, optimizer, force=True)
  checkpointing.finish(manager)


def test_every_intact_step_verifies(tmp_path):
  _saved_steps(tmp_path, (1, 2, 3))
  for step in (1, 2, 3):
    assert checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), step)


def test_a_truncated_file_is_named(tmp_path):
  _saved_steps(tmp_path, (1,))
  victim = _largest_data_file(checkpointing.checkpoint_dir(tmp_path) / '1')
  victim.write_bytes(victim.read_bytes()[:-3])
  with pytest.raises(errors.CheckpointError, match='bytes'):
    checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), 1)


def test_a_disk_full_save_ends_in_one_line_and_keeps_earlier_steps(tmp_path, monkeypatch):
  model = _saved_steps(tmp_path, (1,))
  manager = checkpointing.create_manager(tmp_path)

  def full(*args, **kwargs):  # How TensorStore reports it, under two layers of wrapping.
    inner = ValueError('Error writing "d/4f2a": [errno=28] No space left on device')
    try:
      raise inner
    except ValueError as e:
      raise RuntimeError('Orbax save failed') from e

  monkeypatch.setattr(manager, 'save', full)
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  with pytest.raises(errors.CheckpointError) as info:
    checkpointing.save(manager, 2, model, optimizer, force=True)
  message = str(info.value)
  assert '\n' not in message and 'no space left' in message and str(tmp_path) in message
  assert info.value.__cause__ is None and info.value.__suppress_context__
  assert checkpointing.verify(checkpointing.checkpoint_dir(tmp_path), 1)


@pytest.fixture
def full_disk(tmp_path):
  """A 2 MB tmpfs (needs root and mount rights), and a way to fill it up to the last byte."""
  mount = tmp_path / 'small_disk'
  mount.mkdir()
  result = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', str(mount)],
                          capture_output=True, text=True, check=False)
  if result.returncode:
    pytest.skip(f'cannot mount a small tmpfs here: {result.stderr.strip()}')

  def fill():
    fd = os.open(mount / 'filler', os.O_WRONLY | os.O_CREAT)
    for size in (65536, 4096, 1):  # Down to the last byte.
      try:
        while os.write(fd, b'\0' * size) == size:
          pass
      except OSError as e:
        assert e.errno == errno.ENOSPC
    os.close(fd)

  yield mount, fill
  subprocess.run(['umount', '-l', str(mount)], check=False)


def test_a_really_full_disk_fails_one_save_in_one_line(full_disk):
  mount, fill = full_disk
  model = _saved_steps(mount, (1,))
  manager = checkpointing.create_manager(mount)
  fill()
  optimizer = nnx.Optimizer(model, _TX, wrt=nnx.Param)
  with pytest.raises(errors.CheckpointError) as info:
    checkpointing.save(manager, 2, model, optimizer, force=True)
    checkpointing.finish(manager)
  assert 'no space left on device' in str(info.value) and '\n' not in str(info.value)
  os.remove(mount / 'filler')
  assert checkpointing.verify(checkpointing.checkpoint_dir(mount), 1)


def test_a_really_full_disk_leaves_no_partial_outputs(full_disk):
  mount, fill = full_disk
  fill()
  rgb = np.random.default_rng(0).random((64, 64, 3), np.float32)
  with pytest.raises(OSError):
    output_files.write_outputs(mount, 'x', rgb, np.ones((64, 64)), depth_range=(1e-3, 10.0))
  assert sorted(os.listdir(mount)) == ['filler']


# ------------------------------------------------------------------ cases that held already

class _RunsCode:
  def __init__(self, marker):
    self.marker = marker

  def __reduce__(self):
    return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
  torch = pytest.importorskip('torch')
  marker = tmp_path / 'payload_ran'
  torch.save({'conv_out.0.weight': _RunsCode(str(marker))}, tmp_path / 'evil.pt')
  with pytest.raises(ValueError, match='evil.pt: not a readable PyTorch checkpoint'):
    torch_mapping.read_torch_file(tmp_path / 'evil.pt')
  assert not marker.exists()


def test_a_decompression_bomb_is_refused_by_name(tmp_path, monkeypatch):
  # Pillow refuses images over twice MAX_IMAGE_PIXELS; a smaller limit makes a small bomb.
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)
  _image(tmp_path / 'bomb.png', size=(100, 100))
  with pytest.raises(ValueError, match='bomb.png: not a readable image'):
    photos.read_image(tmp_path / 'bomb.png')


def test_a_batch_without_valid_depth_has_a_finite_loss_and_gradient(model, config):
  batch = {'image': np.zeros((2, 64, 80, 3), np.float32),
           'depth': np.zeros((2, 64, 80, 1), np.float32)}
  grad_fn = nnx.jit(nnx.value_and_grad(
      lambda m: steps.train_loss(m, batch, **steps.train_loss_kwargs(config))[0]))
  loss, grads = grad_fn(model)
  assert np.isfinite(float(loss))
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


# Covered next to the code they test:
# - kill -9 in the middle of a save:
#   test_checkpointing.test_killed_save_leaves_the_last_good_checkpoint
# - SIGTERM saves and resumes exactly: test_train.test_train_kill_resume_evaluate
# - weights of the wrong shape or with missing keys:
#   test_torch_mapping.test_importer_errors_name_the_key
# - corrupt images named and skipped:
#   test_predict.test_main_with_pt_weights_skips_a_corrupt_file_and_exits_non_zero
