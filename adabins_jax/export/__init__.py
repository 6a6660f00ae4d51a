"""Export for deployment: the network as ONNX, TFLite, SavedModel or StableHLO files.

  exporter  the served function, its signature and the export call
  options   what an export can be asked for (formats, size, batch, quantisation), checked
            without JAX
  formats   writing and loading each file format
  __main__  the command (``python -m adabins_jax.export``): checks its flags and the weights,
            then imports the rest
"""
