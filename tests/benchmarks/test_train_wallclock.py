"""benchmarks/train_wallclock.py: the step time is the slope of whole-process wall times."""

import sys

from helpers import benchmark_scripts


def test_slope_of_alternated_runs_gives_each_sides_step_and_ratio(monkeypatch, capsys):
  module = benchmark_scripts.load('train_wallclock')
  # Start-up and compile differ per side and cancel; the step is what each added run costs.
  startup, step = {'release': 10.0, 'ours': 50.0}, {'release': 17.5, 'ours': 11.5}
  order = []

  def fake_wall(side, steps, args, cache_dir, out):
    noise = 0.5 if (side, steps) in order else -0.5  # Cancels in the medians of 2 rounds.
    order.append((side, steps))
    return startup[side] + step[side] * steps + noise

  monkeypatch.setattr(module, '_wall', fake_wall)
  monkeypatch.setattr(sys, 'argv', ['train_wallclock.py', '--rounds=2', '--threads=2'])
  module.main()
  out = capsys.readouterr().out
  assert '| release (PyTorch) | 45.0 | 115.0 | 17.50 | 1.00x |' in out
  assert '| adabins-jax | 73.0 | 119.0 | 11.50 | 0.66x |' in out
  # The cache is filled first; then release and ours alternate, short runs before long ones.
  assert order[:5] == [('ours', 1), ('release', 2), ('ours', 2), ('release', 6), ('ours', 6)]
