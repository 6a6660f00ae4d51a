"""``python -m adabins_jax.export``: see ``exporter``."""

from adabins_jax.export import exporter

if __name__ == '__main__':
  exporter.run()
