"""Values a custom gradient makes again in the backward pass, kept apart from the forward's.

A written-out backward pass that recomputes, say, the shifted copies of a saved input from that
input builds the same XLA instructions the forward pass built. XLA then merges the two (common
subexpression elimination) and keeps the forward pass's copies alive until the backward pass
reads them: the memory the recomputation was meant to save. ``jax.lax.optimization_barrier``
prevents that on accelerators, but XLA's CPU compiler removes barriers before the merge. A data
dependency on the cotangent, which the forward pass cannot have, keeps them apart everywhere.
"""

from __future__ import annotations

from typing import Any

import jax


def after(operands: Any, cotangent: jax.Array) -> Any:
  """``operands`` unchanged, but computed from ``cotangent`` (its first element times zero).

  XLA does not fold ``0 * c`` for floats (it is NaN for non-finite ``c``), so the result cannot
  be merged with the operands' uses in the forward pass. A non-finite cotangent makes the
  gradient non-finite either way, and training stops on a non-finite gradient.
  """
  zero = 0 * cotangent.reshape(-1)[0]
  return jax.tree.map(lambda x: x + zero.astype(x.dtype), operands)
