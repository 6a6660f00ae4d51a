"""``python -m adabins_jax.torch_weights``: see ``importer``."""

from adabins_jax.torch_weights import importer

if __name__ == '__main__':
  importer.run()
