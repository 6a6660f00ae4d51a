"""Depth for users' photos and clips: the ``Predictor`` API, the predict command, the web demo.

  predictor     ``Predictor(config, weights=...)(image)``: depth in metres from Python
  predict       ``--mode=predict``: files, folders and globs to depth files
  flags         the predict command's flags, declared without importing the prediction code
  input_files   which files a prediction reads, and the names of their outputs
  network       the network as prediction runs it: input, program, post-processing
  photos        decoding users' images to RGB in [0, 1]
  camera        the pinhole camera behind a depth map: the training camera's, scaled
  focal         a photo's focal length (given, a field of view, or EXIF) and the depth rescale
  output_files  depth as .npy, 16-bit PNG, colour, strips and point clouds
  video         clips in, per-frame depth and a coloured clip out
  runtimes      the network as an exported file run by LiteRT or ONNX Runtime
  app           the web demo's command, which imports gradio and JAX once its flags are parsed
  page          the web demo's page (gradio)
"""
