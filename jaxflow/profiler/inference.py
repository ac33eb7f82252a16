"""Inference at each batch size: unfused op by op vs XLA-fused jit vs the ahead-of-time executable.

For every (batch size, precision variant), on one device:

- **unfused**: the forward's jaxpr run op by op (`opbyop`): every primitive dispatched as its own
  kernel (nested jits opened up; a scan runs its body step by step in Python), no fusion at all;
- **eager**: the model's own code under `jax.disable_jit()`: op by op too, plus the framework's Python
  (flax rebuilds its modules on every call; an LSTM per time step), what a user running without jit pays;
- **jit**: `jax.jit(forward)(weights, x)`: XLA-fused, called through jit's dispatch path (cache
  lookup, argument flattening);
- **aot**: `jax.jit(forward).lower(weights, x).compile()` called directly: the same program, with the
  compiled executable in hand;
- **nofusion** (a diagnostic between the two): the same program compiled with XLA's fusion passes
  disabled (`xla_disable_hlo_passes`, `NO_FUSION_PASSES` per backend), one dispatch, every op its own
  kernel. unfused / aot is what jit buys (Python + per-op dispatch + fusion); nofusion / aot is what
  XLA's fusion passes buy inside one dispatch (on XLA:CPU the disabled passes include the library
  dot/conv + epilogue fusion, so a dot or convolution then runs as a standalone kernel: for
  matmul-heavy programs the ratio also carries that library path's advantage). `hlo.multi_op_fusions`
  of that program checks that no fusion is left; a backend whose pass names are unknown here (TPU) or
  that cannot compile it reports why instead.

All three are timed by the one protocol (`timing.time_interleaved`: interleaved rounds, synchronized,
median with p10/p90, rotated batches). Also recorded: lower and compile seconds; the optimized HLO's
fusions and ops (`hlo.hlo_stats`) next to the jaxpr's primitive count (what the unfused run
dispatches); FLOPs and bytes from cost_analysis and the roofline against the device's measured peaks
(the AOT time; the variant's matmul dtype picks the compute roof, the program's footprint = argument +
output + temporary bytes picks the bandwidth roof from the measured cache-to-memory ladder); memory_analysis (arguments,
outputs, temporaries); and the honesty check fused == unfused: max |difference| of their outputs
within `FUSION_RTOL[precision]` x max |output| (f32: 1e-4, summation order may differ between a fused
and an op-by-op matmul; bf16: 2^-6, two bf16 rounding steps; int8: 1e-3, a value on a rounding tie
may quantize one step apart). `within_tolerance` records the verdict; the tests assert it.
"""

from __future__ import annotations

import dataclasses
import time

import jax
import numpy as np

from jaxflow.precision.variants import Variant
from jaxflow.profiler import hlo, opbyop, peaks, roofline, timing

NO_FUSION_PASSES = {
  "cpu": "fusion,dot-library-rewriter",  # loop fusion, and the library (YNNPACK/oneDNN) dot+epilogue fusions
  "gpu": "priority-fusion,fusion,multi_output_fusion,horizontal-loop-fusion,horizontal-input-fusion,fusion-merger,"
  "gemm-fusion,triton-gemm-rewriter,cudnn-fusion-compiler,custom-kernel-fusion-rewriter",
}
FUSION_RTOL = {"f32": 1e-4, "bf16": 2.0**-6, "int8": 1e-3, "int8_weights": 1e-4}


def _short(e: Exception) -> str:
  """An exception in one short line: its type and the start of its first line."""
  return f"{type(e).__name__}: {str(e).splitlines()[0][:240] if str(e) else ''}"


def usable_variant(variant: Variant, device, sample) -> Variant:
  """`variant`, or its fallback (with a note) when this backend cannot compile its forward."""
  weights = jax.device_put(variant.weights, device)
  x = jax.device_put(variant.prepare(sample), device)
  try:
    jax.jit(variant.forward).lower(weights, x).compile()
    return variant
  except Exception as e:
    if variant.fallback is None:
      raise
    note = (
      f"{device.platform} could not compile it ({_short(e)}): "
      "emulated with float32 matmuls of the int8 values (accuracy is int8's, speed is not)"
    )
    return dataclasses.replace(variant, forward=variant.fallback, fallback=None, notes=[*variant.notes, note])


def _max_diff(a, b) -> float:
  """The largest |a - b| over all leaves, in float32."""
  leaves = zip(jax.tree.leaves(jax.device_get(a)), jax.tree.leaves(jax.device_get(b)))
  return float(max(np.max(np.abs(np.asarray(x, np.float32) - np.asarray(y, np.float32))) for x, y in leaves))


def _max_abs(a) -> float:
  """The largest |a| over all leaves, in float32."""
  return float(max(np.max(np.abs(np.asarray(x, np.float32))) for x in jax.tree.leaves(jax.device_get(a))))


def _agreement(fused, unfused, rtol: float) -> dict:
  """Whether two outputs agree within `rtol` x the largest |output| (the honesty check)."""
  diff, scale = _max_diff(fused, unfused), _max_abs(unfused)
  tolerance = rtol * max(scale, 1e-6)
  return {
    "max_abs_diff": diff,
    "max_abs_output": scale,
    "rtol": rtol,
    "tolerance": tolerance,
    "within_tolerance": bool(diff <= tolerance),
  }


def _efficiency(cost: dict, seconds: float, device_peaks: dict, dtype: str) -> float | None:
  """Efficiency against the device-memory bandwidth roof (the classic roofline's)."""
  return roofline.roofline(
    flops=cost["flops"],
    bytes_accessed=cost["bytes_accessed"],
    seconds=seconds,
    peak_flops=peaks.peak_flops(device_peaks, dtype),
    bandwidth=device_peaks.get("copy", {}).get("bytes_per_s"),
  )["efficiency"]


def profile_batch(
  variant: Variant, device, host_batches: list, batch_size: int, protocol: timing.Protocol, device_peaks: dict
) -> dict:
  """One (variant, batch size) row of the report (module docstring)."""
  weights = jax.device_put(variant.weights, device)
  xs = [jax.device_put(variant.prepare(b), device) for b in host_batches]
  forward = variant.forward
  compiled, compile_times = _compile_timed(forward, weights, xs[0])
  closed = jax.make_jaxpr(forward)(weights, xs[0])
  program = opbyop.OpByOp(forward, weights, xs[0])

  def unfused(x):
    return program(weights, x)

  def eager(x):
    with jax.disable_jit():
      return forward(weights, x)

  timings, nofusion, unfused_compiled = _time_variants(forward, weights, xs, device, compiled, unfused, protocol)
  timings["eager"] = timing.time_calls(eager, [(x,) for x in xs], _light(protocol), name="eager")
  rtol = FUSION_RTOL[variant.name]
  fused_out, unfused_out = compiled(weights, xs[0]), unfused(xs[0])
  if unfused_compiled is not None:
    nofusion["vs_fused"] = _agreement(fused_out, unfused_compiled(weights, xs[0]), rtol)
  eager_agreement = _agreement(fused_out, eager(xs[0]), rtol)
  cost = hlo.cost(compiled)
  memory = hlo.memory(compiled)
  return {
    "precision": variant.name,
    "batch_size": batch_size,
    "batch_bytes": timing.tree_bytes(xs[0]),
    "weights_bytes": timing.tree_bytes(weights),
    "timings": {name: t.to_dict() for name, t in timings.items()},
    "throughput_per_s": {name: batch_size / t.median for name, t in timings.items()},
    "fusion_speedup": _speedups(timings),
    "nofusion": nofusion,
    "compile": compile_times,
    "hlo": hlo.hlo_stats(compiled.as_text()),
    "jaxpr": {
      "primitives": hlo.count_jaxpr_eqns(closed),
      "dispatched_per_call": program.dispatches,
      "matmuls": hlo.jaxpr_matmul_dtypes(closed),
    },
    "cost": cost,
    "memory": memory,
    "roofline": _roofline_entry(cost, memory, timings["aot"].median, device_peaks, variant.compute_dtype),
    "fused_vs_unfused": _agreement(fused_out, unfused_out, rtol),
    "fused_vs_eager": eager_agreement,
  }


def _compile_timed(forward, weights, x) -> tuple:
  """(the AOT executable, {lower_s, compile_s}) of a fresh jit: timed from scratch, not from jit's cache."""
  fresh = jax.jit(lambda w, x: forward(w, x))  # a new function: traced, lowered and compiled from scratch
  start = time.perf_counter()
  lowered = fresh.lower(weights, x)
  lowered_at = time.perf_counter()
  compiled = lowered.compile()
  compiled_at = time.perf_counter()
  return compiled, {"lower_s": lowered_at - start, "compile_s": compiled_at - lowered_at}


def _time_variants(forward, weights, xs, device, compiled, unfused, protocol: timing.Protocol) -> tuple:
  """(timings of unfused, jit, AOT and no-fusion where it compiles; the no-fusion record; its executable)."""
  jitted = jax.jit(forward)
  cases = {
    "unfused": (unfused, [(x,) for x in xs]),
    "jit": (lambda x: jitted(weights, x), [(x,) for x in xs]),
    "aot": (lambda x: compiled(weights, x), [(x,) for x in xs]),
  }
  nofusion = _nofusion(forward, weights, xs, device)
  unfused_compiled = nofusion.pop("compiled", None)
  if unfused_compiled is not None:
    cases["nofusion"] = (lambda x: unfused_compiled(weights, x), [(x,) for x in xs])
  return timing.time_interleaved(cases, protocol), nofusion, unfused_compiled


def _light(protocol: timing.Protocol) -> timing.Protocol:
  """A lighter protocol for eager calls: a diagnostic whose Python can take a second a call (the digits LSTM)."""
  return dataclasses.replace(
    protocol,
    warmup=1,
    min_repeats=min(3, protocol.min_repeats),
    repeats=min(10, protocol.repeats),
    max_seconds=protocol.max_seconds / 2,
  )


def _speedups(timings: dict) -> dict:
  """Each slower variant's median time over jit's or the AOT executable's."""
  aot = timings["aot"].median
  return {
    "unfused_over_jit": timings["unfused"].median / timings["jit"].median,
    "unfused_over_aot": timings["unfused"].median / aot,
    "jit_over_aot": timings["jit"].median / aot,
    "nofusion_over_aot": timings["nofusion"].median / aot if "nofusion" in timings else None,
    "eager_over_aot": timings["eager"].median / aot,
  }


def _roofline_entry(cost: dict, memory: dict, aot: float, device_peaks: dict, dtype: str) -> dict:
  """The AOT time against the roofline whose bandwidth roof fits the program's working set."""
  # The working set that picks the bandwidth roof: the memory the program touches (arguments, outputs,
  # temporaries), not `bytes accessed` (which counts every re-read of data that stays in cache).
  footprint = (
    sum(memory.get(k) or 0 for k in ("argument_bytes", "output_bytes", "temp_bytes")) or cost["bytes_accessed"]
  )
  level = peaks.bandwidth_entry(device_peaks, footprint)
  bandwidth = peaks.bandwidth_for(device_peaks, footprint)
  return roofline.roofline(
    flops=cost["flops"],
    bytes_accessed=cost["bytes_accessed"],
    seconds=aot,
    peak_flops=peaks.peak_flops(device_peaks, dtype),
    bandwidth=bandwidth,
  ) | {
    "compute_roof": dtype,
    "bandwidth_bytes_per_s": bandwidth,  # the diagonal roof this row is compared with (the plot draws it)
    "bandwidth_working_set_bytes": 2 * level["array_bytes"] if level else None,
    "working_set_bytes": footprint,
    "efficiency_vs_device_memory": _efficiency(cost, aot, device_peaks, dtype),
  }


def _nofusion(forward, weights, xs, device) -> dict:
  """The forward compiled with fusion disabled: {'compiled', 'hlo', 'passes', 'compile_s'} or why not."""
  passes = NO_FUSION_PASSES.get(device.platform)
  if passes is None:
    return {
      "applicable": False,
      "reason": f"the names of XLA:{device.platform.upper()}'s fusion passes are not known here",
    }
  start = time.perf_counter()
  try:
    compiled = (
      jax.jit(lambda w, x: forward(w, x))
      .lower(weights, xs[0])
      .compile(compiler_options={"xla_disable_hlo_passes": passes})
    )
  except Exception as e:
    return {"applicable": False, "reason": f"compiling without {passes} failed: {_short(e)}"}
  stats = hlo.hlo_stats(compiled.as_text())
  return {
    "applicable": True,
    "compiled": compiled,
    "passes": passes,
    "compile_s": time.perf_counter() - start,
    "hlo": {k: stats[k] for k in ("ops", "fusions", "multi_op_fusions", "matmuls")},
  }


def profile_inference(
  variants: list[Variant],
  workload,
  device,
  batch_sizes: list[int],
  protocol: timing.Protocol,
  device_peaks: dict,
  *,
  log=None,
) -> list[dict]:
  """Rows for every batch size x variant on `device`."""
  rows = []
  for batch_size in batch_sizes:
    sample = workload.batches(batch_size, 1)[0]
    count = timing.rotations(timing.tree_bytes(sample), protocol)
    host_batches = workload.batches(batch_size, count)
    for variant in variants:
      if log:
        log(f"  inference {variant.name} batch {batch_size}")
      rows.append(profile_batch(variant, device, host_batches, batch_size, protocol, device_peaks))
  return rows
