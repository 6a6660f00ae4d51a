"""Shape checks shared by host-side (numpy) and jitted (jax) code."""


def squeeze_channel(name: str, x, ndim: int):
  """``x`` without a trailing channel axis of size 1, checked to have ``ndim`` dimensions.

  Depth maps come as (..., H, W) or (..., H, W, 1); this gives (..., H, W) either way.

  Args:
    name: Names ``x`` in the error message.
    x: A numpy or jax array (under jit too: only its static shape is read).
    ndim: The dimensions wanted, without the channel axis.

  Raises:
    ValueError: ``x`` has another rank.
  """
  if x.ndim == ndim + 1 and x.shape[-1] == 1:
    x = x[..., 0]
  if x.ndim != ndim:
    raise ValueError(f'{name}: expected {ndim} dims (plus an optional trailing 1), got shape '
                     f'{x.shape}.')
  return x
