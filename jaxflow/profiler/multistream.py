"""Multi-stream execution and kernel auto-tuning, measured where they apply.

**Asynchronous dispatch**: K batches through the AOT-compiled f32 forward, (a) synchronized after each
(`block_until_ready` per batch: the host waits for the device every time) vs (b) dispatched back to
back and synchronized once (the host queues work while the device runs). Gain = (a) / (b).

**Two models at once**: two instances of the model (separate weight buffers, as two served models
would have), each running K batches: sequential (A's batch then B's, each synchronized), interleaved
asynchronous dispatch (A, B, A, B ... then one synchronization), and two host threads each driving
one model. Gain = sequential / concurrent. Whether two programs really overlap depends on the
backend: XLA:CPU runs each program on the same pool of cores; a GPU runs them on one compute stream
per device unless told otherwise, so overlap there is mostly of host dispatch with device work.

**Kernel auto-tuning** (`--xla_gpu_autotune_level`, 0 = off .. 4 = default, the most thorough): on a
GPU, the forward compiled at each level (`compile(compiler_options={...})`), compile seconds and run
time by the protocol. XLA:CPU has no autotuner (it picks its kernels without timing candidates), so
on CPU the report says that instead of inventing a number.
"""

from __future__ import annotations

import threading
import time

import jax

from jaxflow.profiler import timing

AUTOTUNE_LEVELS = (4, 0, 1, 2)  # the default (4) first, on an empty autotune cache; 0 tunes nothing


def profile_multistream(variant, workload, device, batch_size: int, protocol: timing.Protocol, *, k: int = 16) -> dict:
  """Async dispatch of `k` batches vs syncing each, and two models sequential / interleaved / threaded."""
  weights_a = jax.device_put(variant.weights, device)
  weights_b = jax.tree.map(lambda a: a.copy(), weights_a)  # a second model's own buffers
  xs = [jax.device_put(variant.prepare(b), device) for b in workload.batches(batch_size, k)]
  compiled = jax.jit(variant.forward).lower(weights_a, xs[0]).compile()
  t = timing.time_interleaved(_cases(compiled, weights_a, weights_b, xs), protocol)
  med = {name: v.median for name, v in t.items()}
  return {
    "precision": variant.name,
    "batch_size": batch_size,
    "k": k,
    "async_dispatch": {
      "synced_per_batch_s": med["synced"] / k,
      "dispatched_per_batch_s": med["dispatched"] / k,
      "gain": med["synced"] / med["dispatched"],
    },
    "two_models": {
      "sequential_per_pair_s": med["two_sequential"] / k,
      "interleaved_per_pair_s": med["two_interleaved"] / k,
      "threads_per_pair_s": med["two_threads"] / k,
      "gain_interleaved": med["two_sequential"] / med["two_interleaved"],
      "gain_threads": med["two_sequential"] / med["two_threads"],
    },
    "timings": {name: v.to_dict() for name, v in t.items()},
  }


def _cases(compiled, weights_a, weights_b, xs: list) -> dict:
  """The five ways of running the batches, as `timing.time_interleaved` cases (each called without arguments)."""

  def synced():
    outs = []
    for x in xs:
      outs.append(jax.block_until_ready(compiled(weights_a, x)))
    return outs

  def dispatched():
    return [compiled(weights_a, x) for x in xs]

  def two_sequential():
    outs = []
    for x in xs:
      outs.append(jax.block_until_ready(compiled(weights_a, x)))
      outs.append(jax.block_until_ready(compiled(weights_b, x)))
    return outs

  def two_interleaved():
    outs = []
    for x in xs:
      outs += [compiled(weights_a, x), compiled(weights_b, x)]
    return outs

  def two_threads():
    results: dict[int, list] = {0: [], 1: []}

    def worker(i, weights):
      for x in xs:
        results[i].append(jax.block_until_ready(compiled(weights, x)))

    threads = [threading.Thread(target=worker, args=(i, w)) for i, w in enumerate((weights_a, weights_b))]
    for t in threads:
      t.start()
    for t in threads:
      t.join()
    return results[0] + results[1]

  return {
    name: (fn, [()])
    for name, fn in (
      ("synced", synced),
      ("dispatched", dispatched),
      ("two_sequential", two_sequential),
      ("two_interleaved", two_interleaved),
      ("two_threads", two_threads),
    )
  }


def profile_autotune(variant, workload, device, batch_size: int, protocol: timing.Protocol) -> dict:
  """Compile and run time of the forward at each `--xla_gpu_autotune_level` (GPU), or why not here."""
  if device.platform != "gpu":
    return {
      "applicable": False,
      "reason": "--xla_gpu_autotune_level is an XLA:GPU flag "
      "(it times candidate GEMM/convolution kernels on the GPU and keeps the fastest); "
      f"XLA:{device.platform.upper()} has no kernel autotuner, "
      "so there is nothing to compare and no number is reported",
    }
  weights = jax.device_put(variant.weights, device)
  xs = [(jax.device_put(variant.prepare(b), device),) for b in workload.batches(batch_size, 4)]
  levels = {}
  for level in AUTOTUNE_LEVELS:
    try:
      start = time.perf_counter()
      fresh = jax.jit(lambda w, x: variant.forward(w, x))  # a new function: compiled from scratch at this level
      compiled = fresh.lower(weights, xs[0][0]).compile(compiler_options={"xla_gpu_autotune_level": level})
      compile_s = time.perf_counter() - start
      t = timing.time_calls(lambda x, c=compiled: c(weights, x), xs, protocol, name=f"autotune level {level}")
      levels[str(level)] = {"compile_s": compile_s, "timing": t.to_dict()}
    except Exception as e:
      levels[str(level)] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
  return {
    "applicable": True,
    "precision": variant.name,
    "batch_size": batch_size,
    "levels": levels,
    "note": "compile_s includes autotuning; XLA keeps autotune results per process, "
    "so levels 1 and 2 (compiled after 4) may reuse its results and understate their compile time",
  }
