"""Evaluation: the protocol over a whole split, its reporting, and the eval-only mode.

The protocol (flip averaging, clipping, crops, metrics) is the release's, described in
docs/reference.md; metrics.py computes it per batch.

``evaluate_model`` is shared by the training loop (every ``train.eval_every_steps``) and by
``evaluate(config, workdir)``, which restores a trained model and scores it::

  python -m adabins_jax.main --mode=eval --config=unet128 --workdir=runs/unet128
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import json
import os
from typing import Any

from absl import logging
from clu import metric_writers
from etils import epath
from flax import nnx
import jax
import numpy as np
import tqdm

from adabins_jax import checkpointing
from adabins_jax import files
from adabins_jax import input_pipeline
from adabins_jax import metrics as metrics_lib
from adabins_jax import models
from adabins_jax import parallel
from adabins_jax.configs import reference
from adabins_jax import steps
from adabins_jax.torch_weights import mapping as torch_mapping
from adabins_jax import visualize


def evaluate_model(eval_step: Callable[..., Any], model: nnx.Module,
                   dataset: Iterable[Mapping[str, np.ndarray]], mesh: jax.sharding.Mesh, *,
                   num_images_to_show: int = 0) -> tuple[dict[str, float], dict[str, np.ndarray]]:
  """Runs the protocol over a dataset; returns mean metrics and the first few predictions.

  Shows a progress bar (images done, images/s, time left) on process 0.

  Args:
    eval_step: From ``steps.make_eval_step`` for this model's graphdef.
    model: The model, its arrays placed on the mesh.
    dataset: Per-process batches with 'image', 'depth' and 'example_mask'.
    mesh: The data mesh.
    num_images_to_show: How many (image, ground truth, prediction) triples to return, taken
      from the first batch.

  Returns:
    (metrics, samples): metric means keyed 'd1', 'abs_rel', ... plus 'num_images', and numpy
    arrays 'image', 'depth', 'pred' of up to ``num_images_to_show`` examples (empty dict if 0).
  """
  _, state = nnx.split(model)
  total = metrics_lib.MetricSums.empty()
  samples = {}
  try:
    num_batches = len(dataset)
  except TypeError:  # A plain iterator: no total, the bar still counts and times.
    num_batches = None
  # Counted in images of the global batch, padding of the last one included.
  with tqdm.tqdm(unit='img', desc='eval', mininterval=1.0,
                 disable=jax.process_index() > 0) as bar:
    for batch in dataset:
      sums, pred = eval_step(state, parallel.shard_batch(batch, mesh))
      total = total.merge(sums)
      images = len(batch['image']) * jax.process_count()
      if bar.total is None and num_batches is not None:
        bar.total = num_batches * images
      bar.update(images)
      if num_images_to_show and not samples:
        # The global batch starts with this process's examples on process 0, whose pictures
        # are the ones written.
        n = min(num_images_to_show, len(batch['image']))
        samples = {'image': batch['image'][:n], 'depth': batch['depth'][:n],
                   'pred': parallel.fetch(pred)[:n]}
  results = parallel.fetch(total).compute()
  if not results['num_images']:
    raise ValueError('The evaluation split gave no image with a valid ground-truth pixel.')
  return results, samples


def write_results(writer: metric_writers.MetricWriter, step: int, results: Mapping[str, float],
                  samples: Mapping[str, np.ndarray], workdir: epath.Path,
                  max_depth_m: float) -> None:
  """Writes eval/... scalars, and the comparison strip to the writer and as a PNG.

  Only process 0 writes files; CLU writers of other processes only log.
  """
  writer.write_scalars(step, {f'eval/{k}': v for k, v in results.items()})
  if samples:
    # Rows of image | ground truth | prediction | abs-rel error.
    strip = visualize.comparison_strip(samples['image'], samples['depth'], samples['pred'],
                                       vmin=0.0, vmax=max_depth_m)
    writer.write_images(step, {'eval/predictions': strip[None]})
    if jax.process_index() == 0:
      visualize.save_png(workdir / f'eval_predictions_{step:08d}.png', strip)
  writer.flush()


def _columns(results: Mapping[str, float]) -> list[str]:
  """The paper's metrics in its order, then the optional boundary column when scored."""
  extra = [metrics_lib.BOUNDARY_NAME] if metrics_lib.BOUNDARY_NAME in results else []
  return list(metrics_lib.METRIC_NAMES) + extra


def format_table(results: Mapping[str, float]) -> str:
  """The metrics as a two-line table, in the paper's column order (boundary_f1 last)."""
  names = _columns(results)
  header = ' '.join(f'{n:>9}' for n in names)
  values = ' '.join(f'{results[n]:9.4f}' for n in names)
  return f'{header}\n{values}\n({int(results["num_images"])} images)'


def evaluate(config, workdir: str, weights: str | None = None, *,
             allow_unverified_checkpoint: bool = False) -> dict[str, float]:
  """Restores a trained model from ``workdir`` and scores it on ``config.data.eval_split``.

  Which checkpoint: ``config.eval.checkpoint`` ('best' by eval/abs_rel, 'latest' or a step),
  or a released PyTorch ``.pt`` given as ``weights`` (reported as step 0). Prints the metrics
  table and writes ``eval_<split>_step_<step>.json`` and eval/... scalars to the workdir.

  Args:
    config: The training run's config.
    workdir: The training run's folder; with ``weights``, where the results go.
    weights: A released PyTorch ``.pt`` to score instead of the workdir's checkpoints.
    allow_unverified_checkpoint: Score a step without ``checksums.json`` instead of refusing
      it (``checkpointing.restore_model``).

  Returns:
    The metric means, plus 'num_images' and 'step'.
  """
  workdir = epath.Path(workdir)
  mesh = parallel.create_mesh(config.train.num_devices or None)
  parallel.check_batch_size(config.eval.batch_size, mesh, 'eval.batch_size')
  # Shape-only until restored: random initialisation would only be overwritten.
  model = models.build_abstract_model(config.model, seed=config.seed)
  if weights:
    torch_mapping.load_torch_checkpoint(
        model, weights, allow_range_mismatch=config.model.allow_range_mismatch)
    nnx.update(model, parallel.replicate(nnx.state(model), mesh))
    step = 0
  else:
    step = checkpointing.restore_model(
        workdir, model, config.eval.checkpoint, sharding=parallel.replicated_sharding(mesh),
        model_config=config.model, allow_unverified=allow_unverified_checkpoint)
  dataset = input_pipeline.create_eval_dataset(config.data, config.eval.batch_size,
                                               with_focal=config.eval.camera_transform)
  with jax.set_mesh(mesh):
    results, samples = evaluate_model(
        steps.make_eval_step(config, nnx.graphdef(model)), model, dataset, mesh,
        num_images_to_show=config.eval.num_images_to_show)
  source = weights or f'step {step}'
  print(f'Evaluation of {source} on {config.data.dataset}/{config.data.eval_split}:\n'
        f'{format_table(results)}')
  writer = metric_writers.create_default_writer(
      workdir / 'eval', just_logging=jax.process_index() > 0)
  write_results(writer, step, results, samples, workdir, config.model.max_depth_m)
  writer.close()
  results['step'] = step
  if jax.process_index() == 0:
    path = workdir / f'eval_{config.data.eval_split}_step_{step}.json'
    files.write_bytes(path, json.dumps(results, indent=2, sort_keys=True).encode())
    logging.info('Wrote %s.', path)
    write_report(workdir, config.eval.reference, results,
                        workdir / f'eval_predictions_{step:08d}.png')
  return results


# Higher is better for these; lower for the other metrics.
_HIGHER_IS_BETTER = ('d1', 'd2', 'd3')


def _cell(value) -> str:
  return '—' if value is None else f'{value:.3f}'


def _reference(name: str | None) -> reference.Reference | None:
  if name and name not in reference.REFERENCE:
    raise ValueError(f'No published numbers named {name!r}; reference.REFERENCE has '
                     f'{", ".join(reference.REFERENCE)}.')
  return reference.REFERENCE.get(name) if name else None


def metrics_table(metrics: Mapping[str, float], reference_name: str | None) -> str:
  """Markdown table: this run, the published row ``reference_name`` and their difference."""
  names = _columns(metrics)
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
            f'{", ".join(reference.REFERENCE)} have them (docs/reference.md).')
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
