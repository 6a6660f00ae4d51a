"""The released PyTorch weights: reading ``.pt`` files into the JAX models, and back.

  mapping   PyTorch names and layouts to the models' variables, with the key and shape checks
  release   what a released file's name says of its depth range, and the checks against it
  importer  a ``.pt`` to a checkpoint
  __main__  the command (``python -m adabins_jax.torch_weights``), which imports the others
            only once its flags are parsed
"""
