"""benchmarks/torch_reference.py: its PyTorch model is the release's, so its timings compare like
with like. Needs geffnet (pip install geffnet==1.0.2 --no-deps), which the test extra leaves out
because its metadata pulls in torchvision."""

import importlib.util
import pathlib

import pytest

pytest.importorskip('torch')
pytest.importorskip('geffnet', reason='needs geffnet: pip install geffnet==1.0.2 --no-deps')

_SCRIPT = pathlib.Path(__file__).resolve().parents[1] / 'benchmarks' / 'torch_reference.py'


@pytest.mark.slow  # Both full-size B5 models at 416x544: about a minute on 2 cores.
def test_reference_model_reproduces_the_fixture_and_matches_ours(capsys):
  spec = importlib.util.spec_from_file_location('torch_reference', _SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  # Raises SystemExit if either model is off by more than 2e-5 (relative L2).
  module.build_both()
  printed = capsys.readouterr().out
  assert 'torch vs reference pred' in printed and 'ours vs torch pred' in printed
