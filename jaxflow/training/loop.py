"""`train_and_evaluate(config, workdir)`: plain Python around jitted chunks of pure steps.

Shape of a run: validate (nothing written yet) -> workdir/config.json -> data on device -> state
(restored from the latest checkpoint if there is one) -> per epoch: chunks of `steps_per_dispatch` steps,
train metrics logged every `log_every` steps and at the epoch's end, evaluation, checkpoint, early
stopping -> summary.json.

Resuming restarts at an epoch boundary: the shuffle order is keyed by the epoch and dropout keys by the
step, so a resumed run computes exactly what the uninterrupted one would have (bitwise, same machine).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import sys
import time

import jax
import ml_collections
import numpy as np
from tqdm import tqdm

from jaxflow import models, rng
from jaxflow.data import augment, label_noise
from jaxflow.training import checkpoints, graph_data, losses, optimizers, parallel, transfer
from jaxflow.training.device_data import load_device_data
from jaxflow.training.programs import Programs
from jaxflow.training.state import init_fn, num_params, params_sha256
from jaxflow.training.summary import environment
from jaxflow.training.validate import Problem, check_layout, check_parallel_fields, validate
from jaxflow.training.workdir import prepare_workdir
from jaxflow.training.writers import MetricWriter, NullWriter


class NonFiniteLossError(RuntimeError):
  """Training produced a NaN or infinite loss; the last good checkpoint is left as it was."""


@dataclasses.dataclass
class Monitor:
  """Tracks `train.monitor` across epochs: the best value (strict) and early stopping's patience.

  Early stopping counts an epoch as progress only when it beats the reference by more than
  `min_delta`; the best checkpoint is simply the best value seen.
  """

  mode: str
  min_delta: float
  best_value: float | None = None
  best_epoch: int = 0
  best_step: int = 0
  reference: float | None = None
  bad_epochs: int = 0

  def _gain(self, value: float, than: float) -> float:
    return value - than if self.mode == "max" else than - value

  def update(self, value: float, *, epoch: int, step: int) -> bool:
    """Records one epoch's value; returns whether it is a new best."""
    is_best = self.best_value is None or self._gain(value, self.best_value) > 0
    if is_best:
      self.best_value, self.best_epoch, self.best_step = value, epoch, step
    if self.reference is None or self._gain(value, self.reference) > self.min_delta:
      self.reference, self.bad_epochs = value, 0
    else:
      self.bad_epochs += 1
    return is_best


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


def _aggregate_train(host_metrics: list[dict[str, np.ndarray]]) -> dict[str, float]:
  stacked = {k: np.concatenate([np.atleast_1d(m[k]) for m in host_metrics]) for k in host_metrics[0]}
  sums = {k: v.sum() for k, v in stacked.items() if k not in ("grad_norm", "lr")}
  out = losses.finalize_metrics(sums)
  out["grad_norm"] = float(stacked["grad_norm"].mean())
  out["lr"] = float(stacked["lr"][-1])
  return out


def _first_non_finite(host_metrics: list[dict[str, np.ndarray]]) -> tuple[int, float] | None:
  per_step = np.concatenate([np.atleast_1d(m["loss"] / np.maximum(m["count"], 1)) for m in host_metrics])
  bad = np.flatnonzero(~np.isfinite(per_step))
  return (int(bad[0]), float(per_step[bad[0]])) if bad.size else None


class _TrainLog:
  """Train metrics waiting on the device until the next log point; checked for NaN/inf when fetched."""

  def __init__(self, writer: MetricWriter, progress, ckpt: checkpoints.Checkpointer):
    self._writer, self._progress, self._ckpt = writer, progress, ckpt
    self._pending: list = []
    self._first_step = 0
    self.last: dict[str, float] = {}

  def add(self, metrics, *, first_step: int) -> None:
    if not self._pending:
      self._first_step = first_step
    self._pending.append(metrics)

  def flush(self, step: int, epoch: int) -> None:
    host = jax.device_get(self._pending)
    self._pending = []
    bad = _first_non_finite(host)
    if bad is not None:
      raise NonFiniteLossError(
          f"non-finite training loss {bad[1]} at step {self._first_step + bad[0] + 1} (epoch {epoch}); stopped. "
          f"Last good checkpoint: step {self._ckpt.latest_step()} in {self._ckpt.directory}"
      )
    self.last = _aggregate_train(host)
    self._writer.write(step, epoch, "train", self.last)
    self._progress.set_postfix(loss=f"{self.last['loss']:.4f}")


def class_details(eval_sums: dict, report: dict | None = None) -> dict:
  """Per-class precision/recall/F1/support and the confusion matrix (classification), for JSON records."""
  if "confusion" not in eval_sums:
    return {}
  report = report or losses.class_report(eval_sums["confusion"])
  return {
      "per_class": {k: report[k] for k in ("precision", "recall", "f1", "support")},
      "confusion": np.asarray(eval_sums["confusion"]).astype(int).tolist(),
  }


def record_label_noise(workdir: str, noisy) -> None:
  """The clean labels stay known: both label vectors and the flips (npz), the realized rates (json)."""
  label_noise.save(noisy, os.path.join(workdir, "label_noise.npz"))
  with open(os.path.join(workdir, "label_noise.json"), "w") as f:
    json.dump(noisy.summary(), f, indent=2)


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


def _place(layout: parallel.Layout, tree):
  return layout.place(tree) if layout.mesh is not None else jax.device_put(tree)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the summary written to summary.json."""
  wall_start = time.perf_counter()
  check_parallel_fields(config)
  parallel.initialize_distributed(config.parallel)  # before anything touches a device
  problem = validate(config)  # raises ConfigError before anything is written
  layout = check_layout(config, problem)
  is_main = jax.process_index() == 0  # the one process that writes logs and the summary
  parallel.run_on_main(lambda: prepare_workdir(workdir, config), what="the workdir check")

  cfg_train, cfg_ckpt = config.train, config.checkpoint
  streams = layout.place(rng.streams(config))
  on_host = config.data.name in graph_data.GRAPH_DATASETS  # graphs: padded batches built on the host
  if on_host:
    data = graph_data.load_graph_data(config, streams["data"])
    steps_per_epoch, (per_dispatch, unroll) = data.steps_per_epoch, (1, 1)
  else:
    data = load_device_data(config, problem, streams, num_devices=layout.num_devices, place=layout.place if layout.mesh else None)
    if data.label_noise is not None and is_main:
      record_label_noise(workdir, data.label_noise)
    steps_per_epoch = problem.train_size // cfg_train.batch_size
    per_dispatch, unroll = dispatch_plan(config, steps_per_epoch)
  total_steps = steps_per_epoch * cfg_train.epochs
  lr_fn = optimizers.create_schedule(config.optim, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  tx = transfer.with_frozen(optimizers.create_optimizer(config.optim, lr_fn), tuple(config.freeze))
  model = models.create_model(config.model, output_dim=problem.output_dim)
  programs = Programs(
      problem=problem, batch_size=cfg_train.batch_size, lr_fn=lr_fn, steps_per_epoch=steps_per_epoch, unroll=unroll,
      focal_gamma=config.focal_gamma, class_weights=None if on_host else data.class_weights,
      augment_ops=augment.parse_augment(tuple(config.data.augment), "config.data.augment"), layout=layout,
  )
  state = programs.init_state(init_fn(model, tx, problem.input_structure), streams["init"])

  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=cfg_ckpt.keep)
  monitor = Monitor(cfg_train.monitor_mode, cfg_train.early_stopping.min_delta)
  start_epoch, stopped_early, resumed_from = 0, False, ckpt.latest_step()
  if resumed_from is not None:
    state, meta = ckpt.restore(resumed_from, state)
    start_epoch, stopped_early = meta["epoch"], meta["stopped_early"]
    monitor = Monitor(**meta["monitor"])
  elif config.init_from is not None:
    source = transfer.source_params(config.init_from)
    state = state.replace(params=_place(layout, transfer.transfer(state.params, source, tuple(config.reinit))))
  writer = MetricWriter(workdir, resume_step=resumed_from) if is_main else NullWriter()
  progress = tqdm(
      total=total_steps, initial=int(resumed_from or 0), unit="step", dynamic_ncols=True,
      disable=quiet or not is_main or not sys.stdout.isatty(), desc=os.path.basename(os.path.normpath(workdir)),
  )
  train_log = _TrainLog(writer, progress, ckpt)
  step, train_seconds, trained_steps = int(resumed_from or 0), 0.0, 0
  best_state, best_meta = None, None  # the best epoch's state and meta, written at the next save point
  last_save = time.monotonic()
  epoch = start_epoch
  fused = not on_host and per_dispatch == steps_per_epoch
  last_epoch = 0 if stopped_early else cfg_train.epochs
  # Fused epochs are dispatched one ahead: epoch e+1 computes while the host logs, evaluates the
  # monitor and checkpoints epoch e. An early stop discards the speculative epoch, so results are the
  # same as a synchronous loop's; the host's per-epoch work (~3 ms for the digits MLP) stops idling the device.
  # On several devices at most `parallel.max_in_flight` programs are queued (see `InFlight`).
  in_flight = InFlight(cfg_parallel_limit(config, layout))
  ahead_ok = in_flight.limit >= 2
  try:
    ahead = programs.epoch(state, data, streams, start_epoch) if fused and start_epoch < last_epoch else None
    for epoch in range(start_epoch, last_epoch):
      epoch_start, compile_before = time.perf_counter(), programs.compile_seconds
      if fused:
        state, packed = ahead if ahead is not None else programs.epoch(state, data, streams, epoch)
        ahead = programs.epoch(state, data, streams, epoch + 1) if ahead_ok and epoch + 1 < last_epoch else None
        train_metrics, eval_sums = programs.unpack_epoch(packed)
        train_log.add(train_metrics, first_step=step)
        step += steps_per_epoch
        progress.update(steps_per_epoch)
        train_log.flush(step, epoch + 1)
      else:  # one dispatch per unit: a chunk of on-device steps, or one host batch (graphs)
        if on_host:
          units = [(1, functools.partial(programs.host_step, batch=b, dropout_stream=streams["dropout"])) for b in data.train_batches(epoch)]
        else:
          indices, offsets = programs.indices(data, streams, epoch), np.cumsum([0, *chunk_sizes(steps_per_epoch, per_dispatch)])
          units = [
              (int(b - a), functools.partial(programs.chunk, data=data, epoch_indices=indices, offset=int(a), num_steps=int(b - a), streams=streams))
              for a, b in zip(offsets[:-1], offsets[1:])
          ]
        next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
        for i, (size, run) in enumerate(units):
          state, unit_metrics = run(state)
          in_flight.add(unit_metrics)
          train_log.add(unit_metrics, first_step=step)
          step += size
          progress.update(size)
          if step >= next_log or i + 1 == len(units):
            train_log.flush(step, epoch + 1)
            next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
        eval_sums = programs.eval_sums(state, data)
      eval_sums = jax.device_get(eval_sums)
      report = losses.class_report(eval_sums["confusion"]) if "confusion" in eval_sums else None
      eval_metrics = losses.finalize_metrics(eval_sums, report)
      train_seconds += time.perf_counter() - epoch_start - (programs.compile_seconds - compile_before)
      trained_steps += steps_per_epoch
      if not np.isfinite(eval_metrics["loss"]):
        raise NonFiniteLossError(
            f"non-finite eval loss {eval_metrics['loss']} after step {step}; stopped. "
            f"Last good checkpoint: step {ckpt.latest_step()} in {ckpt.directory}"
        )
      writer.write(step, epoch + 1, "eval", eval_metrics, details=class_details(eval_sums, report))
      if report is not None and ((epoch + 1) % cfg_train.class_report_every == 0 or epoch + 1 == cfg_train.epochs):
        writer.write_class_report(step, eval_sums["confusion"], report)
      if (epoch + 1) % cfg_train.histogram_every == 0:
        writer.write_histograms(step, state.params)
      if cfg_train.layer_stats_every and (epoch + 1) % cfg_train.layer_stats_every == 0:
        writer.write(step, epoch + 1, "layers", programs.layer_stats(state, data))

      is_best = monitor.update(eval_metrics[cfg_train.monitor.split("/")[1]], epoch=epoch + 1, step=step)
      stopped_early = cfg_train.early_stopping.enabled and monitor.bad_epochs >= cfg_train.early_stopping.patience
      meta = {"epoch": epoch + 1, "stopped_early": stopped_early, "monitor": dataclasses.asdict(monitor)}
      if is_best:
        # Fused epochs never donate their state (see above), so a reference keeps it; a chunked epoch's
        # state is donated to the next chunk and must be copied out.
        best_state, best_meta = (state if fused else jax.device_get(state)), meta
      save_now = (
          stopped_early
          or epoch + 1 == cfg_train.epochs
          or (cfg_ckpt.every_epochs and (epoch + 1) % cfg_ckpt.every_epochs == 0)
          or (cfg_ckpt.every_seconds is not None and time.monotonic() - last_save >= cfg_ckpt.every_seconds)
      )
      writer.flush(force=save_now)
      if save_now:
        if best_state is not None:  # the best first: a latest checkpoint's recorded best is always on disk
          ckpt.save(best_state, meta=best_meta, which=checkpoints.BEST)
        ckpt.save(state, meta=meta)
        last_save = time.monotonic()
      if stopped_early:
        break

    ckpt.wait()
    restored_best = None
    if cfg_train.early_stopping.enabled and cfg_train.early_stopping.restore_best and monitor.best_value is not None:
      restored_best = monitor.best_step
      if best_state is not None and int(jax.device_get(best_state.step)) == restored_best:
        state = _place(layout, best_state)
      else:  # the best came before this process resumed the run
        state, _ = ckpt.restore(restored_best, state, which=checkpoints.BEST)
    final_sums = jax.device_get(programs.eval_sums(state, data))
    final_eval = losses.finalize_metrics(final_sums)
  finally:
    progress.close()
    writer.close()
    ckpt.wait()
    ckpt.close()

  summary = {
      "status": "completed",
      "final": {"eval": final_eval, "train": train_log.last, **class_details(final_sums)},
      "best": {"metric": cfg_train.monitor, "value": monitor.best_value, "epoch": monitor.best_epoch, "step": monitor.best_step},
      "steps": step,  # steps trained; the final parameters are from `restored_best_step` when set
      "restored_best_step": restored_best,
      "epochs_completed": epoch + 1 if trained_steps else start_epoch,
      "stopped_early": bool(stopped_early),
      "resumed_from_step": resumed_from,
      "wall_seconds": time.perf_counter() - wall_start,
      "compile_seconds": programs.compile_seconds,
      "train_seconds": train_seconds,
      "examples_per_second": trained_steps * cfg_train.batch_size / train_seconds if train_seconds else None,
      "steps_per_dispatch": per_dispatch,
      "num_params": num_params(state.params),
      "params_sha256": params_sha256(state.params),
      **environment(),
  }
  if is_main:
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2)
  parallel.barrier("jaxflow:done")  # no process leaves (and tears down the collectives) before the others
  return summary
