"""`train_and_evaluate(config, workdir)`: plain Python around jitted programs of pure steps.

Shape of a run: validate (nothing written yet) -> workdir/config.json -> data on device -> state
(restored from the latest checkpoint if there is one) -> per epoch: chunks of `steps_per_dispatch` steps,
train metrics logged every `log_every` steps and at the epoch's end, evaluation, checkpoint, early
stopping -> summary.json. The host-side record of a run (logs, monitor, checkpoints, summary) is a
`RunBook`; this module drives the device.

`train_group(configs, workdirs)` trains several runs that differ only in their PRNG seeds as ONE
program: the state and the streams carry a leading run axis and the same step functions are vmapped
over it (the multi-seed runner's `vmap` and `devices` modes). Each run keeps its own RunBook, so each
workdir is a normal run's: its metrics.jsonl, TensorBoard, checkpoints and summary.json. A run of a
group that stops early or fails stops being recorded; the group goes on while any run is active.

Resuming restarts at an epoch boundary: the shuffle order is keyed by the epoch and dropout keys by the
step, so a resumed run computes exactly what the uninterrupted one would have (bitwise, same machine).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxflow import models, rng
from jaxflow.config import ConfigError, config_hash, get_field
from jaxflow.data import augment
from jaxflow.training import graph_data, losses, optimizers, parallel, steps, transfer
from jaxflow.training.device_data import load_device_data
from jaxflow.training.programs import Programs
from jaxflow.training.runbook import NonFiniteLossError, RunBook, record_label_noise
from jaxflow.training.state import init_fn, num_params, params_sha256
from jaxflow.run.environment import environment
from jaxflow.training.validate import check_layout, check_parallel_fields, validate
from jaxflow.workdir import prepare_workdir

__all__ = ["Compiled", "NonFiniteLossError", "train_and_evaluate", "train_group"]

SEED_FIELDS = ("seed", "seeds")  # what may differ between the runs of a group


def dispatch_plan(config: ml_collections.ConfigDict, steps_per_epoch: int) -> tuple[int, bool | int]:
  """(steps per dispatch, scan unroll).

  Auto: a whole epoch per dispatch (lax.scan), which removes the host's per-step overhead; but a
  convolutional model on XLA:CPU runs one step per dispatch, because conv weight-gradients inside a
  scan/while loop are ~30x slower there (jax-ml/jax#12868, PITFALLS.md). A user-chosen K > 1 for such a
  model is fully unrolled for the same reason.
  """
  conv_on_cpu = models.has_conv(config.model) and jax.default_backend() == "cpu"
  k = config.train.steps_per_dispatch or (1 if conv_on_cpu else steps_per_epoch)
  return min(k, steps_per_epoch), (True if conv_on_cpu else 1)


def chunk_sizes(steps_per_epoch: int, k: int) -> list[int]:
  """At most two distinct sizes per epoch, so at most two compilations."""
  sizes = [k] * (steps_per_epoch // k)
  return sizes + ([steps_per_epoch % k] if steps_per_epoch % k else [])


def cfg_parallel_limit(config: ml_collections.ConfigDict, layout: parallel.Layout) -> int | None:
  """Programs allowed in flight: unbounded on one device, `parallel.max_in_flight` on several."""
  return None if layout.num_devices == 1 and jax.process_count() == 1 else config.parallel.max_in_flight


class InFlight:
  """Bounds how many dispatched step programs may be queued ahead of the host.

  Measured on jax 0.10.2 with 2-8 forced CPU devices: long chains of asynchronously dispatched
  multi-device steps deadlocked in XLA:CPU's collectives in about half of the tries ("Termination
  timeout for all reduce"), while blocking after every step never did. Blocking on the oldest of the
  last `limit` dispatches keeps that many in flight: the host still runs ahead (limit 2 hides the
  dispatch latency of the next step) but the chain never grows. `limit=None`: no bound (one device).
  """

  def __init__(self, limit: int | None):
    self.limit = limit if limit is not None else 1 << 30
    self._queue = collections.deque()

  def add(self, outputs) -> None:
    if self.limit >= 1 << 30:
      return
    self._queue.append(outputs)
    while len(self._queue) >= self.limit:
      jax.block_until_ready(self._queue.popleft())


def static_key(config: ml_collections.ConfigDict) -> str:
  """The hash of everything but the seeds: runs with equal keys compile to the same programs."""
  blank = ml_collections.ConfigDict(config.to_dict())
  blank.seed = 0
  for name in blank.seeds:
    blank.seeds[name] = None
  return config_hash(blank)


# Hyperparameters a group's runs may differ in: they become data (TrainState.hparams), not program.
RUNTIME_FIELDS = ("optim.lr", "optim.weight_decay", "model.dropout_rate")


def group_key(config: ml_collections.ConfigDict) -> str:
  """Runs with equal group keys can train together in one `train_group`: they differ only in their
  seeds and in `RUNTIME_FIELDS` (what a hyperparameter search over lr, weight decay and dropout varies)."""
  blank = ml_collections.ConfigDict(config.to_dict())
  blank.optim.lr, blank.optim.weight_decay, blank.model.dropout_rate = 1.0, 0.0, 0.0
  return static_key(blank)


def runtime_hparams(configs) -> tuple[steps.RuntimeHparams | None, dict | None]:
  """For a group whose runs differ in a RUNTIME_FIELD: how the step applies them, and their values
  stacked per run; (None, None) when they agree (then they stay constants of the program)."""
  values = {field: [get_field(c, field) for c in configs] for field in RUNTIME_FIELDS}
  if len(configs) == 1 or all(len(set(v)) == 1 for v in values.values()):
    return None, None
  optim = configs[0].optim
  runtime = steps.RuntimeHparams(decoupled_weight_decay=optim.name == "adamw", clip_norm=optim.clip_norm)
  stacked = {name.split(".")[1]: jnp.asarray(values[name], jnp.float32) for name in RUNTIME_FIELDS}
  return runtime, stacked


@dataclasses.dataclass
class Compiled:
  """Programs (and the model and optimizer objects their TrainState closes over) reused by the next
  run with the same static config: `jaxflow seeds --mode=sequential` compiles once for all its seeds.
  A fresh optax optimizer would not do: TrainState's `tx` is a static field, so a new object is a new
  jit cache entry (PITFALLS.md)."""

  parts: dict = dataclasses.field(
    default_factory=dict
  )  # build key -> (model, tx, programs, steps_per_epoch, per_dispatch)
  problem: tuple | None = None  # (static key, the validated Problem): validation depends on no seed
  data: dict = dataclasses.field(default_factory=dict)  # (static key, host data key) -> DeviceData


class GroupError(ConfigError):
  """The configs of a group differ in more than their seeds, or need something a group cannot do."""


_take = jax.jit(lambda tree, i: jax.tree.map(lambda x: x[i], tree))


def _stack(trees):
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _place(layout: parallel.Layout, tree):
  return layout.place(tree) if layout.mesh is not None else jax.device_put(tree)


def _host_data_key(config, streams) -> tuple:
  """What decides a run's host-side data: the `data` stream when the dataset is generated or skewed,
  the `noise` stream when labels are noised. Runs with equal keys share one copy of the data."""
  d = config.data
  from jaxflow.data import synthetic

  uses_data = d.name in synthetic.GENERATED or d.class_counts is not None or d.imbalance_ratio is not None
  uses_noise = d.label_noise.kind == "matrix" or d.label_noise.rate > 0
  key = lambda k: tuple(np.asarray(jax.random.key_data(k)).ravel().tolist())  # noqa: E731
  return (key(streams["data"]) if uses_data else None, key(streams["noise"]) if uses_noise else None)


def build_programs(
  config,
  problem,
  *,
  steps_per_epoch=None,
  size=1,
  data_stacked=False,
  class_weights=None,
  layout=parallel.Layout("single"),
  stack_sharding=None,
  compiled=None,
  runtime=None,
):
  """(model, tx, programs, steps per epoch, steps per dispatch) for `config`, from `compiled` when an
  earlier run built the same ones (then their executables are reused: nothing compiles again).
  `runtime`: the group's lr / weight decay / dropout come from the state (the optimizer is built for
  lr 1, without clipping and decay)."""
  build_key = (
    group_key(config) if runtime else static_key(config),
    size,
    data_stacked,
    class_weights,
    str(stack_sharding),
    str(layout),
    runtime,
  )
  if compiled is not None and build_key in compiled.parts:
    return compiled.parts[build_key]
  if steps_per_epoch is not None:  # graphs: batches built on the host, one step each
    per_dispatch, unroll = 1, 1
  else:
    steps_per_epoch = problem.train_size // config.train.batch_size
    per_dispatch, unroll = dispatch_plan(config, steps_per_epoch)
  # One model and optimizer object per static config, whatever the group size or layout: the state's
  # static fields are these objects, so programs that share them share the one-run init executable
  # (`seeds --mode=auto` times a one-run and a stacked candidate; the init compiles once for both).
  shared_key = ("shared", build_key[0], steps_per_epoch, runtime)
  if compiled is not None and shared_key in compiled.parts:
    lr_fn, tx, model, shared = compiled.parts[shared_key]
  else:
    optim = config.optim
    if runtime is not None:
      optim = ml_collections.ConfigDict(optim.to_dict())
      optim.lr = 1.0  # the schedule's shape; each run's lr multiplies it in the step
    lr_fn = optimizers.create_schedule(
      optim, total_steps=steps_per_epoch * config.train.epochs, steps_per_epoch=steps_per_epoch
    )
    tx = transfer.with_frozen(
      optimizers.create_optimizer(optim, lr_fn, runtime=runtime is not None), tuple(config.freeze)
    )
    model = models.create_model(config.model, output_dim=problem.output_dim)
    shared = {}
    if compiled is not None:
      compiled.parts[shared_key] = (lr_fn, tx, model, shared)
  programs = Programs(
    problem=problem,
    batch_size=config.train.batch_size,
    lr_fn=lr_fn,
    steps_per_epoch=steps_per_epoch,
    unroll=unroll,
    focal_gamma=config.focal_gamma,
    class_weights=class_weights,
    augment_ops=augment.parse_augment(tuple(config.data.augment), "config.data.augment"),
    layout=layout,
    stack=size,
    data_stacked=data_stacked,
    stack_sharding=stack_sharding,
    runtime=runtime,
    shared=shared,
  )
  parts = (model, tx, programs, steps_per_epoch, per_dispatch)
  if compiled is not None:
    compiled.parts[build_key] = parts
  return parts


def init_states(programs, model, tx, problem, streams, *, size: int, stack_sharding=None):
  """The initial state; for a group, each run's own state from its init key, stacked. Built by the
  one-run init program called per run: vmapping flax's and optax's init compiled ~5x slower (3.5 s vs
  0.7 s for the digits MLP) than the S dispatches cost."""
  init = init_fn(model, tx, problem.input_structure)
  if size == 1 and programs.layout.mesh is not None:
    return programs.init_state(init, streams["init"])  # built replicated on the layout's devices
  if size == 1:
    return programs.init_single(init)(streams["init"])
  single = programs.init_single(init)
  state = _stack([single(k) for k in streams["init"]])
  return jax.device_put(state, stack_sharding) if stack_sharding is not None else state


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False, compiled: Compiled | None = None
) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the summary written to summary.json."""
  return train_group([config], [workdir], quiet=quiet, compiled=compiled)[0]


def train_group(
  configs: list[ml_collections.ConfigDict],
  workdirs: list[str],
  *,
  quiet: bool = False,
  compiled: Compiled | None = None,
  stack_sharding=None,
) -> list[dict]:
  """Trains runs that differ only in their seeds; more than one as a single vmapped program.

  One run raises NonFiniteLossError on a NaN/inf loss; in a group, that run's summary says "failed" and
  the others go on. `stack_sharding`: a NamedSharding for the run axis (the runs spread over devices).
  """
  wall_start = time.perf_counter()
  config, size = configs[0], len(configs)
  check_parallel_fields(config)
  parallel.initialize_distributed(config.parallel)  # before anything touches a device
  key = static_key(config)
  if compiled is not None and compiled.problem is not None and compiled.problem[0] == key:
    problem = compiled.problem[1]
  else:
    problem = validate(config)  # raises ConfigError before anything is written
    if compiled is not None:
      compiled.problem = (key, problem)
  if size > 1:
    if any(group_key(c) != group_key(config) for c in configs[1:]):
      raise GroupError(f"the configs of a group may differ only in seed, seeds.* and {', '.join(RUNTIME_FIELDS)}")
    from jaxflow.config import require_positive

    for c in configs[1:]:  # the first was validated whole; the others differ only in these
      require_positive(c, "optim.lr", float)
      require_positive(c, "optim.weight_decay", float, allow_zero=True)
      if not 0 <= c.model.dropout_rate < 1:
        raise ConfigError(f"config.model.dropout_rate={c.model.dropout_rate!r} must be in [0, 1)")
    if config.data.name in graph_data.GRAPH_DATASETS:
      raise GroupError(
        f"config.data.name={config.data.name!r}: graph datasets batch on the host; their seeds run one after another"
      )
    if config.parallel.mode not in ("auto", "single") or jax.process_count() > 1:
      raise GroupError(
        f"config.parallel.mode={config.parallel.mode!r}: a group of runs uses the devices for its runs, not for data parallelism; use single"
      )
    layout = parallel.Layout("single")
  else:
    layout = check_layout(config, problem)
  is_main = jax.process_index() == 0  # the one process that writes logs and the summary
  for cfg, workdir in zip(configs, workdirs):
    parallel.run_on_main(functools.partial(prepare_workdir, workdir, cfg), what="the workdir check")

  cfg_train = config.train
  place_replicated = layout.place if layout.mesh else None
  streams_each = [rng.streams(c) for c in configs]
  on_host = config.data.name in graph_data.GRAPH_DATASETS  # graphs: padded batches built on the host
  if on_host:
    streams = layout.place(streams_each[0])
    data = graph_data.load_graph_data(config, streams["data"])
    data_stacked, class_weights = False, None
  else:
    by_key: dict[tuple, object] = {}
    cache = compiled.data if compiled is not None and layout.mesh is None else {}
    datas = []
    for cfg, run_streams in zip(configs, streams_each):
      data_key = _host_data_key(cfg, run_streams)
      if data_key not in by_key:
        if (key, data_key) not in cache:
          if len(cache) >= 8:  # runs whose data all differ (varied data stream + skew) gain nothing from it
            cache.clear()
          cache[(key, data_key)] = load_device_data(
            cfg, problem, run_streams, num_devices=layout.num_devices, place=place_replicated
          )
        by_key[data_key] = cache[(key, data_key)]
      datas.append(by_key[data_key])
    for workdir, run_data in zip(workdirs, datas):
      if run_data.label_noise is not None and is_main:
        record_label_noise(workdir, run_data.label_noise)
    class_weights = datas[0].class_weights
    if any(d.class_weights != class_weights for d in datas):
      raise GroupError(
        "the runs' class weights differ (their label noise differs): train these seeds one after another"
      )
    data_stacked = len(by_key) > 1
    data = (
      datas[0]
      if not data_stacked
      else dataclasses.replace(
        datas[0],
        train_inputs=_stack([d.train_inputs for d in datas]),
        train_labels=_stack([d.train_labels for d in datas]),
        eval_batches=_stack([d.eval_batches for d in datas]),
        sample_probabilities=None
        if datas[0].sample_probabilities is None
        else _stack([d.sample_probabilities for d in datas]),
      )
    )
    streams = layout.place(streams_each[0]) if size == 1 else _stack(streams_each)
  if size > 1 and stack_sharding is not None:
    streams = jax.device_put(streams, stack_sharding)

  runtime, hparams = runtime_hparams(configs)
  model, tx, programs, steps_per_epoch, per_dispatch = build_programs(
    config,
    problem,
    steps_per_epoch=data.steps_per_epoch if on_host else None,
    size=size,
    data_stacked=data_stacked,
    class_weights=class_weights,
    layout=layout,
    stack_sharding=stack_sharding,
    compiled=compiled,
    runtime=runtime,
  )
  compile_before_run = programs.compile_seconds
  total_steps = steps_per_epoch * cfg_train.epochs
  state = init_states(programs, model, tx, problem, streams, size=size, stack_sharding=stack_sharding)
  if hparams is not None:
    state = state.replace(hparams=jax.device_put(hparams, stack_sharding) if stack_sharding is not None else hparams)

  books = [RunBook(c, w, total_steps=total_steps, is_main=is_main, quiet=quiet) for c, w in zip(configs, workdirs)]
  try:
    if len({b.resumed_from for b in books}) > 1:
      raise GroupError(
        f"the runs of this group stopped at different steps ({sorted({b.resumed_from for b in books}, key=str)}): resume them one after another"
      )
    if size == 1:
      state = books[0].resume(state)
      if books[0].resumed_from is None and config.init_from is not None:
        source = transfer.source_params(config.init_from)
        state = state.replace(params=_place(layout, transfer.transfer(state.params, source, tuple(config.reinit))))
    else:
      runs = [book.resume(_take(state, i)) for i, book in enumerate(books)]
      if config.init_from is not None and books[0].resumed_from is None:
        source = transfer.source_params(config.init_from)
        runs = [r.replace(params=transfer.transfer(r.params, source, tuple(config.reinit))) for r in runs]
      state = _stack(runs) if (books[0].resumed_from is not None or config.init_from is not None) else state
      if stack_sharding is not None:
        state = jax.device_put(state, stack_sharding)
    summaries = _train_epochs(
      config=config,
      books=books,
      state=state,
      data=data,
      streams=streams,
      programs=programs,
      layout=layout,
      on_host=on_host,
      steps_per_epoch=steps_per_epoch,
      per_dispatch=per_dispatch,
      wall_start=wall_start,
      compile_before_run=compile_before_run,
    )
  finally:
    for book in books:
      book.close()
  parallel.barrier("jaxflow:done")  # no process leaves (and tears down the collectives) before the others
  return summaries


def _train_epochs(
  *,
  config,
  books,
  state,
  data,
  streams,
  programs,
  layout,
  on_host,
  steps_per_epoch,
  per_dispatch,
  wall_start,
  compile_before_run,
):
  """The epoch loop of a run or a group, then each run's final state, evaluation and summary."""
  cfg_train, size = config.train, len(books)
  step = books[0].step
  start_epoch = books[0].start_epoch
  last_epoch = 0 if all(b.stopped_early for b in books) else cfg_train.epochs
  fused = not on_host and per_dispatch == steps_per_epoch
  # Fused epochs are dispatched one ahead: epoch e+1 computes while the host logs, evaluates the
  # monitor and checkpoints epoch e. An early stop discards the speculative epoch, so results are the
  # same as a synchronous loop's; the host's per-epoch work stops idling the device.
  # On several devices at most `parallel.max_in_flight` programs are queued (see `InFlight`).
  in_flight = InFlight(cfg_parallel_limit(config, layout))
  ahead_ok = in_flight.limit >= 2
  # What outlives the next dispatch: a fused epoch's state is never donated (a reference will do); a
  # chunked epoch's state is donated to the next chunk, so the best one is copied to the host.
  keep = (lambda s: s) if fused else jax.device_get
  train_seconds, trained_steps, epoch = 0.0, 0, start_epoch

  def for_each_active(fn):
    for i, book in enumerate(books):
      if book.done:
        continue
      try:
        fn(i, book)
      except NonFiniteLossError as e:
        if size == 1:
          raise
        book.fail(e, _extra(0.0))

  def _extra(train_s: float) -> dict:
    return {
      "wall_seconds": time.perf_counter() - wall_start,
      "compile_seconds": programs.compile_seconds - compile_before_run,
      "train_seconds": train_s,
      **environment(mode=layout.mode, used=layout.num_devices),
    }

  ahead = programs.epoch(state, data, streams, start_epoch) if fused and start_epoch < last_epoch else None
  for epoch in range(start_epoch, last_epoch):
    epoch_start, compile_before = time.perf_counter(), programs.compile_seconds
    first_step = step
    if fused:
      state, packed = ahead if ahead is not None else programs.epoch(state, data, streams, epoch)
      ahead = programs.epoch(state, data, streams, epoch + 1) if ahead_ok and epoch + 1 < last_epoch else None
      results = programs.unpack_epoch(packed)
      results = [results] if size == 1 else results
      step += steps_per_epoch
      for_each_active(
        lambda i, book: (
          book.progress.update(steps_per_epoch),
          book.log_train([results[i][0]], first_step=first_step, step=step, epoch=epoch + 1),
        )
      )
      eval_each = [r[1] for r in results]
    else:  # one dispatch per unit: a chunk of on-device steps, or one host batch (graphs)
      if on_host:
        units = [
          (1, functools.partial(programs.host_step, batch=b, dropout_stream=streams["dropout"]))
          for b in data.train_batches(epoch)
        ]
      else:
        indices, offsets = (
          programs.indices(data, streams, epoch),
          np.cumsum([0, *chunk_sizes(steps_per_epoch, per_dispatch)]),
        )
        units = [
          (
            int(b - a),
            functools.partial(
              programs.chunk, data=data, epoch_indices=indices, offset=int(a), num_steps=int(b - a), streams=streams
            ),
          )
          for a, b in zip(offsets[:-1], offsets[1:])
        ]
      next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
      pending, pending_first = [], step
      for u, (unit_size, run) in enumerate(units):
        state, unit_metrics = run(state)
        in_flight.add(unit_metrics)
        pending.append(unit_metrics)
        step += unit_size
        if step >= next_log or u + 1 == len(units):
          host = jax.device_get(pending)
          per_run = [host] if size == 1 else [[{k: v[i] for k, v in m.items()} for m in host] for i in range(size)]
          log_at, log_first = step, pending_first
          for_each_active(
            lambda i, book: (
              book.progress.update(log_at - log_first),
              book.log_train(per_run[i], first_step=log_first, step=log_at, epoch=epoch + 1),
            )
          )
          pending, pending_first = [], step
          next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
      sums = jax.device_get(programs.eval_sums(state, data))
      eval_each = [sums] if size == 1 else [{k: v[i] for k, v in sums.items()} for i in range(size)]
    train_seconds += time.perf_counter() - epoch_start - (programs.compile_seconds - compile_before)
    trained_steps += steps_per_epoch
    layer_stats = None
    if cfg_train.layer_stats_every and (epoch + 1) % cfg_train.layer_stats_every == 0:
      stats = programs.layer_stats(state, data)
      layer_stats = [stats] if size == 1 else stats
    run_state = (lambda i, s=state: s) if size == 1 else (lambda i, s=state: _take(s, i))
    for_each_active(
      lambda i, book: book.end_epoch(
        step=step,
        epoch=epoch + 1,
        eval_sums=eval_each[i],
        state_fn=functools.partial(run_state, i),
        layer_stats_fn=None if layer_stats is None else (lambda: layer_stats[i]),
        keep_best=keep,
      )
    )
    if all(b.done for b in books):
      break

  # Each run's final state: where it stopped (a group goes on past an early stop), else the last one;
  # the best one when early stopping restores it.
  place = functools.partial(_place, layout)
  finals: dict[int, object] = {}
  for i, book in enumerate(books):
    if book.failed is not None:
      continue
    if size == 1:
      last = state  # the loop stopped with this run
    elif book.final_state is not None:
      last = jax.device_put(book.final_state)  # a host copy when chunked (donated state), else on device
    else:
      last = _take(state, i)
    finals[i] = book.final(last, place)
  if size == 1:
    final_each = {0: jax.device_get(programs.eval_sums(finals[0], data))}
  elif finals:
    filler = next(iter(finals.values()))  # failed runs' slots: evaluated, never reported
    stacked_final = _stack([jax.device_put(finals.get(i, filler)) for i in range(size)])
    if programs.stack_sharding is not None:
      stacked_final = jax.device_put(stacked_final, programs.stack_sharding)
    sums = jax.device_get(programs.eval_sums(stacked_final, data))
    final_each = {i: {k: v[i] for k, v in sums.items()} for i in finals}
  summaries = []
  for i, book in enumerate(books):
    if book.failed is not None:
      summaries.append(book.failed_summary)
      continue
    extra = _extra(train_seconds) | {
      "examples_per_second": trained_steps * cfg_train.batch_size / train_seconds if train_seconds else None,
      "steps_per_dispatch": per_dispatch,
      "num_params": num_params(finals[i].params),
      "params_sha256": params_sha256(finals[i].params),
    }
    if size > 1:
      extra["group"] = {
        "runs": size,
        "examples_per_second": size * trained_steps * cfg_train.batch_size / train_seconds if train_seconds else None,
      }
    summaries.append(
      book.finish(
        final_eval=losses.finalize_metrics(final_each[i]),
        final_sums=final_each[i],
        trained=trained_steps > 0,
        extra=extra,
      )
    )
  return summaries
