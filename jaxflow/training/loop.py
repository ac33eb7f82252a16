"""`train_and_evaluate(config, workdir)`: plain Python around jitted chunks of pure steps.

Shape of a run: validate (nothing written yet) -> workdir/config.json -> data on device -> state
(restored from the latest checkpoint if there is one) -> per epoch: chunks of `steps_per_dispatch` steps,
train metrics logged every `log_every` steps and at the epoch's end, evaluation, checkpoint, early
stopping -> summary.json.

Resuming restarts at an epoch boundary: the shuffle order is keyed by the epoch and dropout keys by the
step, so a resumed run computes exactly what the uninterrupted one would have (bitwise, same machine).
"""

from __future__ import annotations

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
from jaxflow.training import checkpoints, losses, optimizers, steps
from jaxflow.training.device_data import DeviceData, load_device_data
from jaxflow.training.state import TrainState, init_fn, num_params, params_sha256
from jaxflow.training.summary import environment
from jaxflow.training.validate import Problem, validate
from jaxflow.training.workdir import prepare_workdir
from jaxflow.training.writers import MetricWriter


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
  conv_on_cpu = config.model.name in models.CONV_MODELS and jax.default_backend() == "cpu"
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


class _Compiled:
  """jit-once wrappers of the pure steps, compiled ahead of time so compile seconds are measured."""

  def __init__(self, config: ml_collections.ConfigDict, problem: Problem, lr_fn, steps_per_epoch: int, unroll):
    step_fn = functools.partial(steps.train_step, loss_name=problem.loss, kind=problem.kind, lr_fn=lr_fn)
    eval_fn = functools.partial(steps.eval_step, loss_name=problem.loss, kind=problem.kind)
    self._chunk = jax.jit(
        functools.partial(steps.train_chunk, step_fn=step_fn, unroll=unroll), static_argnames="num_steps", donate_argnums=0
    )
    self._eval = jax.jit(functools.partial(steps.eval_chunk, eval_fn=eval_fn))
    self._indices = jax.jit(
        functools.partial(
            steps.epoch_indices, num_examples=problem.train_size, steps=steps_per_epoch, batch_size=config.train.batch_size
        )
    )
    self._cache: dict[object, object] = {}
    self.compile_seconds = 0.0

  def _get(self, key, jitted, *args):
    if key not in self._cache:
      start = time.perf_counter()
      self._cache[key] = jitted.lower(*args).compile()
      self.compile_seconds += time.perf_counter() - start
    return self._cache[key]

  def init_state(self, init, init_key) -> TrainState:
    return self._get("init", jax.jit(init), init_key)(init_key)

  def indices(self, data_stream, epoch):
    epoch = np.int32(epoch)
    return self._get("indices", self._indices, data_stream, epoch)(data_stream, epoch)

  def chunk(self, state, data: DeviceData, epoch_indices, offset: int, num_steps: int, dropout_stream):
    args = (state, data.train_inputs, data.train_labels, epoch_indices, np.int32(offset), dropout_stream)
    if ("chunk", num_steps) not in self._cache:
      start = time.perf_counter()
      self._cache[("chunk", num_steps)] = self._chunk.lower(*args, num_steps=num_steps).compile()
      self.compile_seconds += time.perf_counter() - start
    return self._cache[("chunk", num_steps)](*args)

  def evaluate(self, state, data: DeviceData) -> dict[str, float]:
    sums = self._get("eval", self._eval, state, data.eval_batches)(state, data.eval_batches)
    return losses.finalize_metrics(jax.device_get(sums))


def _check_finite_eval(metrics: dict[str, float], step: int, ckpt: checkpoints.Checkpointer, ckpt_dir: str) -> None:
  if not np.isfinite(metrics["loss"]):
    raise NonFiniteLossError(
        f"non-finite eval loss {metrics['loss']} after step {step}; stopped. Last good checkpoint: "
        f"step {ckpt.latest_step()} in {ckpt_dir}"
    )


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *, quiet: bool = False) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the summary written to summary.json."""
  wall_start = time.perf_counter()
  problem = validate(config)  # raises ConfigError before anything is written
  prepare_workdir(workdir, config)

  cfg_train = config.train
  steps_per_epoch = problem.train_size // cfg_train.batch_size
  total_steps = steps_per_epoch * cfg_train.epochs
  per_dispatch, unroll = dispatch_plan(config, steps_per_epoch)
  lr_fn = optimizers.create_schedule(config.optim, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  tx = optimizers.create_optimizer(config.optim, lr_fn)
  model = models.create_model(config.model, output_dim=problem.output_dim)
  streams = rng.streams(config)
  data = load_device_data(config, problem)
  compiled = _Compiled(config, problem, lr_fn, steps_per_epoch, unroll)
  state = compiled.init_state(init_fn(model, tx, problem.input_shape), streams["init"])

  ckpt_dir = os.path.join(workdir, "checkpoints")
  ckpt = checkpoints.Checkpointer(ckpt_dir, keep=config.checkpoint.keep, best_metric=cfg_train.monitor, best_mode=cfg_train.monitor_mode)
  monitor = Monitor(cfg_train.monitor_mode, cfg_train.early_stopping.min_delta)
  start_epoch, stopped_early, resumed_from = 0, False, ckpt.latest_step()
  if resumed_from is not None:
    state, meta = ckpt.restore(resumed_from, state)
    start_epoch, stopped_early = meta["epoch"], meta["stopped_early"]
    monitor = Monitor(**meta["monitor"])
  writer = MetricWriter(workdir, resume_step=resumed_from)
  progress = tqdm(
      total=total_steps, initial=int(resumed_from or 0), unit="step", dynamic_ncols=True,
      disable=quiet or not sys.stdout.isatty(), desc=os.path.basename(os.path.normpath(workdir)),
  )
  step, train_seconds, trained_steps = int(resumed_from or 0), 0.0, 0
  last_train: dict[str, float] = {}
  epoch = start_epoch
  try:
    for epoch in range(start_epoch, 0 if stopped_early else cfg_train.epochs):
      epoch_start, compile_before = time.perf_counter(), compiled.compile_seconds
      indices = compiled.indices(streams["data"], epoch)
      pending, pending_first_step, offset = [], step, 0
      next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
      for size in chunk_sizes(steps_per_epoch, per_dispatch):
        state, chunk_metrics = compiled.chunk(state, data, indices, offset, size, streams["dropout"])
        pending.append(chunk_metrics)
        offset, step = offset + size, step + size
        progress.update(size)
        if step >= next_log or offset == steps_per_epoch:
          host = jax.device_get(pending)
          bad = _first_non_finite(host)
          if bad is not None:
            raise NonFiniteLossError(
                f"non-finite training loss {bad[1]} at step {pending_first_step + bad[0] + 1} (epoch {epoch + 1}); "
                f"stopped. Last good checkpoint: step {ckpt.latest_step()} in {ckpt_dir}"
            )
          last_train = _aggregate_train(host)
          writer.write(step, epoch + 1, "train", last_train)
          progress.set_postfix(loss=f"{last_train['loss']:.4f}")
          pending, pending_first_step = [], step
          next_log = (step // cfg_train.log_every + 1) * cfg_train.log_every
      train_seconds += time.perf_counter() - epoch_start - (compiled.compile_seconds - compile_before)
      trained_steps += steps_per_epoch

      eval_metrics = compiled.evaluate(state, data)
      _check_finite_eval(eval_metrics, step, ckpt, ckpt_dir)
      writer.write(step, epoch + 1, "eval", eval_metrics)
      if (epoch + 1) % cfg_train.histogram_every == 0:
        writer.write_histograms(step, state.params)
      value = eval_metrics[cfg_train.monitor.split("/")[1]]
      is_best = monitor.update(value, epoch=epoch + 1, step=step)
      stopped_early = cfg_train.early_stopping.enabled and monitor.bad_epochs >= cfg_train.early_stopping.patience
      last_epoch = stopped_early or epoch + 1 == cfg_train.epochs
      if is_best or last_epoch or (epoch + 1) % config.checkpoint.every_epochs == 0:
        meta = {"epoch": epoch + 1, "stopped_early": stopped_early, "monitor": dataclasses.asdict(monitor)}
        ckpt.save(state, meta=meta, best_value=value if is_best else None)
      if stopped_early:
        break

    ckpt.wait()
    restored_best = None
    if cfg_train.early_stopping.enabled and cfg_train.early_stopping.restore_best and ckpt.best_step() is not None:
      restored_best = ckpt.best_step()
      state, _ = ckpt.restore(restored_best, state)
    final_eval = compiled.evaluate(state, data)
  finally:
    progress.close()
    writer.close()
    ckpt.wait()
    ckpt.close()

  summary = {
      "status": "completed",
      "final": {"eval": final_eval, "train": last_train},
      "best": {"metric": cfg_train.monitor, "value": monitor.best_value, "epoch": monitor.best_epoch, "step": monitor.best_step},
      "steps": step,  # steps trained; the final parameters are from `restored_best_step` when set
      "restored_best_step": restored_best,
      "epochs_completed": epoch + 1 if trained_steps else start_epoch,
      "stopped_early": bool(stopped_early),
      "resumed_from_step": resumed_from,
      "wall_seconds": time.perf_counter() - wall_start,
      "compile_seconds": compiled.compile_seconds,
      "train_seconds": train_seconds,
      "examples_per_second": trained_steps * cfg_train.batch_size / train_seconds if train_seconds else None,
      "steps_per_dispatch": per_dispatch,
      "num_params": num_params(state.params),
      "params_sha256": params_sha256(state.params),
      **environment(),
  }
  with open(os.path.join(workdir, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary
