"""Times the two depthwise-convolution implementations (and PyTorch's, if installed).

  python benchmarks/depthwise.py            # on whatever backend JAX picks

Prints median milliseconds over repeated runs (compile and warm-up excluded) for the forward
pass at the shapes in ``CASES``, and forward+backward, for XLA's grouped convolution
('xla') and the sum of shifted copies ('shifted'); 'auto' in the models picks the faster per
backend.
"""

from __future__ import annotations

import statistics
import time

import jax
import jax.numpy as jnp
from flax import nnx

from adabins_jax.models import layers

CASES = (  # (name, input shape NHWC, kernel, stride, with backward)
    ('3x3 fwd 1x208x272x256', (1, 208, 272, 256), 3, 1, False),
    ('5x5 fwd 1x104x136x512', (1, 104, 136, 512), 5, 1, False),
    ('3x3/2 fwd 1x208x272x256', (1, 208, 272, 256), 3, 2, False),
    ('3x3 fwd+bwd 2x120x160x128', (2, 120, 160, 128), 3, 1, True),
)


def _time(fn, *args, repeats: int = 10) -> float:
  jax.block_until_ready(fn(*args))  # Compile and warm up.
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def _jax_fn(impl, channels, kernel, stride, backward):
  conv = layers.Conv(channels, channels, kernel, strides=stride, groups=channels,
                     use_bias=False, depthwise_impl=impl, rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(conv)
  forward = lambda s, x: nnx.merge(graphdef, s)(x)
  if not backward:
    return jax.jit(forward), state
  loss = lambda s, x: jnp.sum(forward(s, x) ** 2)
  return jax.jit(jax.grad(loss, argnums=(0, 1))), state


def _torch_ms(shape, kernel, stride, backward):
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return float('nan')
  n, h, w, c = shape
  conv = torch.nn.Conv2d(c, c, kernel, stride, kernel // 2, groups=c, bias=False)
  x = torch.randn(n, c, h, w, requires_grad=backward)
  def run():
    out = conv(x)
    if backward:
      (out ** 2).sum().backward()
  run()
  times = []
  for _ in range(10):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return 1e3 * statistics.median(times)


def main():
  print(f'backend: {jax.default_backend()}, devices: {jax.devices()}')
  print('| case | xla ms | shifted ms | speed-up | torch ms (CPU) | max rel diff |')
  print('|---|---|---|---|---|---|')
  for name, shape, kernel, stride, backward in CASES:
    x = jax.random.normal(jax.random.key(0), shape)
    results, outputs = {}, {}
    for impl in ('xla', 'shifted'):
      fn, state = _jax_fn(impl, shape[-1], kernel, stride, backward)
      results[impl] = _time(fn, state, x)
      outputs[impl] = jax.tree.leaves(fn(state, x))
    diff = max(float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(a)))
               for a, b in zip(outputs['xla'], outputs['shifted']))
    on_cpu = jax.default_backend() == 'cpu'
    torch_ms = _torch_ms(shape, kernel, stride, backward) if on_cpu else float('nan')
    print(f'| {name} | {results["xla"]:.1f} | {results["shifted"]:.1f} | '
          f'{results["xla"] / results["shifted"]:.1f}x | {torch_ms:.1f} | {diff:.2e} |')


if __name__ == '__main__':
  main()
