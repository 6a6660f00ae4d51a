"""The paper model in the release's PyTorch form, timed beside ours on the same machine.

  pip install geffnet==1.0.2 --no-deps     # the release's EfficientNet (needs only torch)
  python benchmarks/torch_reference.py     # B5 + AdaBins 256 bins, 416x544, batch 1

The release builds its encoder with ``torch.hub.load('rwightman/gen-efficientnet-pytorch',
'tf_efficientnet_b5_ap')``, i.e. the ``geffnet`` package, and wraps it in ``UnetAdaptiveBins``
(encoder taps 4, 5, 6, 8, 11; ``DecoderBN``; ``mViT``). :class:`UnetAdaptiveBins` below is that
model written out again for timing, with the release's parameter names, so the same
``state_dict`` loads into it and into ours. Before timing, both load the parity fixture's
weights and run the fixture's input: the PyTorch model must reproduce the reference outputs
(tests/fixtures) and ours must match it, so the two timed programs are the same computation.

``--train`` times the training step instead (``release_training.py`` beside this file: the
release's losses, AdamW and OneCycleLR; ours is ``steps.make_train_step``), batch ``--batch`` at
``--size``, with random images and depths. Each side runs as its own users run it: in a process
of its own, nothing trimmed or shared, a warm-up step and then ``--repeats`` timed steps; ours
with glibc's malloc as ``adabins_jax.main`` has it (tuned only with ``ADABINS_JAX_MALLOC=tuned``,
module ``host_memory``). The processes alternate, release then ours, for ``--rounds`` rounds, so
that a change in machine load falls on both; the medians over all timed steps are compared.
Each side's peak resident memory is its own process's. Ours compiles in every round, the first
time with an empty persistent compilation cache and then with the cache the first round filled,
as a rerun of ``main`` does.
A first process checks that the two first-step losses agree with dropout off in both::

  python benchmarks/torch_reference.py --train            # 3 rounds of 3 steps per side

Timing: eval mode, one 416x544 image, no flip averaging, ``torch.no_grad`` and
``torch.set_num_threads(--threads)`` (default: every core); JAX's jitted forward pass with
``block_until_ready``, once per ``--conv3x3_impls`` value ('auto,xla' adds ours with XLA's own
convolution instead of Winograd). Warm-up excluded, then all are timed in turn, ``--repeats``
times each, and the medians compared, so a change in machine load affects all alike.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

# Our side starts as adabins_jax.main does: with ADABINS_JAX_MALLOC=tuned, glibc's malloc is set
# before any thread starts (host_memory). The release's side keeps the defaults its train.py has.
from adabins_jax import host_memory  # pylint: disable=g-bad-import-order
if '--train_side=ours' in sys.argv:
  host_memory.tune()

import jax  # pylint: disable=g-import-not-at-top
from flax import nnx
import numpy as np

try:
  import geffnet
  import torch
  from torch import nn
  from torch.nn import functional as F
except ImportError as error:  # pragma: no cover - depends on the environment
  raise SystemExit(f'{error}: this benchmark needs torch and geffnet '
                   '(pip install torch geffnet==1.0.2 --no-deps)') from error

from adabins_jax import compilation_cache
from adabins_jax import models
from adabins_jax import network_input
from adabins_jax import optim
from adabins_jax import steps
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax.configs import effnet_b5_256

_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load_file(path: pathlib.Path):
  """The module in the file ``path``, whichever folder the script runs from."""
  spec = importlib.util.spec_from_file_location(path.stem, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_release = _load_file(pathlib.Path(__file__).with_name('release_training.py'))
# The parity fixture's weights and reference outputs, as the tests build them.
fixture_weights = _load_file(_ROOT / 'tests' / 'helpers' / 'fixture_weights.py')
release_loss = _release.release_loss
release_optimizer = _release.release_optimizer
release_train_step = _release.release_train_step


class UpSampleBN(nn.Module):
  """Resize to the skip (align_corners), concatenate, (conv3x3-BN-LeakyReLU) twice."""

  def __init__(self, skip_input: int, output_features: int):
    super().__init__()
    self._net = nn.Sequential(
        nn.Conv2d(skip_input, output_features, 3, 1, 1), nn.BatchNorm2d(output_features),
        nn.LeakyReLU(),
        nn.Conv2d(output_features, output_features, 3, 1, 1), nn.BatchNorm2d(output_features),
        nn.LeakyReLU())

  def forward(self, x, skip):
    x = F.interpolate(x, size=skip.shape[2:], mode='bilinear', align_corners=True)
    return self._net(torch.cat([x, skip], dim=1))


class DecoderBN(nn.Module):
  """The release's decoder over B5 taps (24, 40, 64, 176, 2048 channels)."""

  def __init__(self, features: int = 2048, out_ch: int = 128):
    super().__init__()
    self.conv2 = nn.Conv2d(2048, features, 1, 1, padding=1)  # sic: padding 1 on a 1x1 conv
    self.up1 = UpSampleBN(features + 176, features // 2)
    self.up2 = UpSampleBN(features // 2 + 64, features // 4)
    self.up3 = UpSampleBN(features // 4 + 40, features // 8)
    self.up4 = UpSampleBN(features // 8 + 24, features // 16)
    self.conv3 = nn.Conv2d(features // 16, out_ch, 3, 1, 1)

  def forward(self, taps):
    block0, block1, block2, block3, block4 = (taps[i] for i in (4, 5, 6, 8, 11))
    x = self.conv2(block4)
    x = self.up1(x, block3)
    x = self.up2(x, block2)
    x = self.up3(x, block1)
    x = self.up4(x, block0)
    return self.conv3(x)


class Encoder(nn.Module):
  """Every intermediate output of the backbone, in module order (blocks one by one)."""

  def __init__(self, backbone: nn.Module):
    super().__init__()
    self.original_model = backbone

  def forward(self, x):
    taps = [x]
    for name, module in self.original_model._modules.items():
      children = module._modules.values() if name == 'blocks' else (module,)
      for child in children:
        taps.append(child(taps[-1]))
    return taps


class PatchTransformerEncoder(nn.Module):

  def __init__(self, in_ch: int, patch_size: int = 16, dim: int = 128, heads: int = 4):
    super().__init__()
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=1024)
    self.transformer_encoder = nn.TransformerEncoder(layer, num_layers=4,
                                                     enable_nested_tensor=False)
    self.embedding_convPxP = nn.Conv2d(in_ch, dim, patch_size, stride=patch_size)
    self.positional_encodings = nn.Parameter(torch.rand(500, dim))

  def forward(self, x):
    tokens = self.embedding_convPxP(x).flatten(2)
    tokens = tokens + self.positional_encodings[:tokens.shape[2], :].T.unsqueeze(0)
    return self.transformer_encoder(tokens.permute(2, 0, 1))  # (S, N, E)


class MiniViT(nn.Module):
  """The release's ``mViT`` with norm 'linear'."""

  def __init__(self, in_ch: int = 128, n_queries: int = 128, dim_out: int = 256, dim: int = 128):
    super().__init__()
    self.n_queries = n_queries
    self.patch_transformer = PatchTransformerEncoder(in_ch, 16, dim, 4)
    self.conv3x3 = nn.Conv2d(in_ch, dim, 3, 1, 1)
    self.regressor = nn.Sequential(nn.Linear(dim, 256), nn.LeakyReLU(), nn.Linear(256, 256),
                                   nn.LeakyReLU(), nn.Linear(256, dim_out))

  def forward(self, x):
    tokens = self.patch_transformer(x)
    x = self.conv3x3(x)
    queries = tokens[1:self.n_queries + 1].permute(1, 0, 2)  # (N, Q, E)
    n, c, h, w = x.shape
    maps = torch.matmul(x.view(n, c, h * w).permute(0, 2, 1), queries.permute(0, 2, 1))
    maps = maps.permute(0, 2, 1).reshape(n, self.n_queries, h, w)
    y = torch.relu(self.regressor(tokens[0])) + 0.1
    return y / y.sum(dim=1, keepdim=True), maps


class UnetAdaptiveBins(nn.Module):
  """EfficientNet-B5 (AdvProp) + DecoderBN + mViT, 256 bins in [1e-3, 10] m."""

  def __init__(self, n_bins: int = 256, min_val: float = 1e-3, max_val: float = 10.0):
    super().__init__()
    backbone = geffnet.create_model('tf_efficientnet_b5_ap', pretrained=False)
    backbone.global_pool, backbone.classifier = nn.Identity(), nn.Identity()
    self.min_val, self.max_val = min_val, max_val
    self.encoder = Encoder(backbone)
    self.adaptive_bins_layer = MiniViT(128, 128, n_bins, 128)
    self.decoder = DecoderBN(out_ch=128)
    self.conv_out = nn.Sequential(nn.Conv2d(128, n_bins, 1), nn.Softmax(dim=1))

  def forward(self, x):
    widths, maps = self.adaptive_bins_layer(self.decoder(self.encoder(x)))
    probs = self.conv_out(maps)
    widths = F.pad((self.max_val - self.min_val) * widths, (1, 0), value=self.min_val)
    edges = torch.cumsum(widths, dim=1)
    centres = 0.5 * (edges[:, :-1] + edges[:, 1:])
    return edges, torch.sum(probs * centres[:, :, None, None], dim=1, keepdim=True)


def release_model(state) -> UnetAdaptiveBins:
  """The release's model holding ``state`` (a ``state_dict`` of numpy arrays), strictly."""
  model = UnetAdaptiveBins()
  model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()},
                        strict=True)
  return model


def _rel_l2(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def jitted_forward(model):
  """``images (N, H, W, 3) -> (bin_edges, pred)`` of ``model``, jitted once per shape."""
  graphdef, state = nnx.split(model)
  forward = steps.make_forward(graphdef)
  return lambda images: forward(state, images)[:2]


def build_both(conv3x3_impls=('auto',)):
  """The PyTorch model and our jitted forward pass(es), all with the fixture's weights.

  Args:
    conv3x3_impls: one forward pass of ours per ``model.conv3x3_impl`` named.

  Returns:
    ``(torch_model, {impl: forward})``. Raises SystemExit if any misses the reference outputs.
  """
  state = fixture_weights.fixture_state_dict()
  torch_model = release_model(state).eval()
  reference = np.load(fixture_weights.B5_OUTPUTS)
  x = reference['input']
  with torch.no_grad():
    edges_t, pred_t = (t.numpy() for t in torch_model(torch.from_numpy(x)))
  errors = {
      'torch vs reference pred': _rel_l2(pred_t, reference['pred']),
      'torch vs reference bin_edges': _rel_l2(edges_t, reference['bin_edges']),
  }
  forwards = {}
  for impl in conv3x3_impls:
    config = effnet_b5_256.get_config()
    config.model.conv3x3_impl = impl
    ours = models.build_abstract_model(config.model)
    torch_mapping.load_state_dict(ours, state, source='parity fixture')
    ours.eval()
    forwards[impl] = jitted_forward(ours)
    edges_j, pred_j = (np.asarray(t) for t in forwards[impl](x.transpose(0, 2, 3, 1)))
    errors[f'ours ({impl}) vs torch pred'] = _rel_l2(pred_j.transpose(0, 3, 1, 2), pred_t)
    errors[f'ours ({impl}) vs torch bin_edges'] = _rel_l2(edges_j, edges_t)
  for name, error in errors.items():
    print(f'{name}: relative L2 {error:.1e}')
    if error > 2e-5:
      raise SystemExit(f'{name} differs by {error:.1e} (> 2e-5): not the same model')
  return torch_model, forwards


def _ours_for_training(state, config):
  model = models.build_abstract_model(config.model)
  torch_mapping.load_state_dict(model, state, source='parity fixture')
  return model


def check_first_loss(torch_model, state, image, depth, t_image, t_depth, impl,
                     tolerance=1e-4):
  """Both first-step losses, dropout off in both (BatchNorm in training mode); SystemExit if
  they differ by more than ``tolerance`` relative. ``t_image``, ``t_depth``: the batch in NCHW.
  On a CPU they agree exactly; GPU convolution algorithms differ by more (``_child_main``)."""
  probe = copy.deepcopy(torch_model).train()
  for module in probe.modules():
    if isinstance(module, nn.Dropout):
      module.p = 0.0
    elif isinstance(module, nn.MultiheadAttention):
      module.dropout = 0.0  # Its attention dropout is a float, not a module.
  with torch.no_grad():
    loss_torch = float(release_loss(probe, t_image, t_depth))
  del probe
  config = effnet_b5_256.get_config()
  config.model.conv3x3_impl, config.model.dropout_rate = impl, 0.0
  model = _ours_for_training(state, config)
  model.train()
  graphdef, params = nnx.split(model)
  loss_fn = jax.jit(lambda p, b: steps.train_loss(nnx.merge(graphdef, p), b,
                                                  **steps.train_loss_kwargs(config))[0])
  loss_jax = float(loss_fn(params, {'image': image, 'depth': depth}))
  error = abs(loss_jax - loss_torch) / abs(loss_torch)
  print(f'first-step loss, dropout off: release {loss_torch:.6f}, ours ({impl}) {loss_jax:.6f}, '
        f'relative difference {error:.1e}')
  if error > tolerance:
    raise SystemExit(f'losses differ by {error:.1e} (> {tolerance:g}): not the same training '
                     'objective')


def _release_runner(torch_model, config, t_image, t_depth, total_steps):
  """``step(i) -> loss`` of the release's training step on the NCHW batch."""
  optimizer, scheduler = release_optimizer(torch_model, config, total_steps)
  return lambda i: release_train_step(torch_model, optimizer, scheduler, t_image, t_depth,
                                      config.optim.grad_clip_norm)


def _ours_runner(state, config, image, depth, total_steps):
  """``(step(i) -> loss, compile seconds)`` of ``steps.make_train_step``."""
  model = _ours_for_training(state, config)
  optimizer = nnx.Optimizer(model, optim.create_optimizer(config.optim, total_steps),
                            wrt=nnx.Param)
  graphdef, train_state = nnx.split((model, optimizer))
  del model, optimizer  # The step donates the state: only the returned one may be used.
  step = steps.make_train_step(config, graphdef,
                               optim.learning_rate_schedule(config.optim, total_steps))
  batch = {'image': jax.device_put(image), 'depth': jax.device_put(depth)}
  start = time.perf_counter()
  compiled = step.lower(train_state, batch, jax.random.key(0)).compile()
  compile_s = time.perf_counter() - start
  carry = {'state': train_state}

  def run(i):
    carry['state'], metrics = compiled(carry['state'], batch, jax.random.key(i))
    return float(metrics['loss'])

  return run, compile_s


def _train_batch(args, height, width):
  rng = np.random.default_rng(0)
  image = rng.standard_normal((args.batch, height, width, 3)).astype(np.float32)
  depth = rng.uniform(0.5, 9.0, (args.batch, height, width, 1)).astype(np.float32)
  t_image, t_depth = (torch.from_numpy(a.transpose(0, 3, 1, 2).copy()).to(args.torch_device)
                      for a in (image, depth))
  return image, depth, t_image, t_depth


def _train_config(args):
  config = effnet_b5_256.get_config()
  config.model.conv3x3_impl = args.conv3x3_impls.split(',')[0]
  return config


def _time_one_side(args, height, width) -> dict:
  """This process's side (``--train_side``): warm-up and timed steps, compile, peak memory."""
  state = fixture_weights.fixture_state_dict()
  config = _train_config(args)
  image, depth, t_image, t_depth = _train_batch(args, height, width)
  total_steps = 1000  # Schedule length; only the first few steps run.
  compile_s = None
  if args.train_side == 'release':
    step = _release_runner(release_model(state).train().to(args.torch_device), config, t_image,
                           t_depth, total_steps)
  else:
    compilation_cache.enable(args.compilation_cache_dir, min_compile_time_s=0.0)
    step, compile_s = _ours_runner(state, config, image, depth, total_steps)
  del state
  times, warmup, faults = [], [], 0
  for i in range(args.warmup + args.repeats):
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    loss = step(i)
    (warmup if i < args.warmup else times).append(time.perf_counter() - start)
    if i >= args.warmup:  # Pages the step touched fresh (zeroed by the kernel).
      faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    if not np.isfinite(loss):
      raise SystemExit(f'{args.train_side}: non-finite loss at step {i}')
  # ru_maxrss is in KiB on Linux: the whole process's peak, as its users' training loop has.
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  peak_device = None
  if args.torch_device == 'cuda':
    peak_device = (torch.cuda.max_memory_allocated() if args.train_side == 'release'
                   else jax.devices()[0].memory_stats().get('peak_bytes_in_use'))
  return {'times': times, 'warmup': warmup, 'compile_s': compile_s, 'peak_rss': peak,
          'peak_device': peak_device, 'page_faults_per_step': faults / max(len(times), 1)}


def _child(args, side: str, out: pathlib.Path, cache_dir: str = '') -> dict:
  command = [sys.executable, __file__, '--train', f'--train_side={side}', f'--size={args.size}',
             f'--batch={args.batch}', f'--repeats={args.repeats}', f'--warmup={args.warmup}',
             f'--threads={args.threads}', f'--conv3x3_impls={args.conv3x3_impls}',
             f'--device={args.torch_device}',
             f'--compilation_cache_dir={cache_dir}', f'--child_output={out}']
  subprocess.run(command, check=True)
  return json.loads(out.read_text())


def benchmark_train(args, height, width):
  """Alternates one process per side per round (``--train``); prints the table."""
  with tempfile.TemporaryDirectory(prefix='adabins-train-bench-') as tmp:
    tmp = pathlib.Path(tmp)
    _child(args, 'check', tmp / 'check.json')
    rounds = []
    for r in range(args.rounds):
      print(f'round {r + 1} of {args.rounds}', flush=True)
      rounds.append({'release': _child(args, 'release', tmp / f'release{r}.json'),
                     'ours': _child(args, 'ours', tmp / f'ours{r}.json', str(tmp / 'xla'))})
  names = {'release': 'release (PyTorch)',
           'ours': f'adabins-jax (conv3x3_impl={_train_config(args).model.conv3x3_impl})'}
  times = {k: [t for r in rounds for t in r[k]['times']] for k in names}
  median = {k: statistics.median(v) for k, v in times.items()}
  print(f'\n{_machine()}, torch {torch.__version__} ({args.threads} threads), jax '
        f'{jax.__version__}; train step, batch {args.batch} at {height}x{width}; one process per '
        f'side per round, alternated, {args.rounds} rounds of {args.warmup} warm-up + '
        f'{args.repeats} timed steps; medians of {len(times["ours"])} steps')
  print(f'Device: {args.torch_device}; images/s = batch / median step.')
  print('| training step | s/step | images/s | / release | peak RSS (GB) | peak device (GB) '
        '| page faults/step | steps (s) |\n|---|---|---|---|---|---|---|---|')
  for key, name in names.items():
    peak = max(r[key]['peak_rss'] for r in rounds) / 1e9
    device = [r[key]['peak_device'] for r in rounds if r[key]['peak_device'] is not None]
    device = f'{max(device) / 1e9:.1f}' if device else '—'
    faults = statistics.median(r[key]['page_faults_per_step'] for r in rounds)
    print(f'| {name} | {median[key]:.3f} | {args.batch / median[key]:.1f} | '
          f'{median[key] / median["release"]:.2f}x | {peak:.1f} | {device} | {faults:,.0f} | '
          + ', '.join(f'{t:.3f}' for t in times[key]) + ' |')
  compiles = [r['ours']['compile_s'] for r in rounds]
  print(f'Our compile: {compiles[0]:.1f} s with an empty persistent cache; '
        + ', '.join(f'{c:.1f}' for c in compiles[1:]) + ' s with the cache filled.')


def _child_main(args, height, width):
  """One process of ``benchmark_train``: the loss check, or one side's timing."""
  if args.train_side == 'check':
    if args.torch_device == 'cuda':
      # Full float32 on both sides for the comparison; the timed runs keep each's defaults.
      torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
      jax.config.update('jax_default_matmul_precision', 'highest')
    state = fixture_weights.fixture_state_dict()
    image, depth, t_image, t_depth = _train_batch(args, height, width)
    # cuDNN's and XLA's GPU convolution algorithms sum in other orders, even in full float32.
    check_first_loss(release_model(state).train().to(args.torch_device), state, image, depth,
                     t_image, t_depth, _train_config(args).model.conv3x3_impl,
                     tolerance=1e-3 if args.torch_device == 'cuda' else 1e-4)
    result = {}
  else:
    result = _time_one_side(args, height, width)
  pathlib.Path(args.child_output).write_text(json.dumps(result))


def _machine() -> str:
  model_name = 'unknown CPU'
  try:
    with open('/proc/cpuinfo') as f:
      model_name = next(l.split(':', 1)[1].strip() for l in f if l.startswith('model name'))
  except (OSError, StopIteration):
    pass
  return f'{model_name}, {os.cpu_count()} cores'



def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--size', default='416x544', help='Input HxW.')
  parser.add_argument('--threads', type=int, default=os.cpu_count(), help='PyTorch threads.')
  parser.add_argument('--repeats', type=int, default=None,
                      help='Timed runs of each model (default 5), or with --train timed steps '
                           'per process (default 3).')
  parser.add_argument('--conv3x3_impls', default='auto',
                      help="Comma-separated model.conv3x3_impl values to time ours with, e.g. "
                           "'auto,xla' (Winograd vs XLA's convolution on CPU).")
  parser.add_argument('--train', action='store_true',
                      help='Time the training step (forward, loss, backward, clip, AdamW) '
                           'instead of inference; the first conv3x3_impls value is ours.')
  parser.add_argument('--batch', type=int, default=2, help='Training batch (--train).')
  parser.add_argument('--rounds', type=int, default=3,
                      help='--train: rounds of one process per side, alternated.')
  parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                      help="--train: PyTorch's device ('auto': CUDA when PyTorch sees a GPU); "
                           'ours runs on JAX\'s default backend.')
  parser.add_argument('--warmup', type=int, default=1,
                      help='--train: untimed steps at the start of each process.')
  # One process of --train (set by the parent): which side, where its result goes.
  parser.add_argument('--train_side', choices=('release', 'ours', 'check'), default=None,
                      help=argparse.SUPPRESS)
  parser.add_argument('--child_output', default=None, help=argparse.SUPPRESS)
  parser.add_argument('--compilation_cache_dir', default='', help=argparse.SUPPRESS)
  args = parser.parse_args()
  if args.repeats is None:
    args.repeats = 3 if args.train else 5
  args.torch_device = args.device if args.device != 'auto' else (
      'cuda' if torch.cuda.is_available() else 'cpu')
  height, width = network_input.parse_size(args.size, '--size')
  torch.set_num_threads(args.threads)
  if args.train and args.train_side:
    _child_main(args, height, width)
    return
  if args.train:
    benchmark_train(args, height, width)
    return
  torch_model, forwards = build_both(tuple(args.conv3x3_impls.split(',')))
  x = np.random.default_rng(0).standard_normal((1, 3, height, width)).astype(np.float32)
  x_torch, x_jax = torch.from_numpy(x), jax.device_put(x.transpose(0, 2, 3, 1))

  def run_torch():
    with torch.no_grad():
      torch_model(x_torch)

  runs = {'release (PyTorch, geffnet)': run_torch}
  for impl, forward in forwards.items():
    runs[f'adabins-jax (XLA, conv3x3_impl={impl})'] = (
        lambda forward=forward: jax.block_until_ready(forward(x_jax)))
  times = {name: [] for name in runs}
  for _ in range(2):  # Warm-up (ours compiled already at the default size, by the parity check).
    for fn in runs.values():
      fn()
  for _ in range(args.repeats):
    for name, fn in runs.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  median = {k: statistics.median(v) for k, v in times.items()}
  print(f'\n{jax.devices()[0].device_kind}, {os.cpu_count()} cores, torch {torch.__version__} '
        f'({args.threads} threads), jax {jax.__version__}, {height}x{width}, batch 1, '
        f'median of {args.repeats}; load average {os.getloadavg()[0]:.2f}')
  print('| model | s/image | / release | runs (s) |\n|---|---|---|---|')
  release = median['release (PyTorch, geffnet)']
  for name, values in times.items():
    print(f'| {name} | {median[name]:.3f} | {median[name] / release:.2f}x | '
          + ', '.join(f'{t:.2f}' for t in values) + ' |')


if __name__ == '__main__':
  main()
