"""Code the tests share; tests/ is on sys.path (tests/conftest.py), so ``from helpers import x``.

- stand_ins: a tiny model honouring the model contract, synthetic batches, the tiny-rooms
  config, and runs or .pt files written from a model.
- fixture_weights: the parity fixtures' deterministic weights (tests/fixtures).
- kitti_layout: a tiny KITTI folder in the raw-data layout.
- app_server: the web demo as a server process: started, waited for, stopped.
- benchmark_scripts: the scripts under benchmarks/, loaded by file name.
- train_program: the program test_train runs in a child process.
"""
