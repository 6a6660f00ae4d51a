"""``python -m adabins_jax.benchmark``: see ``measure``."""

from adabins_jax.benchmark import measure

if __name__ == '__main__':
  measure.run()
