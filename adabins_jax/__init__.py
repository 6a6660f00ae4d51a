"""AdaBins monocular depth estimation in JAX.

``from adabins_jax import Predictor`` gives the in-memory API
(see ``inference.predictor.Predictor``).
"""


def __getattr__(name):
  # Lazy: importing the package (e.g. for its configs) does not load the model code.
  if name in ('Predictor', 'Prediction'):
    from adabins_jax.inference import predictor  # pylint: disable=g-import-not-at-top
    return getattr(predictor, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
