"""The training loop: ``train_and_evaluate(config, workdir)``.

Resumes from the workdir's latest checkpoint by itself, logs train/... scalars every
``train.log_every_steps``, runs the full evaluation protocol every ``train.eval_every_steps``
(and at the end), checkpoints every ``train.checkpoint_every_steps``. SIGTERM or SIGINT
saves a checkpoint and raises ``errors.Interrupted`` (main then exits with 128 + the signal's
number); a non-finite loss stops with an error and leaves the last good checkpoint in place.
One run at a time may train in a workdir (``workdir_lock``)::

  python -m adabins_jax.main --config=configs/unet128.py --workdir=runs/unet128
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import dataclasses
import gc
import signal
import threading
import time
from typing import Any

from absl import logging
from clu import metric_writers
from clu import periodic_actions
from etils import epath
from flax import nnx
import jax
import ml_collections
import numpy as np
import optax

from adabins_jax import checkpointing
from adabins_jax.configs import validation as config_validation
from adabins_jax import errors
from adabins_jax import evaluate
from adabins_jax import input_pipeline
from adabins_jax import models
from adabins_jax import optim
from adabins_jax import parallel
from adabins_jax import steps
from adabins_jax import workdir_lock


def total_train_steps(config) -> int:
  """``train.num_steps`` if positive, else ``train.num_epochs`` passes over the train split."""
  if config.train.num_steps > 0:
    return int(config.train.num_steps)
  builder = input_pipeline.get_builder(config.data)
  num_examples = builder.info.splits[config.data.train_split].num_examples
  steps_per_epoch = num_examples // config.train.batch_size
  if steps_per_epoch < 1:
    raise ValueError(f'train.batch_size={config.train.batch_size} exceeds the {num_examples} '
                     f'examples of {config.data.dataset}/{config.data.train_split}.')
  return int(config.train.num_epochs * steps_per_epoch)


class _StopSignal(contextlib.AbstractContextManager):
  """Turns SIGTERM / SIGINT into a flag the loop polls, so it can save before exiting.

  With several processes JAX's preemption service owns SIGTERM and agrees on a step at which
  every process saves (``manager.reached_preemption``); handlers here would break that.
  """

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def __enter__(self):
    if jax.process_count() == 1:
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    del frame
    logging.warning('Received %s; stopping after this step.', signal.Signals(signum).name)
    self.received = signum

  def __exit__(self, *exc_info):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _TrainLog:
  """Averages train metrics between log steps; stops at the first non-finite loss.

  Each step's metrics are read one step late, so reading never stalls the device queue.
  """

  def __init__(self, writer: metric_writers.MetricWriter):
    self._writer = writer
    self._pending: tuple[int, Any] | None = None
    self._sums: dict[str, float] = {}
    self._count = 0

  def push(self, step: int, metrics: Any) -> None:
    self.sync()
    self._pending = (step, metrics)

  def sync(self) -> None:
    """Reads the pending step's metrics.

    Raises:
      errors.DivergedError: the step's loss, gradient or updated weights are not finite.
    """
    if self._pending is None:
      return
    step, metrics = self._pending
    self._pending = None
    metrics = jax.tree.map(float, parallel.fetch(metrics))
    # A finite loss with a non-finite gradient, or finite gradients with a non-finite
    # learning rate, would still poison the weights.
    bad = [k for k in ('loss', 'grad_norm', 'param_norm') if not np.isfinite(metrics[k])]
    if bad:
      raise errors.DivergedError(
          f'Training diverged at step {step}: {", ".join(bad)} not finite ({metrics}). Stopped '
          'without saving it; the checkpoints in the workdir are from before it. Lower '
          'optim.learning_rate or check the data.')
    for key, value in metrics.items():
      self._sums[key] = self._sums.get(key, 0.0) + value
    self._count += 1

  def write(self, step: int) -> None:
    self.sync()
    if self._count:
      self._writer.write_scalars(
          step, {f'train/{k}': v / self._count for k, v in self._sums.items()})
    self._sums, self._count = {}, 0


def _build(config, mesh, tx: optax.GradientTransformation, params_key: jax.Array,
           dropout_key: jax.Array) -> tuple[nnx.Module, nnx.Optimizer]:
  """Model and optimizer (``tx``), initialised at random, replicated over the mesh."""
  model = models.build_model(config.model, rngs=nnx.Rngs(params=params_key, dropout=dropout_key))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  nnx.update((model, optimizer), parallel.replicate(nnx.state((model, optimizer)), mesh))
  return model, optimizer


def _shape_only(config, tx: optax.GradientTransformation, params_key: jax.Array,
                dropout_key: jax.Array) -> tuple[nnx.Module, nnx.Optimizer]:
  """The model and optimizer with shape-only arrays (concrete RNG streams), as ``_build``
  makes them with the same ``tx``: the train step's shapes (and graph: the same ``tx`` object),
  and the target a checkpoint restores into."""
  model = models.build_abstract_model(
      config.model, seed=config.seed, rngs=nnx.Rngs(params=params_key, dropout=dropout_key))
  optimizer = nnx.eval_shape(lambda m: nnx.Optimizer(m, tx, wrt=nnx.Param), model)
  return model, optimizer


def _restore_or_build(config, mesh, tx: optax.GradientTransformation, manager, shapes,
                      params_key: jax.Array,
                      dropout_key: jax.Array) -> tuple[nnx.Module, nnx.Optimizer, int]:
  """The model, its optimizer and the step restored: from the workdir's latest good checkpoint
  if it has one (into ``shapes``, ``_shape_only``'s), else initialised at random (step 0).

  A resume restores into shape-only arrays: initialising the paper model at random first takes
  tens of seconds on a CPU (a program per weight shape), only to be overwritten.
  """
  if manager.latest_step() is not None:
    model, optimizer = shapes
    step = checkpointing.restore(manager, model, optimizer, model_config=config.model,
                                 sharding=parallel.replicated_sharding(mesh))
    if step:
      # Not in the checkpoint: the dropout streams, which every step reseeds.
      nnx.update(model, parallel.replicate(nnx.state(model, nnx.RngState), mesh))
      return model, optimizer, step
  # No checkpoint, or none that passed its checksums (set aside by restore).
  return *_build(config, mesh, tx, params_key, dropout_key), 0


class _CompileAhead:
  """Traces, lowers and compiles the train step (or loads it from the persistent compilation
  cache) on a thread of its own, from the shapes of its arguments, while the main thread builds
  or restores the model and starts the input pipeline. The first step's call then finds the
  program in ``jax.jit``'s cache; where the shapes guessed differ from the real ones it
  compiles anew, as it would have anyway.
  """

  def __init__(self, train_step, state, batch, dropout_key: jax.Array,
               mesh: jax.sharding.Mesh):
    self._started = time.perf_counter()
    # Not a daemon: the interpreter must not exit while XLA compiles on it (that crashes).
    self._thread = threading.Thread(target=self._run, name='compile_train_step',
                                    args=(train_step, state, batch, dropout_key, mesh))
    self._thread.start()

  def _run(self, train_step, state, batch, dropout_key, mesh):
    try:
      with jax.set_mesh(mesh):
        # A step's key as the loop makes it: its type names the mesh it was made under.
        rng = jax.random.fold_in(dropout_key, 0)
        with _gc_paused():
          traced = train_step.trace(state, batch, rng)
        traced.lower().compile()
      logging.info('Train step compiled, or loaded from the persistent compilation cache, in '
                   '%.1f s, beside the model set-up.', time.perf_counter() - self._started)
    except Exception as e:  # pylint: disable=broad-except  # The first step raises it again.
      logging.info('Compiling the train step ahead failed (%s); the first step compiles it.', e)

  def wait(self) -> None:
    """Returns once the thread is done; a process must not exit while XLA compiles on it."""
    if self._thread.is_alive():
      logging.info('Waiting for the train step to finish compiling.')
      self._thread.join()


def _compile_ahead(config, mesh, train_step, shapes, dropout_key: jax.Array) -> _CompileAhead:
  replicated = parallel.replicated_sharding(mesh)

  def spec(x, sharding):
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding,
                                weak_type=getattr(x, 'weak_type', False))

  state = jax.tree.map(lambda x: spec(x, replicated), nnx.state(shapes))
  batch = jax.tree.map(lambda x: spec(x, parallel.batch_sharding(mesh)),
                       input_pipeline.train_batch_shapes(config.data, config.train.batch_size))
  return _CompileAhead(train_step, state, batch, dropout_key, mesh)


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
  """Trains (or resumes training) in ``workdir``; returns the last evaluation's metrics.

  Args:
    config: The full config (configs/default.py).
    workdir: Folder for checkpoints, TensorBoard events and prediction PNGs.

  Raises:
    ValueError: The config is invalid (every bad field named), before anything is built.
    errors.WorkdirBusyError: Another run is training in ``workdir``.
    errors.Interrupted: SIGTERM or SIGINT arrived; the step reached is saved.
    errors.CheckpointError: A save failed (e.g. the disk is full).
  """
  config_validation.validate(config)
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  with _hold(workdir):
    return _train(config, workdir)


@contextlib.contextmanager
def _hold(workdir: epath.Path):
  """Process 0 locks the workdir; every process learns at once if it could not."""
  lock = workdir_lock.WorkdirLock(workdir)
  error = None
  if jax.process_index() == 0:
    try:
      lock.acquire()
    except errors.WorkdirBusyError as e:
      error = e
  if jax.process_count() > 1:
    busy = parallel.broadcast_from_process_0(error is not None)
    if busy and error is None:
      error = errors.WorkdirBusyError(f'{workdir} is in use by another run (see the '
                                            'message of process 0).')
  if error is not None:
    raise error
  try:
    yield
  finally:
    lock.release()


def _train(config, workdir: epath.Path) -> dict[str, float]:
  mesh = parallel.create_mesh(config.train.num_devices or None)
  parallel.check_batch_size(config.train.batch_size, mesh, 'train.batch_size')
  parallel.check_batch_size(config.eval.batch_size, mesh, 'eval.batch_size')
  writer = metric_writers.create_default_writer(workdir, just_logging=jax.process_index() > 0)
  total_steps = total_train_steps(config)
  manager = checkpointing.create_manager(
      workdir, keep_latest=config.train.keep_checkpoints,
      keep_best=config.train.keep_best_checkpoints,
      save_every_steps=config.train.checkpoint_every_steps)
  params_key, dropout_key = jax.random.split(jax.random.key(config.seed))
  tx = optim.create_optimizer(config.optim, total_steps)
  shapes = _shape_only(config, tx, params_key, dropout_key)
  graphdef = nnx.graphdef(shapes)
  train_step = steps.make_train_step(config, graphdef,
                                     optim.learning_rate_schedule(config.optim, total_steps))
  ahead = _compile_ahead(config, mesh, train_step, shapes, dropout_key)
  try:
    model, optimizer, start_step = _restore_or_build(config, mesh, tx, manager, shapes,
                                                     params_key, dropout_key)
    del shapes
    if start_step == 0:
      writer.write_hparams(_flat_hparams(config))
    logging.info('Training %d steps from step %d; %d parameters on %d devices.', total_steps,
                 start_step, models.count_params(model), mesh.devices.size)
    eval_step = steps.make_eval_step(config, nnx.graphdef(model))
    # From here on the model and optimizer exist only as `state`, which each step donates and
    # replaces; _evaluate_and_save merges them from it when it needs them.
    built_graphdef, state = nnx.split((model, optimizer))
    del model, optimizer
    if built_graphdef != graphdef:  # Never seen; the step would not fit the state then.
      graphdef = built_graphdef
      train_step = steps.make_train_step(
          config, graphdef, optim.learning_rate_schedule(config.optim, total_steps))
    with _StopSignal() as stop, jax.set_mesh(mesh):
      loop = _Loop(config, workdir, mesh, writer, manager, graphdef, train_step, ahead.wait,
                   eval_step, dropout_key, total_steps, stop)
      return _train_loop(loop, state, start_step)
  finally:
    ahead.wait()
    # Also on errors: a save in flight is a good state and must land.
    checkpointing.finish(manager)
    manager.close()
    writer.close()


@dataclasses.dataclass(frozen=True)
class _Loop:
  """What the training loop runs with; the model and optimizer travel beside it as one state."""
  config: ml_collections.ConfigDict
  workdir: epath.Path
  mesh: jax.sharding.Mesh
  writer: metric_writers.MetricWriter
  manager: Any  # checkpointing.create_manager's
  graphdef: nnx.GraphDef  # of (model, optimizer)
  train_step: Callable[..., Any]  # steps.make_train_step's
  compiled: Callable[[], None]  # returns once the train step is compiled
  eval_step: Callable[..., Any]
  dropout_key: jax.Array
  total_steps: int
  stop: _StopSignal


def _train_loop(loop: _Loop, state: nnx.State, start_step: int) -> dict[str, float]:
  """Steps ``start_step + 1 .. total_steps`` with logging, evaluation and checkpoints.

  ``state`` is ``nnx.split((model, optimizer))``'s; returns the last evaluation's metrics.
  """
  config, manager, stop = loop.config, loop.manager, loop.stop
  # Closed explicitly, so the pipeline's threads stop here rather than whenever the garbage
  # collector gets to them (see input_pipeline._without_autotune_thread for what that cost).
  with contextlib.closing(input_pipeline.create_train_dataset(
      config.data, config.train.batch_size, seed=config.seed,
      start_step=start_step)) as train_iter:
    train_step = loop.train_step
    report_progress = periodic_actions.ReportProgress(num_train_steps=loop.total_steps,
                                                      writer=loop.writer)
    log = _TrainLog(loop.writer)
    results = {}
    for step in range(start_step + 1, loop.total_steps + 1):
      with jax.profiler.StepTraceAnnotation('train', step_num=step):
        batch = parallel.shard_batch(next(train_iter), loop.mesh)
        first = step == start_step + 1
        if first:
          loop.compiled()
        with _gc_paused() if first else contextlib.nullcontext():
          started = time.perf_counter()
          state, metrics = train_step(state, batch, jax.random.fold_in(loop.dropout_key, step))
        if first:  # The call returned once the step was compiled (or found) and dispatched.
          logging.info('First step (%d) dispatched %.1f s after its call.', step,
                       time.perf_counter() - started)
      log.push(step, metrics)
      report_progress(step)
      last = step == loop.total_steps
      stopping = stop.received is not None or manager.reached_preemption(step)
      eval_now = last or (config.train.eval_every_steps > 0
                          and step % config.train.eval_every_steps == 0)
      save_now = last or stopping or eval_now or manager.should_save(step)
      if step % config.train.log_every_steps == 0 or last or stopping:
        log.write(step)
      if not (eval_now or save_now):
        continue
      log.sync()  # Never evaluate or save a state that came from a non-finite loss.
      evaluated = _evaluate_and_save(loop, state, step, eval_now, report_progress)
      if evaluated is not None:
        results = evaluated
      if stopping:
        checkpointing.finish(manager)
        logging.warning('Stopped at step %d on request; run again to resume.', step)
        raise errors.Interrupted(stop.received or signal.SIGTERM, step)
    return results


@contextlib.contextmanager
def _gc_paused():
  """Python's garbage collector off inside: tracing the paper model's step makes objects fast
  enough to set off full collections over the whole model graph, a third of its trace time."""
  enabled = gc.isenabled()
  gc.disable()
  try:
    yield
  finally:
    if enabled:
      gc.enable()


def _evaluate_and_save(loop: _Loop, state: nnx.State, step: int, evaluate_now: bool,
                       report_progress: periodic_actions.ReportProgress) -> dict[str, float] | None:
  """Evaluates (if ``evaluate_now``) and checkpoints the state of ``step``; the metrics or None.

  The model and optimizer merged from ``state`` live only in this call: the next train step
  donates their arrays.
  """
  model, optimizer = nnx.merge(loop.graphdef, state)
  results = None
  if evaluate_now:
    with report_progress.timed('eval'):
      results = _evaluate(loop, model, step)
  checkpointing.save(loop.manager, step, model, optimizer, force=True,
                     model_config=loop.config.model,
                     metrics=None if results is None else {
                         f'eval/{k}': v for k, v in results.items()})
  return results


def _evaluate(loop: _Loop, model: nnx.Module, step: int) -> dict[str, float]:
  config = loop.config
  dataset = input_pipeline.create_eval_dataset(config.data, config.eval.batch_size,
                                               with_focal=config.eval.camera_transform)
  results, samples = evaluate.evaluate_model(
      loop.eval_step, model, dataset, loop.mesh,
      num_images_to_show=config.eval.num_images_to_show)
  logging.info('Evaluation at step %d:\n%s', step, evaluate.format_table(results))
  evaluate.write_results(loop.writer, step, results, samples, loop.workdir,
                         config.model.max_depth_m)
  return results


def _flat_hparams(config) -> dict[str, Any]:
  """The config as flat 'group.field' scalars (tuples as strings), for TensorBoard."""
  flat = {}
  for group, values in config.items():
    items = values.items() if hasattr(values, 'items') else [('', values)]
    for key, value in items:
      name = f'{group}.{key}' if key else group
      flat[name] = value if isinstance(value, (int, float, str, bool)) else str(value)
  return flat
