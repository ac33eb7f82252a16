"""Speed, fusion, streams, autotuning and memory of exported models, measured on `jaxflow.load_model`'s programs.

Why these measurements live here and not in jaxflow: the study asks what a deployed artifact does, so every
number comes from the artifact as a user holds it (`model.exported`, the `jax.export` program, and `model(x)`),
timed with the profiler's protocol in small: warm-up calls first, `block_until_ready` inside the timed interval,
the variants of one comparison interleaved round by round (so a burst of load on the shared machine hits all of
them), medians over calls within a round, and the per-round values kept so ratios can be paired by round.
"""

from __future__ import annotations

import concurrent.futures
import statistics
import time

import jax
import numpy as np

NO_FUSION = "fusion,dot-library-rewriter"  # XLA:CPU's loop fusion and its library dot+epilogue fusions
# XLA:CPU's default code generator (its MLIR fusion emitters), pinned for every program the study compiles (so
# its figures do not depend on a process's XLA_FLAGS), which matters most to the fusion counts: with them every
# kernel is a `fusion` (a lone op too, when fusion is off), so the fusion counts compare kernels; with the older
# emitters (`--xla_cpu_use_fusion_emitters=false`, which the test suite sets to compile faster) fusion-off
# programs have none and the counts would mean something else. Other backends ignore the option.
EMITTERS = {"xla_cpu_use_fusion_emitters": True}
AUTOTUNE_LEVELS = (0, 4)  # XLA:GPU's --xla_gpu_autotune_level: off, full


def batch_of(card: dict, size: int, seed: int = 0) -> np.ndarray:
  """A batch of `size` inputs of the card's shape, dtype and value range (pixels are what the program reads)."""
  spec = card["input"]
  low, high = spec.get("range") or (0, 255)
  rng = np.random.default_rng(seed)
  return rng.integers(int(low), int(high) + 1, (size, *spec["shape"])).astype(spec["dtype"])


def calls_for(size: int, quick: bool) -> int:
  """Timed calls per round: many for tiny batches (microseconds each), fewer for big ones."""
  base = 8 if quick else 40
  return max(3, base // max(1, size // 64))


def _time_calls(fn, x, calls: int) -> float:
  """Median seconds of `calls` synchronized calls (after one warm-up call)."""
  jax.block_until_ready(fn(x))
  seconds = []
  for _ in range(calls):
    start = time.perf_counter()
    jax.block_until_ready(fn(x))
    seconds.append(time.perf_counter() - start)
  return statistics.median(seconds)


def interleaved(cases: dict, x, *, rounds: int, calls: int) -> dict[str, list[float]]:
  """{case: [median seconds of each round]}: every round times each case once, in turn."""
  out = {name: [] for name in cases}
  for _ in range(rounds):
    for name, fn in cases.items():
      out[name].append(_time_calls(fn, x, calls))
  return out


_PROGRAMS: dict = {}  # (artifact folder, batch size, options) -> (compiled program, seconds its compile took)


def compiled_timed(model, x, options: dict | None = None):
  """(the loaded program compiled for `x`'s batch size, with XLA compiler options if given; its compile seconds).
  Each (artifact, batch size, options) compiles once per process: the latency, fusion, streams and memory
  measurements of one size share the program, as a server holding the model would."""
  options = {**EMITTERS, **(options or {})}  # every measurement on XLA:CPU's default code generator
  key = (model.directory, x.shape[0], tuple(sorted(options.items())))
  if key not in _PROGRAMS:
    start = time.perf_counter()
    program = jax.jit(model.exported.call).lower(x).compile(compiler_options=options)
    _PROGRAMS[key] = (program, time.perf_counter() - start)
  return _PROGRAMS[key]


def compiled(model, x, options: dict | None = None):
  return compiled_timed(model, x, options)[0]


def latency(models: dict, card: dict, sizes, *, rounds: int, quick: bool) -> dict:
  """{size: {precision: [per-round median seconds]}}: each precision's artifact, interleaved, per batch size."""
  out = {}
  for size in sizes:
    x = batch_of(card, size)
    cases = {p: compiled(m, x) for p, m in models.items()}
    out[size] = interleaved(cases, x, rounds=rounds, calls=calls_for(size, quick))
  return out


def fusion_count(program) -> int:
  """Fusion computations in the optimized HLO (what XLA merged into single kernels)."""
  return sum(1 for line in program.as_text().splitlines() if " fusion(" in line)


def fusion(model, card: dict, sizes, *, rounds: int, quick: bool) -> dict:
  """Fused (the program as XLA compiles it) vs the same program with XLA's fusion passes disabled vs the loaded
  model's call without an outer jit (`jax.disable_jit`), per batch size; plus fusions in each HLO and the
  largest output difference between fused and unfused (fusion must not change the numbers)."""
  out = {}
  for size in sizes:
    x = batch_of(card, size, seed=1)
    fused, unfused = compiled(model, x), compiled(model, x, {"xla_disable_hlo_passes": NO_FUSION})

    def eager(xs, call=model.exported.call):
      with jax.disable_jit():
        return call(xs)

    times = interleaved(
      {"fused": fused, "no fusion": unfused, "disable_jit": eager}, x, rounds=rounds, calls=calls_for(size, quick)
    )
    a, b = fused(x), unfused(x)
    diff = max(float(np.max(np.abs(np.asarray(a[k], np.float32) - np.asarray(b[k], np.float32)))) for k in a)
    out[size] = {
      "seconds": times,
      "fusions": {"fused": fusion_count(fused), "no fusion": fusion_count(unfused)},
      "max_abs_output_difference": diff,
    }
  return out


def streams(model, card: dict, sizes, *, rounds: int, quick: bool) -> dict:
  """Throughput of one caller against two concurrent callers (two pool threads, started before the clock) doing
  the same k calls between them, and k calls dispatched back to back (one sync at the end) against a sync after
  each; examples per second. k grows for small batches so a measurement is not a handful of microseconds."""
  out = {}
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    for size in sizes:
      x = batch_of(card, size, seed=2)
      program = compiled(model, x)
      k = max(8, 256 // size)

      def calls(n, program=program, x=x):
        for _ in range(n):
          jax.block_until_ready(program(x))

      def two_callers(k=k, calls=calls):
        for f in [pool.submit(calls, k // 2), pool.submit(calls, k - k // 2)]:
          f.result()

      def dispatched(k=k, program=program, x=x):
        jax.block_until_ready([program(x) for _ in range(k)])

      cases = {"1 caller": lambda k=k: calls(k), "2 callers (threads)": two_callers}
      cases["dispatched back to back"] = dispatched
      wrapped = {n: (lambda _, f=f: f()) for n, f in cases.items()}
      times = interleaved(wrapped, None, rounds=rounds, calls=3 if quick else 7)
      per_second = {n: [k * size / s for s in v] for n, v in times.items()}
      out[size] = {"k": k, "seconds": times, "examples_per_second": per_second}
  return out


def autotune(model, card: dict, size: int, *, rounds: int) -> dict:
  """XLA:GPU's kernel autotuner at levels 0 and 4, where the default device is a GPU; elsewhere, why not."""
  platform = jax.default_backend()
  if platform != "gpu":
    return {
      "applicable": False,
      "platform": platform,
      "reason": f"not applicable on this device ({platform.upper()}): XLA:{platform.upper()} has no kernel "
      "autotuner (--xla_gpu_autotune_level times candidate GEMM/convolution kernels on a GPU); measured on GPU "
      "by the same command where one is present",
    }
  x = batch_of(card, size, seed=3)
  programs, compile_s = {}, {}
  for level in AUTOTUNE_LEVELS:
    start = time.perf_counter()
    programs[f"level {level}"] = compiled(model, x, {"xla_gpu_autotune_level": level})
    compile_s[f"level {level}"] = time.perf_counter() - start
  times = interleaved(programs, x, rounds=rounds, calls=calls_for(size, False))
  return {"applicable": True, "platform": platform, "batch_size": size, "seconds": times, "compile_s": compile_s}


def memory(models: dict, card: dict, sizes) -> dict:
  """{precision: {size: memory_analysis bytes and that batch size's first compile seconds}}: XLA sizes every buffer
  of a program for its shapes when it compiles, so the symbolic batch dimension of the artifact means one compile
  (and one static memory plan) per batch size, not memory that grows inside a program."""
  out = {}
  for p, m in models.items():
    out[p] = {}
    for size in sizes:
      x = batch_of(card, size, seed=4)
      program, seconds = compiled_timed(m, x)
      a = program.memory_analysis()
      fields = ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
      row = {f.replace("_size_in_bytes", ""): int(getattr(a, f, 0) or 0) for f in fields} if a else {}
      row["total"] = sum(row.values()) if row else None
      out[p][size] = {**row, "compile_s": seconds}
  return out


def summary(values: list[float]) -> dict:
  """Median and the 10th/90th percentiles of per-round values."""
  x = np.asarray(values, np.float64)
  return {"median": float(np.median(x)), "p10": float(np.percentile(x, 10)), "p90": float(np.percentile(x, 90))}
