"""Tests for adabins_jax.main: flags reach the chosen mode; the cluster is set up first."""

import pathlib
import signal
import sys

from absl import app
from absl import flags
from absl.testing import flagsaver
import pytest

from adabins_jax import errors
from adabins_jax import main
from adabins_jax import parallel

_REPO = pathlib.Path(__file__).resolve().parents[1]


def _parse(monkeypatch, *args):
  # config_flags reads --config.* overrides from sys.argv itself.
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', *args]
  monkeypatch.setattr(sys, 'argv', argv)
  return flags.FLAGS(argv)


@pytest.fixture
def calls(monkeypatch):
  calls = []
  monkeypatch.setattr(parallel, 'maybe_initialize_distributed',
                      lambda: calls.append(('distributed',)))
  def dispatch(mode):
    return lambda config, workdir, **kw: calls.append((mode, config, workdir, *kw.values()))

  monkeypatch.setattr(main, '_dispatch', dispatch)
  return calls


@flagsaver.flagsaver
def test_config_overrides_and_mode_reach_the_dispatch(monkeypatch, calls, tmp_path):
  argv = _parse(monkeypatch, f'--workdir={tmp_path}', '--mode=eval',
                '--config.train.num_steps=7', "--config.data.crop_size=(32, 48)")
  main.main(argv)
  assert calls[0] == ('distributed',)  # Before anything touches the data or the devices.
  mode, config, workdir = calls[1]
  assert (mode, workdir) == ('eval', str(tmp_path))
  assert config.train.num_steps == 7
  assert tuple(config.data.crop_size) == (32, 48)
  assert config.model.n_bins == 16  # The rest comes from configs/smoke.py.


@flagsaver.flagsaver
def test_train_is_the_default_mode(monkeypatch, calls, tmp_path):
  main.main(_parse(monkeypatch, f'--workdir={tmp_path}'))
  assert calls[1][0] == 'train'


@flagsaver.flagsaver
def test_stray_arguments_are_refused(monkeypatch, calls, tmp_path):
  argv = _parse(monkeypatch, f'--workdir={tmp_path}', 'extra')
  with pytest.raises(app.UsageError, match='extra'):
    main.main(argv)
  assert calls == []


@flagsaver.flagsaver
def test_workdir_is_needed_except_for_predict(monkeypatch, calls, tmp_path):
  with pytest.raises(app.UsageError, match='--mode=eval needs --workdir'):
    main.main(_parse(monkeypatch, '--mode=eval'))
  weights, photo = tmp_path / 'AdaBins_nyu.pt', tmp_path / 'a.png'
  weights.touch()
  photo.touch()
  main.main(_parse(monkeypatch, '--mode=predict', f'--weights={weights}', f'--input={photo}',
                   '--output=out'))
  mode, _, workdir, options = calls[-1]
  assert (mode, workdir, options.weights, options.inputs) == ('predict', None, str(weights),
                                                              [str(photo)])


@pytest.mark.parametrize('given, missing', [('--output=out', '--input'),
                                            ('--input=a.png', '--output')])
@flagsaver.flagsaver
def test_predict_without_input_or_output_is_a_usage_error(monkeypatch, calls, given, missing):
  with pytest.raises(app.UsageError, match=missing) as info:
    main.main(_parse(monkeypatch, '--mode=predict', '--weights=w.pt', given))
  assert info.value.exitcode == 2
  assert [c for c in calls if c[0] == 'predict'] == []


@flagsaver.flagsaver
def test_predict_flags_in_another_mode_are_refused(monkeypatch, calls, tmp_path):
  with pytest.raises(app.UsageError, match='--input, --strip: only for --mode=predict'):
    main.main(_parse(monkeypatch, f'--workdir={tmp_path}', '--mode=eval', '--input=a.png',
                     '--strip'))


def test_help_lists_the_flags_of_every_mode_and_exits_0_without_jax():
  import subprocess  # pylint: disable=g-import-not-at-top
  result = subprocess.run([sys.executable, '-X', 'importtime', '-m', 'adabins_jax.main', '--help'],
                          capture_output=True, text=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  for flag in ('--mode', '--workdir', '--config', '--input', '--output', '--weights', '--ply'):
    assert flag in result.stdout, flag
  assert '--mode=predict' in result.stdout  # An example of each use.
  # Help is fast because it imports neither JAX nor TensorFlow.
  imported = {line.rsplit('|', 1)[-1].strip() for line in result.stderr.splitlines()
              if line.startswith('import time:')}
  assert not imported & {'jax', 'flax', 'tensorflow'}, imported & {'jax', 'flax', 'tensorflow'}


def test_unknown_mode_is_refused(monkeypatch, tmp_path):
  with flagsaver.flagsaver(), pytest.raises(flags.IllegalFlagValueError, match='serve'):
    _parse(monkeypatch, f'--workdir={tmp_path}', '--mode=serve')


def test_modes_dispatch_to_their_functions():
  from adabins_jax import evaluate  # pylint: disable=g-import-not-at-top
  from adabins_jax import train  # pylint: disable=g-import-not-at-top
  assert main._dispatch('train') is train.train_and_evaluate
  assert main._dispatch('eval') is evaluate.evaluate


def test_predict_mode_dispatches_to_predict():
  from adabins_jax.inference import predict  # pylint: disable=g-import-not-at-top
  assert main._dispatch('predict') is predict.predict


@flagsaver.flagsaver
def test_predict_flags_are_known_before_predict_is_imported(monkeypatch, calls, tmp_path):
  (tmp_path / 'a.png').touch()
  argv = _parse(monkeypatch, f'--workdir={tmp_path}', '--mode=predict',
                f'--input={tmp_path}/a.png', f'--output={tmp_path}')
  main.main(argv)
  assert calls[1][0] == 'predict'
  assert flags.FLAGS.input == [f'{tmp_path}/a.png']


def test_launch_script_shows_its_usage_without_arguments():
  import subprocess  # pylint: disable=g-import-not-at-top
  result = subprocess.run([str(_REPO / 'launch.sh')], capture_output=True, text=True,
                          timeout=30)
  assert result.returncode == 2
  assert 'srun ./launch.sh' in result.stderr and 'JAX_COORDINATOR_ADDRESS' in result.stderr


# Invalid configs are refused before any work; a stopped run exits 128 + the signal.

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


@pytest.mark.parametrize('signum, status', [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_run_exits_128_plus_the_signal(tmp_path, monkeypatch, signum, status):
  def stopped(config, workdir):
    raise errors.Interrupted(signum, 3)

  monkeypatch.setattr(main, '_dispatch', lambda mode: stopped)
  monkeypatch.setattr(parallel, 'maybe_initialize_distributed', lambda: False)
  with flagsaver.flagsaver():
    assert _main(monkeypatch, f'--workdir={tmp_path}') == status
