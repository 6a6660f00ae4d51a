"""The decoder convolutions of the paper model, one by one: XLA, Winograd, PyTorch (if installed).

  python benchmarks/decoder_convs.py

The nine 3x3 convolutions of the B5 decoder at a 416x544 input carry 227 of the model's 272
GFLOP. Each is timed at its real shape (batch 1) as ``lax.conv_general_dilated`` in NHWC, as our
Winograd F(4x4, 3x3) (``models.winograd.conv3x3``, kernel transform included) and, with PyTorch,
as ``conv2d`` in NCHW and channels-last with every core; median of 3 after a warm-up. Prints
milliseconds and GFLOP/s (of the direct convolution's FLOPs) per convolution and the totals,
and marks the layers where ``conv3x3_impl='auto'`` picks Winograd.
"""

from __future__ import annotations

import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from adabins_jax.models import layers
from adabins_jax.models import winograd

try:
  import torch
except ImportError:  # pragma: no cover - depends on the environment
  torch = None

# (height, width, in channels, out channels) of up1..up4 (two convolutions each) and conv3.
SHAPES = ((26, 34, 2224, 1024), (26, 34, 1024, 1024), (52, 68, 1088, 512), (52, 68, 512, 512),
          (104, 136, 552, 256), (104, 136, 256, 256), (208, 272, 280, 128),
          (208, 272, 128, 128), (208, 272, 128, 128))


def _median_seconds(fn, repeats: int = 3) -> float:
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


@jax.jit
def _conv(x, w):
  return jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)),
                                      dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


_winograd = jax.jit(winograd.conv3x3)


def main():
  if torch is not None:
    torch.set_num_threads(os.cpu_count())
  rng = np.random.default_rng(0)
  totals = {}
  auto_total = 0.0
  columns = ['XLA ms (GFLOP/s)', 'Winograd']
  columns += ['PyTorch NCHW', 'PyTorch channels-last'] if torch else []
  print('| shape | GFLOP | ' + ' | '.join(columns) + ' |')
  for h, w, cin, cout in SHAPES:
    gflop = 2 * h * w * cin * cout * 9 / 1e9
    x = rng.random((1, h, w, cin), np.float32)
    k = (rng.standard_normal((3, 3, cin, cout)) / np.sqrt(9 * cin)).astype(np.float32)
    xj, kj = jnp.asarray(x), jnp.asarray(k)
    times = {'xla': _median_seconds(lambda: _conv(xj, kj).block_until_ready()),
             'winograd': _median_seconds(lambda: _winograd(xj, kj).block_until_ready())}
    auto = layers._use_winograd('auto', xj.shape, xj.dtype, cin, cout)
    if torch is not None:
      xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
      kt = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
      xc = xt.to(memory_format=torch.channels_last)
      with torch.no_grad():
        times['torch'] = _median_seconds(lambda: torch.nn.functional.conv2d(xt, kt, padding=1))
        times['torch_cl'] = _median_seconds(
            lambda: torch.nn.functional.conv2d(xc, kt, padding=1))
    for name, t in times.items():
      totals[name] = totals.get(name, 0.0) + t
    auto_total += times['winograd' if auto else 'xla']
    cells = ' | '.join(f'{1e3 * t:.0f} ({gflop / t:.0f})' for t in times.values())
    print(f"| {h}x{w} {cin}->{cout}{' (auto: Winograd)' if auto else ''} | {gflop:.1f} | {cells} |")
  print('| total | | ' + ' | '.join(f'{1e3 * t:.0f} ms' for t in totals.values()) + ' |')
  print(f"conv3x3_impl='auto' (the better per layer, as chosen): {1e3 * auto_total:.0f} ms")
  print(f'{jax.devices()[0].device_kind}, {os.cpu_count()} cores, jax {jax.__version__}'
        + (f', torch {torch.__version__}' if torch else '')
        + f', load average {os.getloadavg()[0]:.2f}')


if __name__ == '__main__':
  main()
