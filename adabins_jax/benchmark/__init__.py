"""Speed and size of the models, measured on this machine.

  measure   parameters, sizes, images/s, compile time and FLOPs per config, beside the
            published numbers
  exported  the same network exported to each runtime: images/s, file size, depth error
  __main__  the command (``python -m adabins_jax.benchmark``), which imports the others only
            once its flags are parsed
"""
