"""Swish (SiLU) whose gradient keeps only its input, as the release's memory-efficient swish.

``jax.nn.silu`` differentiated automatically keeps ``sigmoid(x)`` beside ``x`` for the backward
pass: in the EfficientNet encoder, one more full-size activation per swish. geffnet, which the
release's encoder comes from, recomputes the sigmoid in the backward pass instead; so does this.
"""

from __future__ import annotations

import jax

from adabins_jax.models import recompute


@jax.custom_vjp
def silu(x: jax.Array) -> jax.Array:
  """``x * sigmoid(x)``, the same numbers as ``jax.nn.silu``."""
  return jax.nn.silu(x)


def _silu_fwd(x):
  return jax.nn.silu(x), x


def _silu_bwd(x, cotangent):
  x = recompute.after(x, cotangent)  # Not merged with (and kept from) the forward's sigmoid.
  s = jax.nn.sigmoid(x)
  return (cotangent * s * (1 + x * (1 - s))).astype(x.dtype),


silu.defvjp(_silu_fwd, _silu_bwd)
