"""Export for deployment: the network as ONNX, TFLite, SavedModel or StableHLO files.

  exporter  the command (``python -m adabins_jax.export``): the served function and its checks
  formats   writing and loading each file format
"""
