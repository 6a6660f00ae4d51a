"""benchmarks/torch_reference.py: its PyTorch model is the release's, so its timings compare like
with like. Needs geffnet (pip install geffnet==1.0.2 --no-deps), which the test extra leaves out
because its metadata pulls in torchvision."""

import pytest

from helpers import benchmark_scripts

pytest.importorskip('torch')
pytest.importorskip('geffnet', reason='needs geffnet: pip install geffnet==1.0.2 --no-deps')


@pytest.mark.slow  # Three full-size B5 models at 416x544: about a minute on 2 cores.
def test_reference_model_reproduces_the_fixture_and_matches_ours(capsys):
  module = benchmark_scripts.load('torch_reference')
  # Raises SystemExit if any model is off by more than 2e-5 (relative L2); ours runs its 3x3
  # convolutions both ways (Winograd on CPU under 'auto', and XLA's).
  _, forwards = module.build_both(('auto', 'xla'))
  assert set(forwards) == {'auto', 'xla'}
  printed = capsys.readouterr().out
  assert 'torch vs reference pred' in printed
  assert 'ours (auto) vs torch pred' in printed and 'ours (xla) vs torch pred' in printed
