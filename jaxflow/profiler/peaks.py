"""Each device's measured peaks, the roof of its roofline: matmul FLOP/s per dtype and copy bandwidth.

Measured, not read from a datasheet: a square matmul (`n x n @ n x n`, 2 n^3 FLOPs) in f32, bf16 and
int8 (int8 x int8 -> int32 accumulation), and a streaming elementwise kernel `y = y * c + d` (bytes
moved per pass = read + write = 2 x size; XLA's own `bytes accessed` for one pass is recorded next to
it, `xla_bytes_accessed_per_pass`, for the reader to compare, not checked here). Each is timed through
the protocol of `timing` (warm-up, block_until_ready inside the timed interval, repeats), and the figure
is the *minimum* time over the repeats, not the median: a peak is what the hardware can do, and noise
(other processes, interrupts, frequency dips) only ever slows a repeat, so the fastest one is the least
contaminated estimate of it (copy_bandwidth also records the median's figure, `median_bytes_per_s`).
The best of a few sizes is the peak, since small sizes under-fill a big device. Bandwidth is measured
for a ladder of working sets (cache-resident up to device memory); a program's roofline uses the
bandwidth measured for a working set of its size (`bandwidth_for`: its argument + output + temporary
bytes), since a small model's weights and activations stay in cache and would otherwise beat a
device-memory roof. The ladder reported is monotone (`monotone_ladder`): a smaller working set is never
reported slower than a larger one (the raw best-of-repeats figure is kept as `measured_bytes_per_s`).
On a CPU the ladder's footprints (2x each array: 0.5, 16, 32, 256 MiB) straddle
typical L2, L3 and DRAM sizes; the report records the machine's cache sizes next to them. f32 matmuls run at the
backend's default precision (on NVIDIA GPUs XLA may use TF32 for them; `matmul_precision` says so).

`measure_peaks(device)` takes a few seconds on a CPU; run_profile measures each device once per run
and records the figures (and the sizes that gave them) in report.json, and the suite passes one
measurement to all the configs it profiles.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.profiler import hlo, timing
from jaxflow.run.environment import load_average

SIZES = {"cpu": (512, 1024, 2048), "gpu": (2048, 4096, 8192), "tpu": (2048, 4096, 8192)}
# Streaming bandwidth by working set (one array; a pass reads and writes it: 2x these bytes), smallest
# first: cache-resident sizes (each repeated in a loop inside one program, so dispatch overhead does not
# count) up to device memory. The last one is the device-memory bandwidth.
COPY_LADDER = {"cpu": (256 << 10, 8 << 20, 16 << 20, 128 << 20), "gpu": (4 << 20, 2 << 30), "tpu": (4 << 20, 2 << 30)}
MOVED_PER_MEASUREMENT = 1 << 30  # bytes each timed program moves at least (a cache-resident array loops)
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "int8": jnp.int8}
PEAK_PROTOCOL = timing.Protocol(warmup=2, repeats=7, min_repeats=3, max_seconds=1.0, rounds=1)


def _matmul(dtype):
  if dtype == jnp.int8:
    return lambda a, b: jax.lax.dot_general(a, b, (((1,), (0,)), ((), ())), preferred_element_type=jnp.int32)
  return lambda a, b: a @ b


def _operands(n: int, dtype, device, count: int = 2):
  rng = np.random.default_rng(n)
  make = (
    (lambda: rng.integers(-100, 100, (n, n), dtype=np.int8))
    if dtype == jnp.int8
    else (lambda: rng.standard_normal((n, n), dtype=np.float32))
  )
  return [tuple(jax.device_put(jnp.asarray(make(), dtype), device) for _ in range(2)) for _ in range(count)]


def matmul_peak(device, dtype_name: str, sizes=None, protocol: timing.Protocol = PEAK_PROTOCOL) -> dict:
  """{'flops_per_s', 'n', 'by_size'}: the best square-matmul FLOP/s over `sizes`."""
  sizes = sizes or SIZES.get(device.platform, SIZES["cpu"])
  dtype = DTYPES[dtype_name]
  by_size = {}
  for n in sizes:
    operands = _operands(n, dtype, device)
    compiled = jax.jit(_matmul(dtype)).lower(*operands[0]).compile()
    t = timing.time_calls(compiled, operands, protocol, name=f"{dtype_name} matmul {n}")
    by_size[str(n)] = 2.0 * n**3 / min(t.seconds)
    del operands
  best = max(by_size, key=by_size.get)
  return {"flops_per_s": by_size[best], "n": int(best), "by_size": by_size}


def copy_bandwidth(device, nbytes: int, protocol: timing.Protocol = PEAK_PROTOCOL) -> dict:
  """{'bytes_per_s', 'array_bytes', 'passes', ...}: streaming read + write bandwidth over a float32 array
  of `nbytes`: `y = y * c + d` repeated `passes` times in one program (at least 4, and enough to move
  MOVED_PER_MEASUREMENT bytes), so dispatch and the first touch of the freshly allocated output (page
  faults on a CPU) are amortized; an optimization barrier keeps XLA from fusing the passes into one."""
  n = nbytes // 4
  passes = max(4, MOVED_PER_MEASUREMENT // (2 * n * 4))
  arrays = [(jax.device_put(jnp.full((n,), float(i), jnp.float32), device),) for i in range(2)]
  one_pass = jax.jit(lambda x: x * 0.999 + 0.001).lower(*arrays[0]).compile()
  stream = jax.jit(
    lambda x: jax.lax.fori_loop(0, passes, lambda _, y: jax.lax.optimization_barrier(y * 0.999 + 0.001), x)
  )
  compiled = stream.lower(*arrays[0]).compile()
  t = timing.time_calls(compiled, arrays, protocol, name=f"copy bandwidth {nbytes} B")
  moved = 2 * n * 4 * passes
  return {
    "bytes_per_s": moved / min(t.seconds),
    "median_bytes_per_s": moved / t.median,
    "array_bytes": n * 4,
    "passes": passes,
    "xla_bytes_accessed_per_pass": hlo.cost(one_pass)["bytes_accessed"],
  }


def monotone_ladder(ladder: list[dict]) -> list[dict]:
  """The ladder with each entry's `bytes_per_s` raised to the best measured at any larger working set, so a
  smaller working set is never reported slower than a larger one. Why: data that fits a larger set's cache
  level fits this one's too, so the hardware can stream it at least as fast; a lower figure at a small size
  is measurement overhead (the loop's per-pass cost weighs more on a small array) or noise, not a slower
  memory. The raw figure stays as `measured_bytes_per_s` and `envelope` says whether it was raised."""
  out = sorted((dict(e) for e in ladder), key=lambda e: e["array_bytes"])
  best = 0.0
  for entry in reversed(out):
    measured = entry.get("measured_bytes_per_s", entry["bytes_per_s"])
    best = max(best, measured)
    entry.update(measured_bytes_per_s=measured, bytes_per_s=best, envelope=best > measured)
  return out


def bandwidth_entry(peaks: dict, working_set: float | None) -> dict | None:
  """The ladder entry whose bandwidth is the roof of a working set of `working_set` bytes: the smallest
  whose read + write footprint holds it (else device memory's, the largest); None without a ladder."""
  ladder = sorted(peaks.get("copy_ladder", []), key=lambda e: e["array_bytes"])
  if not ladder:
    return None
  if working_set:
    for entry in ladder:
      if 2 * entry["array_bytes"] >= working_set:
        return entry
  return ladder[-1]


def bandwidth_for(peaks: dict, working_set: float | None) -> float | None:
  """The measured bandwidth for a working set of `working_set` bytes (`bandwidth_entry`'s), else the copy's."""
  entry = bandwidth_entry(peaks, working_set)
  return entry["bytes_per_s"] if entry else peaks.get("copy", {}).get("bytes_per_s")


def measure_peaks(device, *, quick: bool = False) -> dict:
  """Peak matmul FLOP/s (f32, bf16, int8) and copy bandwidth of `device`. `quick`: small sizes (tests)."""
  start = time.perf_counter()
  sizes = (256,) if quick else None
  protocol = timing.QUICK if quick else PEAK_PROTOCOL
  matmul = {}
  for name in DTYPES:
    try:
      matmul[name] = matmul_peak(device, name, sizes, protocol)
    except Exception as e:
      matmul[name] = {"flops_per_s": None, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
  sizes = (256 << 10, 16 << 20) if quick else COPY_LADDER.get(device.platform, COPY_LADDER["cpu"])
  ladder = monotone_ladder([copy_bandwidth(device, nbytes, protocol) for nbytes in sizes])
  return {
    "matmul": matmul,
    "copy": ladder[-1],  # device memory (the largest set: the envelope never raises it)
    "copy_ladder": ladder,
    "matmul_precision": str(jax.config.jax_default_matmul_precision or "default"),
    "quick": quick,
    "seconds": time.perf_counter() - start,
    "load_average": load_average(),
  }


def peak_flops(peaks: dict, dtype_name: str) -> float | None:
  entry = peaks.get("matmul", {}).get(dtype_name) or {}
  return entry.get("flops_per_s")
