"""The evaluation report: a run's metrics beside the published ones for its config, as markdown.

``write_report`` writes ``<workdir>/report.md`` after ``--mode=eval``. The published numbers
come from ``reference.REFERENCE``, through the row the config names in ``eval.reference``.
"""

from __future__ import annotations

from collections.abc import Mapping
import os

from etils import epath

from adabins_jax import files
from adabins_jax import metrics as metrics_lib
from adabins_jax import reference as reference_lib

# Higher is better for these; lower for the other metrics.
_HIGHER_IS_BETTER = ('d1', 'd2', 'd3')


def _cell(value) -> str:
  return '—' if value is None else f'{value:.3f}'


def _reference(name: str | None) -> reference_lib.Reference | None:
  if name and name not in reference_lib.REFERENCE:
    raise ValueError(f'No published numbers named {name!r}; reference.REFERENCE has '
                     f'{", ".join(reference_lib.REFERENCE)}.')
  return reference_lib.REFERENCE.get(name) if name else None


def metrics_table(metrics: Mapping[str, float], reference_name: str | None) -> str:
  """Markdown table: this run, the published row ``reference_name`` and their difference."""
  names = metrics_lib.METRIC_NAMES
  lines = ['| | ' + ' | '.join(names) + ' |', '|---' * (len(names) + 1) + '|',
           '| this run | ' + ' | '.join(_cell(metrics.get(n)) for n in names) + ' |']
  ref = _reference(reference_name)
  if ref:
    published = ref.metrics
    lines.append(f'| {ref.source} ({ref.model}, {ref.bins} bins) | '
                 + ' | '.join(_cell(published.get(n)) for n in names) + ' |')
    diffs = [None if n not in published or metrics.get(n) is None else metrics[n] - published[n]
             for n in names]
    lines.append('| difference | ' + ' | '.join(
        '—' if d is None else f'{d:+.3f}' for d in diffs) + ' |')
  return '\n'.join(lines)


def _verdict(metrics: Mapping[str, float], reference_name: str | None) -> str:
  ref = _reference(reference_name)
  if not ref:
    return ('No published numbers for this config (eval.reference is unset); the configs '
            f'{", ".join(reference_lib.REFERENCE)} have them (docs/reference.md).')
  published = ref.metrics
  known = [n for n in metrics_lib.METRIC_NAMES if n in published]
  better = [n for n in known if metrics.get(n) is not None
            and (metrics[n] >= published[n] if n in _HIGHER_IS_BETTER
                 else metrics[n] <= published[n])]
  return (f'At least as good as the {ref.source} on {len(better)} of {len(known)} published '
          f'metrics ({", ".join(better) or "none"}).')


def write_report(workdir: str | os.PathLike, reference_name: str | None,
                 metrics: Mapping[str, float], strip_path: str | os.PathLike | None) -> epath.Path:
  """Writes ``<workdir>/report.md``: metrics beside the published ones, and the sample strip.

  Args:
    workdir: The run's folder.
    reference_name: A key of ``reference.REFERENCE`` (the config's ``eval.reference``), or
      None for the table without a published row.
    metrics: Metric means keyed by ``metrics.METRIC_NAMES``, optionally 'num_images', 'step'.
    strip_path: The image | ground truth | prediction | error picture, or None.

  Returns:
    The report's path.

  Raises:
    ValueError: if ``metrics`` lacks a metric or ``reference_name`` names no row.
  """
  workdir = epath.Path(workdir)
  missing = [n for n in metrics_lib.METRIC_NAMES if n not in metrics]
  if missing:
    raise ValueError(f'write_report: metrics lack {missing}; got {sorted(metrics)}.')
  title = (f'a {reference_name} model' if reference_name
           else 'a model without published numbers')
  facts = []
  if 'step' in metrics:
    facts.append(f'checkpoint of step {int(metrics["step"])}')
  if 'num_images' in metrics:
    facts.append(f'{int(metrics["num_images"])} images')
  parts = [f'# Evaluation of {title}', '', ', '.join(facts) + '.' if facts else '', '',
           metrics_table(metrics, reference_name), '', _verdict(metrics, reference_name), '']
  if strip_path is not None and os.path.exists(os.fspath(strip_path)):
    relative = os.path.relpath(os.fspath(strip_path), os.fspath(workdir))
    parts += ['## Sample predictions', '',
              'Rows: image | ground truth | prediction | abs-rel error (0 to 0.5).', '',
              f'![sample predictions]({relative})', '']
  path = workdir / 'report.md'
  files.write_bytes(path, '\n'.join(parts).encode())
  return path
