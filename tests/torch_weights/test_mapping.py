"""Importing released PyTorch weights: exact parity with the reference, and strictness."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

from adabins_jax import checkpointing
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax.torch_weights import importer as import_torch
from adabins_jax.models import build_abstract_model, build_model
from adabins_jax.models.efficientnet import EfficientNet
from adabins_jax.configs import effnet_b5_256, smoke
from adabins_jax import models
from helpers import fixture_weights


def _relative_error(got, ref):
  return float(np.linalg.norm(got - ref) / np.linalg.norm(ref))


def _save_fixture_pt(path):
  """The fixture weights as the release saved its checkpoints (DDP-prefixed, with optimizer)."""
  state = fixture_weights.fixture_state_dict()
  torch.save({'model': {f'module.{k}': torch.from_numpy(v) for k, v in state.items()},
              'optimizer': {}, 'epoch': 0}, path)
  return path


@nnx.jit
def _forward(model, images):
  return model(images)


@pytest.mark.slow
def test_paper_model_matches_reference_outputs(tmp_path):
  """The release's B5 AdaBins with the fixture weights, saved as a DDP-style .pt and imported."""
  path = _save_fixture_pt(tmp_path / 'fixture.pt')
  model = build_abstract_model(effnet_b5_256.get_config().model)
  torch_mapping.load_torch_checkpoint(model, path)
  model.eval()
  ref = np.load(fixture_weights.B5_OUTPUTS)
  edges, depth = _forward(model, jnp.asarray(ref['input'].transpose(0, 2, 3, 1)))
  pred, ref_pred = np.asarray(depth)[..., 0], ref['pred'][:, 0]
  centred = lambda a: a - a.mean(axis=(1, 2), keepdims=True)
  errors = {'pred': _relative_error(pred, ref_pred),
            'pred_centred': _relative_error(centred(pred), centred(ref_pred)),
            'bin_edges': _relative_error(np.asarray(edges), ref['bin_edges'])}
  print('parity relative L2 errors:', errors)
  assert errors['pred'] <= 2e-5
  assert errors['pred_centred'] <= 5e-4
  assert errors['bin_edges'] <= 2e-5


def _kitti_range(config):
  """A config's model read in the release's KITTI range, 1e-3..80 m (its infer.py)."""
  config.model.min_depth_m, config.model.max_depth_m = 1e-3, 80.0
  return config


def _rescaled(depth, old_max, new_max, low=1e-3):
  """Depth or bin edges of the same weights under another range, derived from the release's
  head (docs/models.md): edges are ``low + (max - low) * cumsum(normalised widths)`` and depth
  is a convex combination of bin centres, so both map affinely between ranges."""
  return low + (np.asarray(depth, np.float64) - low) * (new_max - low) / (old_max - low)


@pytest.mark.slow
def test_kitti_named_weights_match_the_reference_in_the_kitti_range(tmp_path):
  """The fixture weights as ``AdaBins_kitti.pt``, read by the paper model at max_depth_m=80."""
  path = _save_fixture_pt(tmp_path / 'AdaBins_kitti.pt')
  model = build_abstract_model(_kitti_range(effnet_b5_256.get_config()).model)
  torch_mapping.load_torch_checkpoint(model, path)
  model.eval()
  ref = np.load(fixture_weights.B5_OUTPUTS)  # The reference at max_val=10.
  edges, depth = _forward(model, jnp.asarray(ref['input'].transpose(0, 2, 3, 1)))
  pred, ref_pred = np.asarray(depth)[..., 0], _rescaled(ref['pred'][:, 0], 10.0, 80.0)
  centred = lambda a: a - a.mean(axis=(1, 2), keepdims=True)
  assert float(ref_pred.max()) > 10.0  # Depth beyond NYU's range: the scale is really 80 m.
  errors = {'pred': _relative_error(pred, ref_pred),
            'pred_centred': _relative_error(centred(pred), centred(ref_pred)),
            'bin_edges': _relative_error(np.asarray(edges),
                                         _rescaled(ref['bin_edges'], 10.0, 80.0))}
  print('parity relative L2 errors at 80 m:', errors)
  assert errors['pred'] <= 2e-5
  assert errors['pred_centred'] <= 5e-4
  assert errors['bin_edges'] <= 2e-5
  np.testing.assert_allclose(np.asarray(edges)[:, [0, -1]], [[1e-3, 80.0]], rtol=1e-5)


@pytest.mark.slow  # The release's B5 in PyTorch at 416x544: about 10 s on 2 cores.
def test_release_code_at_80_m_gives_the_derived_reference():
  """The derivation above, checked against the release's own model built with max_val=80."""
  pytest.importorskip('geffnet', reason='the release model needs geffnet: pip install '
                      'geffnet==1.0.2 --no-deps')
  from helpers import benchmark_scripts  # pylint: disable=g-import-not-at-top
  release = benchmark_scripts.load('torch_reference').UnetAdaptiveBins(max_val=80.0)
  release.load_state_dict({k: torch.from_numpy(v) for k, v in
                           fixture_weights.fixture_state_dict().items()}, strict=True)
  ref = np.load(fixture_weights.B5_OUTPUTS)
  with torch.no_grad():
    edges, pred = release.eval()(torch.from_numpy(ref['input']))
  errors = {'pred': _relative_error(pred.numpy(), _rescaled(ref['pred'], 10.0, 80.0)),
            'bin_edges': _relative_error(edges.numpy(), _rescaled(ref['bin_edges'], 10.0, 80.0))}
  print('release at max_val=80 vs the derived reference:', errors)
  assert errors['pred'] <= 2e-5
  assert errors['bin_edges'] <= 2e-5


@pytest.fixture(scope='module')
def smoke_model():
  model = build_model(smoke.get_config().model, rngs=nnx.Rngs(0))
  model.eval()
  return model


def _fresh_smoke(seed=1):
  model = build_model(smoke.get_config().model, rngs=nnx.Rngs(seed))
  model.eval()
  return model


def test_round_trip_through_torch_names_reproduces_outputs(smoke_model, tmp_path):
  state = torch_mapping.model_to_state_dict(smoke_model)
  path = tmp_path / 'bare.pt'
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
  other = _fresh_smoke()
  images = jax.random.normal(jax.random.key(0), (1, 64, 80, 3))
  assert not np.allclose(_forward(other, images)[1], _forward(smoke_model, images)[1])
  torch_mapping.load_torch_checkpoint(other, path)
  np.testing.assert_array_equal(_forward(other, images)[1], _forward(smoke_model, images)[1])


def test_release_names_and_legacy_renames(smoke_model):
  state = torch_mapping.model_to_state_dict(smoke_model)
  assert 'adaptive_bins_layer.patch_transformer.embedding_convPxP.weight' in state
  assert 'adaptive_bins_layer.regressor.4.bias' in state
  assert 'conv_out.0.weight' in state
  assert state['conv_out.0.weight'].shape == (16, 16, 1, 1)  # OIHW.
  legacy = {k.replace('adaptive_bins_layer.conv3x3.', 'adaptive_bins_layer.embedding_conv.')
            .replace('patch_transformer.embedding_convPxP.',
                     'patch_transformer.embedding_encoder.'): v for k, v in state.items()}
  assert 'adaptive_bins_layer.embedding_conv.weight' in legacy
  normalised = torch_mapping.normalise_state_dict({'model': legacy, 'epoch': 3})
  assert set(normalised) == set(state)
  torch_mapping.load_state_dict(_fresh_smoke(), normalised)


@pytest.mark.parametrize('corrupt,message', [
    (lambda s: s.pop('decoder.conv3.bias') if 'decoder.conv3.bias' in s else
     s.pop('adaptive_bins_layer.conv3x3.bias'), 'missing key adaptive_bins_layer.conv3x3.bias'),
    (lambda s: s.__setitem__('decoder.extra.weight', np.zeros(3)),
     'unexpected key decoder.extra.weight'),
    (lambda s: s.__setitem__('conv_out.0.weight', np.zeros((16, 8, 1, 1), np.float32)),
     r'shape mismatch for conv_out.0.weight: .* has \(16, 8, 1, 1\), the model needs '
     r'\(16, 16, 1, 1\)'),
])
def test_importer_errors_name_the_key(smoke_model, corrupt, message):
  state = torch_mapping.model_to_state_dict(smoke_model)
  corrupt(state)
  target = _fresh_smoke()
  before = np.asarray(target.conv_out.kernel[...]).copy()
  with pytest.raises(ValueError, match=message):
    torch_mapping.load_state_dict(target, state, source='bad.pt')
  # Nothing is half-loaded on error.
  np.testing.assert_array_equal(target.conv_out.kernel[...], before)


def test_importer_rejects_non_checkpoints(tmp_path):
  with pytest.raises(FileNotFoundError, match='missing.pt'):
    torch_mapping.read_torch_file(tmp_path / 'missing.pt')
  junk = tmp_path / 'junk.pt'
  junk.write_bytes(b'not a checkpoint')
  with pytest.raises(ValueError, match='junk.pt: not a readable PyTorch checkpoint'):
    torch_mapping.read_torch_file(junk)
  with pytest.raises(ValueError, match='expected a dict'):
    torch_mapping.normalise_state_dict([1, 2])


@pytest.mark.slow  # Two full-size EfficientNet encoders (about 45 s on 2 busy cores).
def test_imagenet_efficientnet_weights_initialise_the_encoder(tmp_path):
  source = EfficientNet('b0', rngs=nnx.Rngs(0))
  state = torch_mapping.model_to_state_dict(source, torch_mapping._IMAGENET_PREFIXES)
  assert 'blocks.1.0.conv_pwl.weight' in state and 'bn2.running_var' in state
  state['classifier.weight'] = np.zeros((1000, 1280), np.float32)
  state['classifier.bias'] = np.zeros((1000,), np.float32)
  path = tmp_path / 'tf_efficientnet_b0_ap.pth'
  torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)
  target = EfficientNet('b0', rngs=nnx.Rngs(1))
  torch_mapping.load_imagenet_efficientnet(target, path)
  for (p, a), (_, b) in zip(torch_mapping._weights(source), torch_mapping._weights(target)):
    np.testing.assert_array_equal(a.get_value(), b.get_value(), err_msg=str(p))


# Non-finite, non-floating, empty and code-running weights are refused by name.

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
