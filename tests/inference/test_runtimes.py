"""Prediction through an exported model (runtimes.py): LiteRT and ONNX Runtime against JAX.

The smoke model with random weights; each runtime exports it once per network input size into
one cache folder shared by the module's tests, so later tests load the files.
"""

import importlib.util
import pathlib
import sys

from absl import flags
from absl.testing import flagsaver
import numpy as np
from PIL import Image
import pytest

import adabins_jax
from helpers import stand_ins
from adabins_jax.export import formats as export_formats
from adabins_jax import main
from adabins_jax.inference import predict
from adabins_jax.inference import flags as predict_flags
from adabins_jax.inference import runtimes

_REPO = pathlib.Path(__file__).resolve().parents[2]
# float32 files differ from JAX by rounding only (measured about 1e-7).
_TOLERANCE = 1e-4
_BATCH = 2
# Shapes that get two network input sizes (64x80 and 48x112) and a batch to pad (three of one).
_SHAPES = [(40, 52), (30, 70), (40, 52), (40, 52)]
_MISSING = [p for r in runtimes.PACKAGES for p in runtimes.PACKAGES[r]
            if importlib.util.find_spec(p) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f'the export extra is missing: {_MISSING}')


def _photo(seed, size):
  return np.random.default_rng(seed).integers(0, 256, (*size, 3), np.uint8)


def _relative_l2(got, want) -> float:
  return float(np.linalg.norm(got - want) / np.linalg.norm(want))


@pytest.fixture(scope='module')
def weights(tmp_path_factory, model):
  pytest.importorskip('torch')
  return stand_ins.save_torch_weights(model, tmp_path_factory.mktemp('weights') / 'smoke.pt')


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
  return tmp_path_factory.mktemp('exported')


@pytest.fixture(scope='module')
def jax_results(weights):
  predictor = adabins_jax.Predictor('smoke', weights=weights, batch_size=_BATCH)
  return predictor.predict_batch([_photo(i, s) for i, s in enumerate(_SHAPES)])


@pytest.mark.parametrize('runtime', ['litert', 'onnxruntime'])
@pytest.mark.slow  # Compiles or runs a model for over 10 s on a busy 2-core CPU.
def test_each_runtime_gives_the_depth_of_jax(weights, cache, jax_results, runtime):
  predictor = adabins_jax.Predictor('smoke', weights=weights, batch_size=_BATCH, runtime=runtime,
                                    runtime_cache=cache)
  results = predictor.predict_batch([_photo(i, s) for i, s in enumerate(_SHAPES)])
  for got, want, shape in zip(results, jax_results, _SHAPES):
    assert got.depth.shape == shape and got.depth.dtype == np.float32
    assert _relative_l2(got.depth, want.depth) < _TOLERANCE
    assert _relative_l2(got.bin_centers, want.bin_centers) < _TOLERANCE
  suffix = runtimes.EXPORT_FORMATS[runtime]
  assert sorted(p.name.split('-', 1)[1] for p in cache.glob(f'*.{suffix}')) == [
      f'48x112-b{_BATCH}.{suffix}', f'64x80-b{_BATCH}.{suffix}']


def test_a_second_predictor_loads_the_cached_files(weights, cache, jax_results, monkeypatch):
  adabins_jax.Predictor('smoke', weights=weights, batch_size=_BATCH, runtime='litert',
                        runtime_cache=cache)(_photo(0, _SHAPES[0]))  # Exports, if not yet.

  def export_again(*args, **kwargs):
    raise AssertionError('exported again')

  monkeypatch.setattr(export_formats, 'write_all', export_again)
  predictor = adabins_jax.Predictor('smoke', weights=weights, batch_size=_BATCH, runtime='litert',
                                    runtime_cache=cache)
  assert _relative_l2(predictor(_photo(0, _SHAPES[0])), jax_results[0].depth) < _TOLERANCE


def test_exported_forward_pads_and_chunks_to_the_files_batch(model, config, cache):
  forward = runtimes.ExportedForward(model, config, 'litert', flip_average=True,
                                     batch_size=_BATCH, cache_dir=cache)
  images = np.random.default_rng(0).normal(size=(3, 64, 80, 3)).astype(np.float32)
  edges, depth, flipped = forward(images)
  assert edges.shape == (3, config.model.n_bins + 1) and depth.shape == (3, 32, 40, 1)
  assert flipped.shape == depth.shape
  np.testing.assert_allclose(forward(images[2:])[1], depth[2:], rtol=1e-6)
  np.testing.assert_allclose(forward(images[:1])[1], depth[:1], rtol=1e-6)


@flagsaver.flagsaver
def _run_main(argv, monkeypatch):
  monkeypatch.setattr(sys, 'argv', argv)
  main.main(flags.FLAGS(argv))


def test_command_line_runtime_writes_the_depth_of_jax(tmp_path, weights, cache, monkeypatch):
  (tmp_path / 'in').mkdir()
  for i, shape in enumerate(_SHAPES[:2]):
    Image.fromarray(_photo(i, shape)).save(tmp_path / 'in' / f'p{i}.png')
  argv = ['main', f'--config={_REPO / "configs" / "smoke.py"}', '--mode=predict',
          f'--weights={weights}', f'--input={tmp_path / "in"}', f'--batch_size={_BATCH}']
  _run_main([*argv, f'--output={tmp_path / "jax"}'], monkeypatch)
  _run_main([*argv, f'--output={tmp_path / "litert"}', '--runtime=litert',
             f'--runtime_cache={cache}'], monkeypatch)
  for i in range(2):
    want = np.load(tmp_path / 'jax' / f'p{i}_depth.npy')
    got = np.load(tmp_path / 'litert' / f'p{i}_depth.npy')
    assert got.shape == want.shape == _SHAPES[i]
    assert _relative_l2(got, want) < _TOLERANCE


def test_a_bad_runtime_name_lists_the_choices(tmp_path):
  choices = 'jax, onnxruntime, litert'
  with pytest.raises(ValueError, match=f"'tensorrt' is not one of {choices}"):
    adabins_jax.Predictor('smoke', weights=str(tmp_path / 'none.pt'), runtime='tensorrt')
  with pytest.raises(ValueError, match=f"runtime: 'tensorrt' is not one of {choices}"):
    predict.PredictOptions('x.png', str(tmp_path), runtime='tensorrt')
  with flagsaver.flagsaver(), pytest.raises(flags.IllegalFlagValueError, match='onnxruntime'):
    flags.FLAGS(['main', '--config=smoke', '--runtime=tensorrt'])
  assert tuple(flags.FLAGS['runtime'].parser.enum_values) == runtimes.RUNTIMES
  assert predict_flags.RUNTIME.default == 'jax'


def test_a_missing_package_names_it_and_the_extra(tmp_path, monkeypatch, config):
  real = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, 'find_spec',
                      lambda name, *a: None if name == 'ai_edge_litert' else real(name, *a))
  extra = r"ai_edge_litert: install the export extra, pip install 'adabins-jax\[export\]'"
  missing = str(tmp_path / 'none.pt')  # Never read: the check comes before the weights.
  with pytest.raises(ImportError, match=extra):
    adabins_jax.Predictor('smoke', weights=missing, runtime='litert')
  Image.fromarray(_photo(0, (8, 8))).save(tmp_path / 'p.png')
  options = predict.PredictOptions(str(tmp_path / 'p.png'), str(tmp_path / 'out'),
                                   weights=missing, runtime='litert')
  with pytest.raises(SystemExit, match=f'predict: --runtime=litert needs {extra}'):
    predict.predict(config, None, options)
