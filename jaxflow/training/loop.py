"""The epoch loop: plain Python around the jitted programs of an assembled run (or group of runs).

Per epoch: the training steps (one fused program for the whole epoch, or chunks of `steps_per_dispatch`
steps, or one host batch per step for graphs), train metrics logged every `log_every` steps and at the
epoch's end, evaluation, then each run's `RunBook` records the epoch (logs, monitor, best state,
checkpoints, early stopping). After the last epoch, each run's final state is evaluated and its summary
written. The run is assembled before (`jaxflow.run.assemble`) and resumed by its RunBooks.

A group's runs share one program: states and streams carry a leading run axis. A run of a group that
stops early or fails stops being recorded; the group goes on while any run is active.

Resuming restarts at an epoch boundary: the shuffle order is keyed by the epoch and dropout keys by the
step, so a resumed run computes exactly what the uninterrupted one would have (bitwise, same machine).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import threading
import time

import jax
import numpy as np

from jaxflow.training import losses, parallel
from jaxflow.training.dispatch import InFlight, chunk_sizes, one_device
from jaxflow.training.interrupt import Interrupted, StopRequest
from jaxflow.training.progress import ProgressDisplay
from jaxflow.training.run_axis import stack, take
from jaxflow.training.runbook import NonFiniteLossError, RunBook
from jaxflow.training.state import num_params, params_sha256


@dataclasses.dataclass
class LoopInputs:
  """What the epoch loop drives: the assembled run's pieces (see `jaxflow.run.assemble.Assembled`)."""

  config: object  # the first run's config (a group's runs share every field the loop reads)
  books: list[RunBook]
  state: object  # TrainState, stacked for a group
  data: object  # DeviceData or HostData
  streams: dict
  programs: object  # training.programs.Programs
  steps_per_epoch: int
  per_dispatch: int
  on_host: bool
  in_flight: InFlight
  extra: object  # train_seconds -> the summary's timing and environment fields
  stop: StopRequest | None = None  # SIGINT / SIGTERM received: stop at the next boundary (see interrupt.py)
  display: ProgressDisplay = dataclasses.field(default_factory=ProgressDisplay.off)  # bar, lines or nothing


@dataclasses.dataclass
class Progress:
  step: int
  train_seconds: float = 0.0
  trained_steps: int = 0
  last_eval: list | None = None  # the last epoch's eval sums per run (of the state the loop ended with)


def _for_each_active(books: list[RunBook], fn, extra) -> None:
  """`fn(i, book)` for every run still recording; a run of a group with a non-finite loss fails alone."""
  for i, book in enumerate(books):
    if book.done:
      continue
    try:
      fn(i, book)
    except NonFiniteLossError as e:
      if len(books) == 1:
        raise
      book.fail(e, extra(0.0))


def _per_run(tree, size: int) -> list:
  """A stacked host dict {name: [size, ...]} -> one dict per run (one run: the dict itself)."""
  return [tree] if size == 1 else [{k: v[i] for k, v in tree.items()} for i in range(size)]


def _fused_epoch(run: LoopInputs, progress: Progress, epoch: int, last_epoch: int, ahead):
  """One epoch as one program, the next one dispatched before this one's results are read: epoch e+1
  computes while the host logs, evaluates the monitor and checkpoints epoch e. An early stop discards the
  speculative epoch, so results are the same as a synchronous loop's."""
  programs, size, first_step = run.programs, len(run.books), progress.step
  run.state, packed = ahead if ahead is not None else programs.epoch(run.state, run.data, run.streams, epoch)
  ahead_ok = run.config.train.dispatch_ahead and run.in_flight.limit >= 2 and epoch + 1 < last_epoch
  ahead = programs.epoch(run.state, run.data, run.streams, epoch + 1) if ahead_ok else None
  results = programs.unpack_epoch(packed)
  results = [results] if size == 1 else results
  progress.step += run.steps_per_epoch
  step = progress.step

  def log(i, book):
    book.log_train([results[i][0]], first_step=first_step, step=step, epoch=epoch + 1)

  _for_each_active(run.books, log, run.extra)
  run.display.advance(run.steps_per_epoch, run.books)
  return [r[1] for r in results], ahead


def _epoch_units(run: LoopInputs, epoch: int, start: int = 0) -> list:
  """(steps, dispatch function) per dispatch of a non-fused epoch from step `start` of the epoch (a
  resumed run's offset, always a dispatch boundary): chunks of on-device steps, or one host batch per step."""
  programs, streams = run.programs, run.streams
  if run.on_host:
    step_fn = functools.partial(programs.host_step, dropout_stream=streams["dropout"])
    return [(1, functools.partial(step_fn, batch=b)) for b in run.data.train_batches(epoch)][start:]
  indices = programs.indices(run.data, streams, epoch)
  offsets = np.cumsum([0, *chunk_sizes(run.steps_per_epoch, run.per_dispatch)])
  chunk = functools.partial(programs.chunk, data=run.data, epoch_indices=indices, streams=streams)
  return [
    (int(b - a), functools.partial(chunk, offset=int(a), num_steps=int(b - a)))
    for a, b in zip(offsets[:-1], offsets[1:], strict=True)
    if a >= start
  ]


def _stop_signal(run: LoopInputs, *, epoch_end: bool) -> int | None:
  """The signal to stop on at this boundary: every boundary on one process; on several, epochs' ends only,
  where every process asks at once and all agree (one all-gather per epoch)."""
  if run.stop is None:
    return None
  several = jax.process_count() > 1
  if several and not epoch_end:
    return None
  return run.stop.pending(collective=several)


def _chunked_epoch(
  run: LoopInputs, progress: Progress, epoch: int, start: int = 0, *, evaluate: bool = True, before_log=None
):
  """One epoch dispatch by dispatch, train metrics fetched and logged every `log_every` steps, then its
  evaluation. `before_log()` runs at each log point before its records (`_overlapped_epochs`: the previous
  epoch's end finishes first, so records stay in order). Without `evaluate` (`_overlapped_epochs`), the
  epoch's last log point is left to its end as well: it returns (that log point's metrics, still on the
  device, and its first step) instead of an evaluation."""
  log_every = run.config.train.log_every
  units = _epoch_units(run, epoch, start)
  next_log = (progress.step // log_every + 1) * log_every
  pending, pending_first = [], progress.step
  for u, (unit_size, dispatch) in enumerate(units):
    run.state, unit_metrics = dispatch(run.state)
    run.in_flight.add(unit_metrics)
    pending.append(unit_metrics)
    progress.step += unit_size
    last = u + 1 == len(units)
    if last and not evaluate:
      return pending, pending_first
    if progress.step >= next_log or last:
      if before_log is not None:  # first: an error of this epoch's steps must not hide what it says
        before_log()
      _log_train(run, pending, first=pending_first, step=progress.step, epoch=epoch)
      pending, pending_first = [], progress.step
      next_log = (progress.step // log_every + 1) * log_every
      signum = _stop_signal(run, epoch_end=False) if not last else None
      if signum is not None:  # a log point inside the epoch: the logs are whole here, resume continues them
        _save_and_stop(run, progress, signum, epoch=epoch, offset=progress.step - epoch * run.steps_per_epoch)
  return _per_run(parallel.fetch(run.programs.eval_sums(run.state, run.data)), len(run.books))


def _log_train(run: LoopInputs, pending: list, *, first: int, step: int, epoch: int) -> None:
  """The train metrics of the dispatches since the last log point, fetched and logged by each active run."""
  host, size = parallel.fetch(pending), len(run.books)
  per_run = [host] if size == 1 else [[{k: v[i] for k, v in m.items()} for m in host] for i in range(size)]

  def log(i, book):
    book.log_train(per_run[i], first_step=first, step=step, epoch=epoch + 1)

  _for_each_active(run.books, log, run.extra)
  run.display.advance(step - first, run.books)


def _save_and_stop(run: LoopInputs, progress: Progress, signum: int, *, epoch: int, offset: int) -> None:
  """Every active run saves a checkpoint at this boundary (`epoch` epochs done, `offset` steps into the
  next), then the loop raises Interrupted."""
  size = len(run.books)
  for i, book in enumerate(run.books):
    if not book.done:
      state = run.state if size == 1 else take(run.state, i)
      book.save_interrupted(state, step=progress.step, epoch=epoch, offset=offset)
  raise Interrupted(signum, progress.step, epoch)


def _record_epoch(run: LoopInputs, progress: Progress, epoch: int, eval_each: list, keep, state=None) -> None:
  """Layer statistics when due, then each active run's RunBook records the epoch (of `state`, by default
  the loop's)."""
  every, size = run.config.train.layer_stats_every, len(run.books)
  state = run.state if state is None else state
  layer_stats = None
  if every and (epoch + 1) % every == 0:
    stats = run.programs.layer_stats(state, run.data)
    layer_stats = [stats] if size == 1 else stats

  def end(i, book):
    book.end_epoch(
      step=progress.step,
      epoch=epoch + 1,
      eval_sums=eval_each[i],
      state_fn=(lambda: state) if size == 1 else (lambda: take(state, i)),
      layer_stats_fn=None if layer_stats is None else (lambda: layer_stats[i]),
      keep_best=keep,
    )

  _for_each_active(run.books, end, run.extra)


def train_epochs(run: LoopInputs, *, place) -> list[dict]:
  """The epoch loop of a run or a group, then each run's final state, evaluation and summary.
  `place(tree)` puts host values on the run's devices."""
  books, cfg_train = run.books, run.config.train
  start_epoch = books[0].start_epoch
  last_epoch = 0 if all(b.stopped_early for b in books) else cfg_train.epochs
  fused = not run.on_host and run.per_dispatch == run.steps_per_epoch
  # What outlives the next dispatch: a fused epoch's state is never donated (a reference will do); a
  # chunked epoch's state may be donated to the next chunk (`Programs.donates_state`), so the best one is
  # copied to the host (as `_end_epoch` copies it when the epoch's end runs beside the next epoch).
  keep = (lambda s: s) if fused else jax.device_get
  background = fused and jax.process_count() == 1
  with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxflow-checkpoint") as worker:
    for book in books:
      book.background_saves, book.ckpt.worker = background, worker if background else None
    try:
      return _train_epochs(run, place, keep, fused, start_epoch, last_epoch)
    finally:
      for book in books:
        book.ckpt.wait()  # before the worker goes
        book.ckpt.worker = None


def _train_epochs(run: LoopInputs, place, keep, fused: bool, start_epoch: int, last_epoch: int) -> list[dict]:
  books = run.books
  progress = Progress(step=books[0].step)
  signum = _stop_signal(run, epoch_end=True)  # a signal while the run was assembled and compiled
  if signum is not None:
    raise Interrupted(signum, progress.step, start_epoch)
  run.display.start(
    step=progress.step,
    epoch=start_epoch,
    steps_per_epoch=run.steps_per_epoch,
    compile_seconds=run.programs.compile_seconds,
  )
  ahead = None
  if fused and start_epoch < last_epoch:
    ahead = run.programs.epoch(run.state, run.data, run.streams, start_epoch)
  start = books[0].start_offset
  if not fused and _ends_overlap(run):
    _overlapped_epochs(run, progress, start_epoch, last_epoch, start)
    return _summaries(run, progress, _final_states(run, place=place))
  for epoch in range(start_epoch, last_epoch):
    epoch_start, compile_before = time.perf_counter(), run.programs.compile_seconds
    if fused:
      eval_each, ahead = _fused_epoch(run, progress, epoch, last_epoch, ahead)
    else:
      eval_each = _chunked_epoch(run, progress, epoch, start)
    _count_epoch(run, progress, since=epoch_start, compile_before=compile_before, start=start)
    start = 0
    _end_of_epoch(run, progress, epoch, eval_each, keep, last_epoch=last_epoch)
    progress.last_eval = eval_each
    if all(b.done for b in books):
      break
    signum = _stop_signal(run, epoch_end=True) if epoch + 1 < last_epoch else None
    if signum is not None:  # an epoch's end: the speculative next epoch (fused) is discarded
      _save_and_stop(run, progress, signum, epoch=epoch + 1, offset=0)
  finals = _final_states(run, place=place)
  return _summaries(run, progress, finals)


def _ends_overlap(run: LoopInputs) -> bool:
  """Whether a chunked epoch's end runs beside the next epoch's steps: one run on one device of one process
  (two threads dispatching programs with collectives could interleave them differently on each device), on
  the device (graph batches' host step is not worth it), and `train.dispatch_ahead`."""
  alone = one_device(run.programs.layout)
  return run.config.train.dispatch_ahead and alone and len(run.books) == 1 and not run.on_host


class _Discarded(Exception):
  """The previous epoch's end stopped the run (early stopping): the epoch dispatched meanwhile is dropped."""


class _EpochEnd:
  """One epoch's end on a daemon thread: a second Ctrl-C stops the process at once, not after the end."""

  def __init__(self, fn, *args):
    self._result, self._error = None, None
    self._thread = threading.Thread(target=self._run, args=(fn, *args), name="jaxflow-epoch-end", daemon=True)
    self._thread.start()

  def _run(self, fn, *args) -> None:
    try:
      self._result = fn(*args)
    except BaseException as error:  # raised in the loop's thread by `result`
      self._error = error

  def result(self):
    self._thread.join()
    if self._error is not None:
      raise self._error
    return self._result


def _overlapped_epochs(run: LoopInputs, progress: Progress, start_epoch: int, last_epoch: int, start: int) -> None:
  """Chunked epochs (fewer steps per dispatch than the epoch has: a conv model on CPU, by default) whose
  ends (the last train log, evaluation, records, monitor, checkpoints, layer statistics, the epoch's line) run
  on a second thread
  while the next epoch's steps are dispatched from this one, so that host work and evaluation use a core
  (or, on an accelerator, time) the steps leave free. The state an epoch ended with is never donated
  (where chunks donate, the next epoch trains on a copy: two states on the device until that end is done),
  so the end records what a loop that waits would. The next epoch's first log point waits for the end
  before its own records, so records keep their order; an early stop found there drops the epoch trained
  meanwhile and ends with the state and progress it stopped at: the same results as
  `train.dispatch_ahead=False` (tests/training). `train_seconds` here includes the wait for an end that
  took longer than the next epoch's steps."""
  ending = None  # (the pending _EpochEnd, the state that epoch ended with, progress at its end)

  def settle(discard: bool) -> bool:
    """Waits for the pending epoch end (its error raised here); True when it stopped the run."""
    nonlocal ending
    if ending is None:
      return False
    end, state, at_end = ending
    ending = None
    progress.last_eval = end.result()
    if not run.books[0].done:
      return False
    run.state = state
    for field in ("step", "train_seconds", "trained_steps"):  # back to that epoch's end
      setattr(progress, field, getattr(at_end, field))
    if discard:
      raise _Discarded
    return True

  run.programs.eval_sums(run.state, run.data, compile_only=True)  # compiled here: the end thread only runs
  if run.config.train.layer_stats_every:
    run.programs.layer_stats(run.state, run.data, compile_only=True)
  try:
    for epoch in range(start_epoch, last_epoch):
      epoch_start, compile_before = time.perf_counter(), run.programs.compile_seconds
      last_log = _chunked_epoch(run, progress, epoch, start, evaluate=False, before_log=lambda: settle(discard=True))
      settle(discard=True)  # an epoch with one log point, its last: the previous end is waited for here
      if epoch + 1 == last_epoch:  # its steps in train_seconds (an earlier epoch's are, through the next settle)
        jax.block_until_ready(last_log[0])
      _count_epoch(run, progress, since=epoch_start, compile_before=compile_before, start=start)
      start, at_end = 0, dataclasses.replace(progress)
      ending = (_EpochEnd(_end_epoch, run, at_end, epoch, run.state, last_log, last_epoch), run.state, at_end)
      if epoch + 1 < last_epoch:
        if run.programs.donates_state:  # the next epoch trains on a copy, so the end keeps the state it records
          run.state = jax.device_put(run.state, may_alias=False)
        signum = _stop_signal(run, epoch_end=True)
        if signum is not None:
          if settle(discard=False):
            break
          _save_and_stop(run, progress, signum, epoch=epoch + 1, offset=0)  # the copy: the same bits
  except _Discarded:
    pass
  except Exception as error:  # raised by the next epoch's steps: its end comes first, as when waiting
    if ending is None:
      raise
    try:
      stopped = settle(discard=False)
    except Exception as end_error:
      raise end_error from error
    if not stopped:
      raise
  settle(discard=False)  # the last epoch's end


def _end_epoch(run: LoopInputs, at_end: Progress, epoch: int, state, last_log: tuple, last_epoch: int) -> list:
  """One epoch's end on the end thread: its last train log (the fetch waits for its steps, not the loop),
  its evaluation, then `_end_of_epoch` as the loop that waits runs it (the best and the final state copied
  to the host, as that loop copies a chunked epoch's)."""
  pending, first = last_log
  _log_train(run, pending, first=first, step=at_end.step, epoch=epoch)
  eval_each = _per_run(parallel.fetch(run.programs.eval_sums(state, run.data)), 1)
  _end_of_epoch(run, at_end, epoch, eval_each, jax.device_get, last_epoch=last_epoch, state=state)
  return eval_each


def _count_epoch(run: LoopInputs, progress: Progress, *, since: float, compile_before: float, start: int) -> None:
  """An epoch's training time (since `since`, its compiles left out) and steps (from step `start` of it)."""
  compiled_now = run.programs.compile_seconds - compile_before
  progress.train_seconds += time.perf_counter() - since - compiled_now
  progress.trained_steps += run.steps_per_epoch - start


def _end_of_epoch(
  run: LoopInputs, progress: Progress, epoch: int, eval_each: list, keep, *, last_epoch: int, state=None
):
  """What follows an epoch's evaluation in either loop: its records (`_record_epoch`), then its line."""
  _record_epoch(run, progress, epoch, eval_each, keep, state=state)
  _show_epoch(run, progress, epoch, last=epoch + 1 == last_epoch or all(b.done for b in run.books))


def _show_epoch(run: LoopInputs, progress: Progress, epoch: int, *, last: bool) -> None:
  """The display's epoch: the group's training throughput so far (compilation left out, as in the summary)."""
  examples = len(run.books) * progress.trained_steps * run.config.train.batch_size
  run.display.epoch_end(
    epoch=epoch + 1,
    books=run.books,
    examples_per_second=examples / progress.train_seconds if progress.train_seconds > 0 else None,
    compile_seconds=run.programs.compile_seconds,
    last=last,
  )


def _final_states(run: LoopInputs, *, place) -> dict[int, object]:
  """Each run's final state: where it stopped (a group goes on past an early stop), else the last one;
  the best one when early stopping restores it."""
  finals: dict[int, object] = {}
  for i, book in enumerate(run.books):
    if book.failed is not None:
      continue
    if len(run.books) == 1:
      last = run.state  # the loop stopped with this run
    elif book.final_state is not None:
      last = parallel.on_device(book.final_state)  # a host copy when chunked (the state may be donated)
    else:
      last = take(run.state, i)
    finals[i] = book.final(last, place)
  return finals


def _final_eval(run: LoopInputs, finals: dict[int, object], last_eval: list | None) -> dict[int, dict]:
  """Evaluation sums of each run's final state (a group: one stacked evaluation). A run that ends with the
  state its last epoch evaluated reuses that evaluation (no second evaluation program to compile)."""
  programs, size = run.programs, len(run.books)
  if size == 1 and finals and last_eval is not None and finals[0] is run.state:
    return {0: last_eval[0]}
  if size == 1:
    return {0: jax.device_get(programs.eval_sums(finals[0], run.data))} if finals else {}
  if not finals:
    return {}
  filler = next(iter(finals.values()))  # failed runs' slots: evaluated, never reported
  stacked_final = stack([parallel.on_device(finals.get(i, filler)) for i in range(size)])
  if programs.stack_sharding is not None:
    stacked_final = parallel.put(stacked_final, programs.stack_sharding)
  sums = parallel.fetch(programs.eval_sums(stacked_final, run.data))
  return {i: {k: v[i] for k, v in sums.items()} for i in finals}


def _summaries(run: LoopInputs, progress: Progress, finals: dict[int, object]) -> list[dict]:
  final_each = _final_eval(run, finals, progress.last_eval)
  batch_size, size, seconds = run.config.train.batch_size, len(run.books), progress.train_seconds
  summaries = []
  for i, book in enumerate(run.books):
    if book.failed is not None:
      summaries.append(book.failed_summary)
      continue
    extra = run.extra(seconds) | {
      "examples_per_second": progress.trained_steps * batch_size / seconds if seconds else None,
      "steps_per_dispatch": run.per_dispatch,
      "num_params": num_params(finals[i].params),
      "params_sha256": params_sha256(finals[i].params),
    }
    if size > 1:
      group_rate = size * progress.trained_steps * batch_size / seconds if seconds else None
      extra["group"] = {"runs": size, "examples_per_second": group_rate}
    final_eval = losses.finalize_metrics(final_each[i])
    trained = progress.trained_steps > 0
    summaries.append(book.finish(final_eval=final_eval, final_sums=final_each[i], trained=trained, extra=extra))
  return summaries
