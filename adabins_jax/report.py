"""The evaluation report: a run's metrics beside the paper's / seed's numbers (SPEC 4), as markdown.

``write_report`` writes ``<workdir>/report.md`` after ``--mode=eval``; ``SEED_TABLE`` is also
the row list of the benchmark table (benchmark.py).
"""

from __future__ import annotations

from collections.abc import Mapping
import os

from etils import epath

from adabins_jax import files
from adabins_jax import metrics as metrics_lib

# SPEC 4, keyed by config file name: the seed study's rows (the paper's for B5). fps were
# measured on an RTX 2070 Super; size_mb is a training checkpoint (params + Adam state).
SEED_TABLE = {
    'effnet_b5_256': dict(model='EfficientNet-B5 (paper)', bins=256, source='paper',
                          d1=0.903, d2=0.984, d3=0.997, abs_rel=0.103, rmse=0.364, log10=0.044,
                          fps=11.53, size_mb=940.0),
    'effnet_b0_256': dict(model='EfficientNet-B0', bins=256, source='seed',
                          d1=0.836, d2=0.974, d3=0.995, fps=18.20, size_mb=326.0),
    'unet256': dict(model='U-Net', bins=256, source='seed',
                    d1=0.721, d2=0.932, d3=0.984, fps=27.04, size_mb=131.0),
    'unet128': dict(model='U-Net', bins=128, source='seed',
                    d1=0.728, d2=0.936, d3=0.983, fps=34.84, size_mb=130.0),
    'unet128_dws': dict(model='U-Net, depthwise separable', bins=128, source='seed',
                        d1=0.689, d2=0.919, d3=0.981, fps=34.85, size_mb=78.0),
    'unet128_dws_75': dict(model='U-Net, depthwise sep., 75% in', bins=128, source='seed',
                           d1=0.298, d2=0.627, d3=0.847, fps=52.3, size_mb=55.9),
}
# Higher is better for these; lower for the other metrics.
_HIGHER_IS_BETTER = ('d1', 'd2', 'd3')


# (model.name, n_bins, conv for U-Nets, data.input_scale) of each row's config; U-Nets must
# also have the seed's widths, so a resized variant (the smoke config) matches no row.
_SIGNATURES = {
    ('effnet_b5', 256, None, 1.0): 'effnet_b5_256',
    ('effnet_b0', 256, None, 1.0): 'effnet_b0_256',
    ('unet', 256, 'standard', 1.0): 'unet256',
    ('unet', 128, 'standard', 1.0): 'unet128',
    ('unet', 128, 'dws', 1.0): 'unet128_dws',
    ('unet', 128, 'dws', 0.75): 'unet128_dws_75',
}
_SEED_UNET_WIDTHS = (24, 48, 96, 192, 384)


def config_key(config) -> str | None:
  """The ``SEED_TABLE`` key of a config, recognised from its fields (None if it has no row).

  Evaluation gets the config, not its file name; the model fields tell the rows apart.
  """
  model = config.model
  is_unet = model.name == 'unet'
  if is_unet and tuple(model.unet_widths) != _SEED_UNET_WIDTHS:
    return None
  return _SIGNATURES.get((model.name, int(model.n_bins), model.conv if is_unet else None,
                          float(config.data.input_scale)))


def _cell(value) -> str:
  return '—' if value is None else f'{value:.3f}'


def metrics_table(metrics: Mapping[str, float], config_name: str | None) -> str:
  """Markdown table: this run, the reference row of ``config_name`` and their difference."""
  names = metrics_lib.METRIC_NAMES
  lines = ['| | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|',
           '| this run | ' + ' | '.join(_cell(metrics.get(n)) for n in names) + ' |']
  ref = SEED_TABLE.get(config_name or '')
  if ref:
    lines.append(f'| {ref["source"]} ({ref["model"]}, {ref["bins"]} bins) | '
                 + ' | '.join(_cell(ref.get(n)) for n in names) + ' |')
    diffs = [None if ref.get(n) is None or metrics.get(n) is None else metrics[n] - ref[n]
             for n in names]
    lines.append('| difference | ' + ' | '.join(
        '—' if d is None else f'{d:+.3f}' for d in diffs) + ' |')
  return '\n'.join(lines)


def _verdict(metrics: Mapping[str, float], config_name: str | None) -> str:
  ref = SEED_TABLE.get(config_name or '')
  if not ref:
    which = f'config {config_name!r}' if config_name else 'this config'
    return (f'No published numbers for {which}; reference rows exist for the configs '
            f'{", ".join(SEED_TABLE)}.')
  better = [n for n in metrics_lib.METRIC_NAMES if ref.get(n) is not None
            and metrics.get(n) is not None
            and (metrics[n] >= ref[n] if n in _HIGHER_IS_BETTER else metrics[n] <= ref[n])]
  known = [n for n in metrics_lib.METRIC_NAMES if ref.get(n) is not None]
  return (f'At least as good as the {ref["source"]} on {len(better)} of {len(known)} published '
          f'metrics ({", ".join(better) or "none"}).')


def write_report(workdir: str | os.PathLike, config_name: str | None,
                 metrics: Mapping[str, float], strip_path: str | os.PathLike | None) -> epath.Path:
  """Writes ``<workdir>/report.md``: metrics beside SPEC 4's numbers, and the sample strip.

  Args:
    workdir: The run's folder.
    config_name: A ``SEED_TABLE`` key (config file name such as 'unet128', or a path to one);
      see ``config_key``. Unknown names get the table without a reference row.
    metrics: Metric means keyed by ``metrics.METRIC_NAMES``, optionally 'num_images', 'step'.
    strip_path: The image | ground truth | prediction | error picture, or None.

  Returns:
    The report's path.
  """
  workdir = epath.Path(workdir)
  if config_name:
    config_name = os.path.splitext(os.path.basename(os.fspath(config_name)))[0]
  missing = [n for n in metrics_lib.METRIC_NAMES if n not in metrics]
  if missing:
    raise ValueError(f'write_report: metrics lack {missing}; got {sorted(metrics)}.')
  title = config_name or 'a config without published numbers'
  facts = []
  if 'step' in metrics:
    facts.append(f'checkpoint of step {int(metrics["step"])}')
  if 'num_images' in metrics:
    facts.append(f'{int(metrics["num_images"])} images')
  parts = [f'# Evaluation of {title}', '', ', '.join(facts) + '.' if facts else '', '',
           metrics_table(metrics, config_name), '', _verdict(metrics, config_name), '']
  if strip_path is not None and os.path.exists(os.fspath(strip_path)):
    relative = os.path.relpath(os.fspath(strip_path), os.fspath(workdir))
    parts += ['## Sample predictions', '',
              'Rows: image | ground truth | prediction | abs-rel error (0 to 0.5).', '',
              f'![sample predictions]({relative})', '']
  path = workdir / 'report.md'
  files.write_bytes(path, '\n'.join(parts).encode())
  return path
