"""Tests for adabins_jax.evaluate: the eval report's table, reference rows and picture."""

import numpy as np
import pytest

from adabins_jax import metrics as metrics_lib
from adabins_jax import evaluate
from adabins_jax import visualize

_METRICS = {'d1': 0.75, 'd2': 0.93, 'd3': 0.99, 'abs_rel': 0.15, 'sq_rel': 0.1, 'rmse': 0.5,
            'rmse_log': 0.2, 'log10': 0.06, 'silog': 15.0, 'num_images': 654, 'step': 1200}


def test_report_sets_the_run_beside_the_published_row(tmp_path):
  strip = tmp_path / 'eval_predictions_00001200.png'
  visualize.save_png(strip, np.zeros((4, 8, 3), np.uint8))
  path = evaluate.write_report(tmp_path, 'unet128', _METRICS, strip)
  text = path.read_text()
  assert path == tmp_path / 'report.md'
  assert text.startswith('# Evaluation of a unet128 model\n\n'
                         'checkpoint of step 1200, 654 images.')
  lines = text.splitlines()
  header = next(i for i, line in enumerate(lines) if line.startswith('| | d1 |'))
  assert lines[header] == '| | ' + ' | '.join(metrics_lib.METRIC_NAMES) + ' |'
  assert lines[header + 2].startswith('| this run | 0.750 | 0.930 | 0.990 | 0.150 |')
  assert lines[header + 3] == ('| variant study (U-Net, 128 bins) | 0.728 | 0.936 | 0.983 '
                               '| — | — | — | — | — | — |')
  # 0.750 - 0.728, 0.930 - 0.936, 0.990 - 0.983.
  assert lines[header + 4] == ('| difference | +0.022 | -0.006 | +0.007 | — | — | — | — | — '
                               '| — |')
  assert 'At least as good as the variant study on 2 of 3 published metrics (d1, d3).' in text
  assert '![sample predictions](eval_predictions_00001200.png)' in text


def test_paper_row_and_missing_strip(tmp_path):
  text = evaluate.write_report(tmp_path, 'effnet_b5_256', _METRICS, None).read_text()
  assert ('| paper (EfficientNet-B5 (paper), 256 bins) | 0.903 | 0.984 | 0.997 | 0.103 | — '
          '| 0.364 |') in text
  assert 'on 0 of 6 published metrics (none)' in text
  assert 'Sample predictions' not in text


def test_unknown_config_and_missing_metrics(tmp_path):
  text = evaluate.write_report(tmp_path, None, _METRICS, tmp_path / 'absent.png').read_text()
  assert '| this run |' in text and 'difference' not in text
  assert 'No published numbers' in text
  with pytest.raises(ValueError, match="No published numbers named 'unet512'"):
    evaluate.write_report(tmp_path, 'unet512', _METRICS, None)
  with pytest.raises(ValueError, match="lack \\['silog'\\]"):
    evaluate.write_report(tmp_path, 'unet128', {k: v for k, v in _METRICS.items() if k != 'silog'},
                        None)
