"""Training speed with jaxflow's own programs: time per step, examples/s, step vs input-wait share.

Everything runs jaxflow's `Programs` (assembled by `jaxflow.run.assemble` from the config, as `jaxflow
train` assembles them) on one device, through the timing protocol:

- **step**: one train step per dispatch (`Programs.chunk`, num_steps=1: gather the batch by index
  from the device-resident data, forward, backward, optimizer), synchronized after each;
- **async**: K one-step dispatches back to back, synchronized once (what the loop does on one device);
- **dispatch_k**: the K-step program jaxflow's dispatch plan picks for this model (a `lax.scan` over
  K steps; a whole epoch for MLPs and RNNs; convolutional models on CPU stay at one step, see
  training.dispatch.dispatch_plan), per step;
- **input wait**, two ways. Device-resident data (jaxflow's default for arrays): the input work is the
  gather inside the step; its share is estimated as the time of that gather alone (a separate
  program) over the step's. Host-fed (the graph datasets' path, and any pipeline that feeds batches
  from the host): `input` = host batch assembly + transfer to the device, `step` = the step on a batch
  already there, `serial` = both one after the other (input share = input / serial), `prefetched` =
  the step dispatched and the next batch prepared while it runs (device idle share = 1 - step /
  prefetched, floored at 0).
"""

from __future__ import annotations

import time

import jax
import numpy as np

from jaxflow import models
from jaxflow.profiler import timing
from jaxflow.run.assemble import Assembled, assemble

MAX_K = 64  # async dispatch chain length (and dispatch_k when the plan's K is larger)
ROTATION = 16  # distinct batches the timed calls rotate through


def _host_seconds(fn, repeats: int) -> float:
  """Median seconds of a host-only function (numpy work, nothing dispatched to a device)."""
  seconds = []
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    out = fn()
    seconds.append(time.perf_counter() - start)
    if any(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(out)):
      raise timing.UnsynchronizedError("a host-only timing returned device arrays: time it with timing.time_calls")
  return float(np.median(seconds))


def profile_training(config, problem, device, protocol: timing.Protocol, *, compiled=None):
  """(the training measurements, a callable that runs one more train step and returns its outputs).
  `compiled`: the training run's `run.assemble.Compiled` (its executables are reused: same device only)."""
  with jax.default_device(device):
    run = assemble([config], problem=problem, compiled=compiled)
    compile_start = run.parts.programs.compile_seconds  # reused programs carry the training run's compile seconds
    holder = {"state": run.state}
    out: dict = {
      "batch_size": config.train.batch_size,
      "steps_per_epoch": run.parts.steps_per_epoch,
      "device": str(device),
    }

    def host_step(batch):
      holder["state"], metrics = run.parts.programs.host_step(
        holder["state"], batch=batch, dropout_stream=run.streams["dropout"]
      )
      return holder["state"], metrics

    if run.on_host:
      host_batches, build_s, one_step = _graph_batches(run, out, host_step, device)
    else:
      host_batches, build_s, one_step = _device_resident(run, out, holder, device, protocol)
    out.update(_host_fed(host_step, host_batches, device, protocol, build_s, config.train.batch_size))
    if run.on_host:
      step_s = out["host_fed"]["step_s"]
      out["step"] = out["host_fed"]["timings"]["step"] | {"examples_per_s": config.train.batch_size / step_s}
      skipped = {"applicable": False, "reason": "graph datasets train one host batch per dispatch; see host_fed"}
      out["async"], out["dispatch_k"] = skipped, skipped
    # jaxflow programs compiled for these measurements (not reused)
    out["compile_s"] = run.parts.programs.compile_seconds - compile_start
    return out, one_step


def _graph_batches(run: Assembled, out: dict, host_step, device):
  """Graph datasets: the host-fed path is jaxflow's own; (batches to rotate, host build seconds, one step)."""
  epoch_batches = list(run.data.train_batches(0))
  count = min(ROTATION, max(2, len(epoch_batches)))
  host_batches = [epoch_batches[i % len(epoch_batches)] for i in range(count)]
  build_s = _host_seconds(lambda: list(run.data.train_batches(1)), 3) / max(1, run.parts.steps_per_epoch)
  out["path"] = "host batches (graphs padded on the host), one step per dispatch: jaxflow's path for graph datasets"
  out["device_resident"] = {
    "applicable": False,
    "reason": "graph batches are built and padded on the host; there is no device-resident gather",
  }
  out["jaxflow_steps_per_dispatch"] = 1
  return host_batches, build_s, (lambda: host_step(jax.device_put(host_batches[0], device)))


def _device_resident(run: Assembled, out: dict, holder: dict, device, protocol):
  """Array datasets: one step, K async steps, jaxflow's K-step program and the gather alone, timed on the
  device-resident data; (host batches for the host-fed comparison, 0 build seconds, one step)."""
  config, programs, data, streams = run.configs[0], run.parts.programs, run.data, run.streams
  steps_per_epoch = run.parts.steps_per_epoch
  indices = programs.indices(data, streams, 0)
  host_indices = np.asarray(jax.device_get(indices))
  host_inputs, host_labels = jax.device_get(data.train_inputs), np.asarray(jax.device_get(data.train_labels))

  def host_batch(i):
    rows = host_indices[i % steps_per_epoch]
    inputs = jax.tree.map(lambda a: a[rows], host_inputs)
    return {"inputs": inputs, "labels": host_labels[rows], "mask": np.ones(rows.shape, np.float32)}

  def chunk(offset, num_steps):
    holder["state"], metrics = programs.chunk(
      holder["state"], data=data, epoch_indices=indices, offset=offset, num_steps=num_steps, streams=streams
    )
    return holder["state"], metrics

  rotation = [(i,) for i in range(min(ROTATION, steps_per_epoch))]
  plan_k = 1 if models.has_conv(config.model) and device.platform == "cpu" else run.parts.per_dispatch
  k_async, k = min(MAX_K, steps_per_epoch), min(plan_k, MAX_K, steps_per_epoch)

  def async_k():
    results = [chunk(i % steps_per_epoch, 1) for i in range(k_async)]
    return results[-1], [m for _, m in results]

  gather = jax.jit(lambda inputs, labels, idx: (jax.tree.map(lambda a: a[idx], inputs), labels[idx]))
  cases = {"step": (lambda offset: chunk(offset, 1), rotation), "async": (async_k, [()])}
  if plan_k > 1:
    cases["dispatch_k"] = (lambda: chunk(0, k), [()])
  cases["gather"] = (lambda i: gather(data.train_inputs, data.train_labels, indices[i]), rotation)
  timings = timing.time_interleaved(cases, protocol)
  _device_resident_results(out, timings, config, plan_k=plan_k, k=k, k_async=k_async)
  return [host_batch(i) for (i,) in rotation], 0.0, (lambda: chunk(0, 1))


def _device_resident_results(out: dict, timings: dict, config, *, plan_k: int, k: int, k_async: int) -> None:
  batch_size, step_s = config.train.batch_size, timings["step"].median
  async_s = timings["async"].median
  out["path"] = "device-resident data, batch gathered by index inside the step (jaxflow's path for array datasets)"
  out["step"] = timings["step"].to_dict() | {"examples_per_s": batch_size / step_s}
  out["async"] = {
    "k": k_async,
    "per_step_s": async_s / k_async,
    "examples_per_s": batch_size * k_async / async_s,
    "gain_over_step": step_s * k_async / async_s,
    "timing": timings["async"].to_dict(),
  }
  if "dispatch_k" in timings:
    k_s = timings["dispatch_k"].median
    out["dispatch_k"] = {
      "k": k,
      "per_step_s": k_s / k,
      "examples_per_s": batch_size * k / k_s,
      "gain_over_step": step_s * k / k_s,
      "timing": timings["dispatch_k"].to_dict(),
    }
  else:
    conv = plan_k == 1 and models.has_conv(config.model)
    note = "jaxflow's plan here is one step per dispatch" + (
      " (convolutional model on CPU: jax-ml/jax#12868)" if conv else ""
    )
    out["dispatch_k"] = {"k": 1, "note": note}
  out["device_resident"] = {
    "applicable": True,
    "gather_s": timings["gather"].median,
    "input_share_estimate": timings["gather"].median / step_s,
    "note": "the gather timed as its own program; inside the step XLA may fuse it",
  }
  out["jaxflow_steps_per_dispatch"] = plan_k


def _host_fed(host_step, host_batches, device, protocol, build_s: float, batch_size: int) -> dict:
  ready = {"batch": jax.device_put(host_batches[0], device)}
  n = len(host_batches)

  def feed(i):
    return jax.device_put(host_batches[i % n], device)

  def serial(i):
    return host_step(feed(i))

  def step_only(i):
    return host_step(ready["batch"])

  def prefetched(i):
    state, metrics = host_step(ready["batch"])  # dispatched; runs while the next batch is prepared
    ready["batch"] = feed(i + 1)
    return state, metrics, ready["batch"]

  index = [(i,) for i in range(n)]
  t = timing.time_interleaved(
    {"input": (feed, index), "step": (step_only, index), "serial": (serial, index), "prefetched": (prefetched, index)},
    protocol,
  )
  input_s, step_s = t["input"].median + build_s, t["step"].median
  serial_s, prefetched_s = t["serial"].median + build_s, t["prefetched"].median + build_s
  return {
    "host_fed": {
      "host_build_s": build_s,
      "input_s": input_s,
      "step_s": step_s,
      "serial_s": serial_s,
      "prefetched_s": prefetched_s,
      "input_share_serial": input_s / serial_s,
      "step_share_serial": step_s / serial_s,
      "device_idle_share_prefetched": max(0.0, 1.0 - step_s / prefetched_s),
      "examples_per_s_serial": batch_size / serial_s,
      "examples_per_s_prefetched": batch_size / prefetched_s,
      "timings": {k: v.to_dict() for k, v in t.items()},
    }
  }
