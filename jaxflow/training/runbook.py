"""The host side of one run: its workdir's logs, the monitor, the best state, checkpoints and summary.

The training loop drives the device; a `RunBook` is everything it records about one run, so that the
same loop can train one run or a group of runs stacked on a leading axis (the multi-seed runner), one
RunBook per workdir. Every method takes host values (numpy) or a function that produces the run's
state on demand, so the loop decides when anything is fetched from the device.
"""

from __future__ import annotations

import dataclasses
import os
import time

import jax
import ml_collections
import numpy as np

from jaxflow import workdir as workdir_files
from jaxflow.config import config_hash
from jaxflow.data import label_noise
from jaxflow.training import checkpoints, divergence, group_metrics, log_failures, losses, parallel
from jaxflow.training.early_stopping import Monitor, should_stop
from jaxflow.training.log_failures import KeepingWriter
from jaxflow.training.save_policy import SavePolicy
from jaxflow.training.writers import MetricWriter, NullWriter


class NonFiniteLossError(RuntimeError):
  """Training produced a NaN or infinite loss; the last good checkpoint is left as it was. `step`: the step it
  was seen at (None when unknown), for the failed run's summary."""

  def __init__(self, message: str, step: int | None = None):
    super().__init__(message)
    self.step = step


class DivergedError(NonFiniteLossError):
  """The training loss rose far above the first step's (`train.stop_on_divergence`); handled like a NaN."""


def aggregate_train(host_metrics: list[dict[str, np.ndarray]]) -> dict[str, float]:
  """Per-step train metric sums since the last log -> the logged means (grad_norm averaged, last lr)."""
  stacked = {k: np.concatenate([np.atleast_1d(m[k]) for m in host_metrics]) for k in host_metrics[0]}
  sums = {k: v.sum() for k, v in stacked.items() if k not in ("grad_norm", "lr")}
  out = losses.finalize_metrics(sums)
  out["grad_norm"] = float(stacked["grad_norm"].mean())
  out["lr"] = float(stacked["lr"][-1])
  return out


def class_details(eval_sums: dict, report: dict | None = None, class_names=None) -> dict:
  """Per-class precision/recall/F1/support and the confusion matrix (classification), for JSON records;
  `class_names` says which class each position is."""
  if "confusion" not in eval_sums:
    return {}
  report = report or losses.class_report(eval_sums["confusion"])
  names = list(class_names) if class_names else [str(c) for c in range(len(report["support"]))]
  return {
    "class_names": names,
    "per_class": {k: report[k] for k in ("precision", "recall", "f1", "support")},
    "confusion": np.asarray(eval_sums["confusion"]).astype(int).tolist(),
  }


def record_label_noise(workdir: str, noisy) -> None:
  """The clean labels stay known: both label vectors and the flips (npz), the realized rates (json)."""
  label_noise.save(noisy, os.path.join(workdir, "label_noise.npz"))
  workdir_files.write_json(os.path.join(workdir, "label_noise.json"), noisy.summary())


class RunBook:
  """One run's record. `resume(template)` first; then per epoch `log_train` (at log points) and
  `end_epoch`; `finish` writes summary.json. `done` once the run stopped early or failed."""

  def __init__(
    self, config: ml_collections.ConfigDict, workdir: str, *, is_main: bool = True, class_names=None, group_names=None
  ):
    self.config, self.workdir, self.is_main = config, workdir, is_main
    self.config_hash = config_hash(config)
    self.class_names = class_names  # the problem's, for records, TensorBoard tags and the confusion image
    self.group_names = group_names  # data.group_feature's groups: per-group metrics at every evaluation
    # Checkpoints it may resume: its own config's, and those of the configs it was extended from.
    self.accepted_hashes = workdir_files.accepted_hashes(workdir, config)
    self.ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep)
    # every_seconds reads this process's clock: with several processes, process 0's decision is everybody's.
    ckpt_cfg = config.checkpoint
    self.policy = SavePolicy(ckpt_cfg.every_epochs, ckpt_cfg.every_seconds, agree=parallel.main_decides)
    self.monitor = Monitor(config.train.monitor_mode, config.train.early_stopping.min_delta)
    self.resumed_from = self.ckpt.latest_step()  # the newest on disk; `resume` verifies it (or an older one)
    self.start_epoch, self.start_offset, self.stopped_early, self.failed = 0, 0, False, None
    self.step, self.epoch = int(self.resumed_from or 0), 0
    self.train_last: dict[str, float] = {}
    self.eval_last: dict[str, float] = {}  # the last epoch's eval metrics (the progress display shows one)
    self.loss = {"initial": None, "peak": None}  # the first step's train loss and the highest logged one
    self.best_state, self.best_meta = None, None  # the best epoch's state and meta, written at the next save point
    self.final_state = None  # set when the run ends before the group does (early stop)
    self.writer = NullWriter()  # process 0's MetricWriter once `open_logs` ran (the others keep this)
    # Set by the loop when no later dispatch donates the states it saves (fused epochs, one process): then
    # checkpoints are written by a worker thread, off the training loop.
    self.background_saves = False

  @property
  def done(self) -> bool:
    return self.stopped_early or self.failed is not None

  def resume(self, template):
    """The state to start from: the newest checkpoint that restores and verifies (older ones are tried
    when it is damaged), else `template`. The logs are cut to the step it resumes from, or emptied when
    the run starts again from step 0, so every record is there exactly once."""
    state, meta, step = self.ckpt.restore_latest(template, config_hash=self.accepted_hashes)
    self.resumed_from = step
    if meta is not None:
      self.start_epoch, self.stopped_early = meta["epoch"], meta["stopped_early"]
      self.start_offset = meta.get("offset", 0)
      self.monitor = Monitor(**meta["monitor"])
      self.loss = meta.get("loss", self.loss)
      self.train_last = meta.get("train_last", {})
    self.step, self.epoch = int(step or 0), self.start_epoch
    return state

  def open_logs(self) -> None:
    """The logs, cut to where `resume` restarts (process 0 writes them; the others keep a NullWriter). No
    collective in here: with several processes it runs through `parallel.run_on_main`, which tells the others
    of a failure. A failure to write later on is one line (`log_failures`)."""
    if self.is_main:
      writer = MetricWriter(self.workdir, resume_step=self.resumed_from)
      self.writer = KeepingWriter(writer, self.workdir, defer=parallel.several_processes())

  def initial_histograms(self, params) -> None:
    """A fresh run's starting parameters at step 0 (after any transfer): the "before" picture of every later
    epoch's histograms, and of a blow-up inside epoch 1."""
    if self.resumed_from is None and self.is_main:
      self.writer.write_histograms(0, params)

  def _last_good(self) -> str:
    self.ckpt.wait()  # saves written in the background are on disk before their step is named
    step = self.ckpt.latest_step()
    if step is None:
      return "No checkpoint was written yet (a rerun starts again from step 0)"
    return f"Last good checkpoint: step {step} in {self.ckpt.directory}"

  def log_train(self, host_metrics: list[dict[str, np.ndarray]], *, first_step: int, step: int, epoch: int) -> None:
    """Train metrics since the last log point; a NaN/inf loss raises NonFiniteLossError naming the step, a
    loss above DIVERGENCE_FACTOR x the first step's (with `train.stop_on_divergence`) DivergedError."""
    per_step = divergence.per_step_losses(host_metrics)
    bad = np.flatnonzero(~np.isfinite(per_step))
    if bad.size:
      raise NonFiniteLossError(
        f"non-finite training loss {per_step[bad[0]]} at step {first_step + bad[0] + 1} (epoch {epoch}); stopped. "
        + self._last_good(),
        step=first_step + int(bad[0]) + 1,
      )
    if self.loss["initial"] is None and first_step == 0:
      self.loss["initial"] = float(per_step[0])
    train = aggregate_train(host_metrics)
    initial = self.loss["initial"]
    if not np.isfinite(train["loss"]):  # every step finite, their mean not: float32 overflow of the sum
      raise NonFiniteLossError(
        f"non-finite training loss {train['loss']} over steps {first_step + 1}-{step} (epoch {epoch}); stopped. "
        + self._last_good(),
        step=step,
      )
    if self.config.train.stop_on_divergence and divergence.is_diverging(train["loss"], initial):
      # The loss that stopped the run is logged first: TensorBoard and metrics.jsonl show the spike itself.
      self.writer.write(step, epoch, "train", train)
      self.writer.flush(force=True)
      raise DivergedError(
        f"training loss {train['loss']:.4g} at step {step} (epoch {epoch}) is more than "
        f"{divergence.DIVERGENCE_FACTOR:g}x the first step's {initial:.4g}: the run diverged "
        f"(train.stop_on_divergence); stopped. " + self._last_good(),
        step=step,
      )
    self.train_last = train
    self.loss["peak"] = max(self.loss["peak"] or train["loss"], train["loss"])
    self.writer.write(step, epoch, "train", train)

  def _meta(self, epoch: int, offset: int = 0) -> dict:
    return {
      "epoch": epoch,
      "offset": offset,
      "stopped_early": self.stopped_early,
      "monitor": dataclasses.asdict(self.monitor),
      "loss": dict(self.loss),
      "train_last": dict(self.train_last),
    }

  def end_epoch(self, *, step: int, epoch: int, eval_sums: dict, state_fn, layer_stats_fn=None, keep_best=None) -> None:
    """Everything after an epoch's evaluation: logs, monitor, the best state, checkpoints, early stop.

    `state_fn()` gives this run's state on the device (called only when something needs it);
    `keep_best(state)` turns it into something that outlives the next dispatch (a reference when the
    state is never donated, a copy otherwise).
    """
    cfg_train = self.config.train
    self.step, self.epoch = step, epoch
    report = losses.class_report(eval_sums["confusion"]) if "confusion" in eval_sums else None
    eval_metrics = {**losses.finalize_metrics(eval_sums, report), **group_metrics.scalars(eval_sums, self.group_names)}
    if not np.isfinite(eval_metrics["loss"]):
      loss = eval_metrics["loss"]
      raise NonFiniteLossError(f"non-finite eval loss {loss} after step {step}; stopped. " + self._last_good())
    self.eval_last = eval_metrics
    self._write_epoch(step, epoch, eval_metrics, eval_sums, report, state_fn, layer_stats_fn)
    is_best = self.monitor.update(eval_metrics[cfg_train.monitor.split("/")[1]], epoch=epoch, step=step)
    es = cfg_train.early_stopping
    self.stopped_early = should_stop(self.monitor, enabled=es.enabled, patience=es.patience)
    keep = keep_best or (lambda s: s)
    if is_best:
      self.best_state, self.best_meta = keep(state_fn()), self._meta(epoch)
    # The policy first, always: with every_seconds it is a collective every process must reach at every epoch's
    # end (the runs still active are the same in every process: their metrics are all-gathered).
    save_now = self.policy.epoch_ended(epoch) or self.stopped_early or epoch == cfg_train.epochs
    self.writer.flush(force=save_now)  # the records reach the disk (or fail) here, before the checkpoint
    # Several processes: a log write that failed (on process 0) stops every one here, before this epoch's
    # checkpoint, which would otherwise be resumed past the records that were never written
    log_failures.agreed([self.writer])
    if save_now:
      self.save(state_fn(), self._meta(epoch))
    if self.stopped_early:
      self.final_state = keep(state_fn())

  def _write_epoch(self, step, epoch, eval_metrics, eval_sums, report, state_fn, layer_stats_fn) -> None:
    cfg_train, writer = self.config.train, self.writer
    writer.write(step, epoch, "eval", eval_metrics, details=class_details(eval_sums, report, self.class_names))
    if report is not None and (epoch % cfg_train.class_report_every == 0 or epoch == cfg_train.epochs):
      writer.write_class_report(step, eval_sums["confusion"], report, class_names=self.class_names)
    if epoch % cfg_train.histogram_every == 0:
      writer.write_histograms(step, state_fn().params)
    if layer_stats_fn is not None and cfg_train.layer_stats_every and epoch % cfg_train.layer_stats_every == 0:
      writer.write(step, epoch, "layers", layer_stats_fn())

  def save(self, state, meta: dict) -> None:
    started = self.policy.clock()
    background = self.background_saves
    if self.best_state is not None:  # the best first: a latest checkpoint's recorded best is always on disk
      self.ckpt.save(
        self.best_state,
        meta=self.best_meta,
        which=checkpoints.BEST,
        config_hash=self.config_hash,
        background=background,
      )
    self.ckpt.save(state, meta=meta, config_hash=self.config_hash, background=background)
    self.policy.saved(started)

  def save_interrupted(self, state, *, step: int, epoch: int, offset: int) -> None:
    """A checkpoint where a signal stopped the run: `epoch` epochs done and `offset` steps into the next."""
    self.step = step
    self.writer.flush(force=True)
    self.save(state, self._meta(epoch, offset))
    self.ckpt.wait()

  def final(self, state, place):
    """The state the run ends with: the best one when early stopping restores it, else `state`."""
    es = self.config.train.early_stopping
    self.restored_best = None
    if es.enabled and es.restore_best and self.monitor.best_value is not None:
      self.restored_best = self.monitor.best_step
      if self.best_state is not None and int(jax.device_get(self.best_state.step)) == self.restored_best:
        return place(self.best_state)
      # The best came before a resume: restored (and verified) from its checkpoint, once written.
      self.ckpt.wait()
      return self.ckpt.restore(self.restored_best, state, which=checkpoints.BEST, config_hash=self.accepted_hashes)[0]
    return state

  def finish(self, *, final_eval: dict, final_sums: dict, trained: bool, extra: dict) -> dict:
    """summary.json (on the main process) and the summary."""
    cfg_train = self.config.train
    summary = {
      "status": "completed",
      "final": {
        "eval": {**final_eval, **group_metrics.scalars(final_sums, self.group_names)},
        "train": self.train_last,
        **class_details(final_sums, class_names=self.class_names),
        **({"per_group": group_metrics.report(final_sums, self.group_names)} if self.group_names else {}),
      },
      "best": {
        "metric": cfg_train.monitor,
        "value": self.monitor.best_value,
        "epoch": self.monitor.best_epoch,
        "step": self.monitor.best_step,
      },
      "steps": self.step,  # steps trained; the final parameters are from `restored_best_step` when set
      "restored_best_step": getattr(self, "restored_best", None),
      "epochs_completed": self.epoch if trained else self.start_epoch,
      "stopped_early": bool(self.stopped_early),
      "resumed_from_step": self.resumed_from,
      "loss_trend": divergence.trend(self.loss["initial"], self.train_last.get("loss"), self.loss["peak"]),
      **extra,
    }
    started = time.perf_counter()
    self.ckpt.wait()  # summary.json says "completed" only once the last checkpoint is on disk
    summary["checkpoints"] = {
      "saved": self.policy.saves,
      "seconds_on_the_loop": self.policy.seconds,  # the save calls while training (the writing is in the background)
      "share_of_training": self.policy.seconds / extra["train_seconds"] if extra.get("train_seconds") else None,
      "final_wait_seconds": time.perf_counter() - started,  # the last checkpoint's writing, after training
    }
    # Process 0 writes; a failure there stops every process (the others would wait at the last barrier)
    parallel.run_on_main(lambda: log_failures.write_summary(self.workdir, summary), what="writing summary.json")
    return summary

  def fail(self, error: Exception, extra: dict) -> dict:
    """A run of a group that failed (non-finite loss): summary.json says so; its last checkpoint stays."""
    self.failed = str(error)
    self.failed_summary = {
      "status": "failed",
      "error": self.failed,
      "steps": self.step,
      "epochs_completed": self.epoch,
      **extra,
    }
    parallel.run_on_main(
      lambda: log_failures.write_summary(self.workdir, self.failed_summary), what="writing summary.json"
    )
    return self.failed_summary

  def close(self) -> None:
    if self.writer is not None:
      self.writer.close()
    self.ckpt.wait()
    self.ckpt.close()
