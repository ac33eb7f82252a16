"""The study's words: the one-line answer, the setup, what it means and the caveats, all from the measured numbers
(nothing here is written before the run: a sentence that names a direction reads it from the data)."""

from __future__ import annotations

import os

from experiments.common import stats
from experiments.post_training import measure, tables

PRECISIONS = ("f32", "bf16", "int8")


def _row(rows: list[dict], comparison: str, a: str, b: str) -> dict | None:
  return next((r for r in rows if r["comparison"] == comparison and r["a"] == a and r["b"] == b), None)


def _change(rows: list[dict], family: str, p: str) -> str:
  r = _row(rows, f"{family}: test accuracy", p, "f32")
  if r is None or r["mean"] is None:
    return f"{p} not measured"
  return f"{p} {r['mean']:+.4f} ({r['verdict']})"


def _speed(speed: dict, family: str, p: str, size=None) -> tuple[int, float]:
  """(batch, f32 time / p time median over rounds) at `size` (default: the largest timed batch)."""
  lat = speed[family]["latency"]
  size = max(lat) if size is None else size
  ratio = tables.speedup(lat[size], p)["mean"]
  return size, ratio


def _ratio(speed: dict, family: str, p: str) -> str:
  """'1.68x (faster)' at the largest timed batch: the rounds' mean ratio and what its 95% CI resolves."""
  lat = speed[family]["latency"]
  s = tables.speedup(lat[max(lat)], p)
  ci = s["ci95"]
  word = "tie" if ci is None or ci[0] <= 1 <= ci[1] else ("faster" if ci[0] > 1 else "slower")
  return f"{s['mean']:.2f}x ({word})"


def _fusion_ratio(speed: dict, family: str) -> tuple[int, float]:
  f = speed[family]["fusion"]
  size = max(f)
  sec = f[size]["seconds"]
  return size, stats.mean_ci([b / a for a, b in zip(sec["fused"], sec["no fusion"], strict=True)])["mean"]


def _streams_ratio(speed: dict, family: str) -> tuple[int, float, float]:
  st = speed[family]["streams"]
  size = max(st)
  eps = st[size]["examples_per_second"]
  one = measure.summary(eps["1 caller"])["median"]
  return (
    size,
    measure.summary(eps["2 callers (threads)"])["median"] / one,
    (measure.summary(eps["dispatched back to back"])["median"] / one),
  )


def _memory_span(speed: dict, family: str) -> tuple[int, float, int, float]:
  mem = speed[family]["memory"]["f32"]
  lo, hi = min(mem), max(mem)
  return lo, mem[lo]["total"] / 1024, hi, mem[hi]["total"] / 1024


def answer(accuracy: dict, speed: dict, rows: list[dict]) -> str:
  parts = []
  for family in accuracy:
    b, bf = _speed(speed, family, "bf16")
    _, i8 = _speed(speed, family, "int8")
    fb, fr = _fusion_ratio(speed, family)
    sb, two, disp = _streams_ratio(speed, family)
    lo, lo_kib, hi, hi_kib = _memory_span(speed, family)
    parts.append(
      f"{family}: accuracy vs f32 {_change(rows, family, 'bf16')}, {_change(rows, family, 'int8')}; speed vs f32 at "
      f"batch {b}: bf16 {_ratio(speed, family, 'bf16')}, int8 {_ratio(speed, family, 'int8')}; fusion off takes "
      f"{fr:.2f}x the fused time at batch {fb}; "
      f"2 concurrent callers give {two:.2f}x one caller's throughput at batch {sb} (async dispatch "
      f"{disp:.2f}x); f32 buffers {lo_kib:,.0f} KiB at batch {lo} to {hi_kib:,.0f} KiB at {hi} (one compile per "
      f"batch size; {_memory_precision(speed, family)})"
    )
  platform = next(iter(speed.values()))["autotune"]["platform"].upper()
  tune = (
    "kernel auto-tuning not applicable on this device"
    if not next(iter(speed.values()))["autotune"]["applicable"]
    else "kernel auto-tuning measured"
  )
  return f"On XLA:{platform} ({tune} ({platform})): " + "; ".join(parts) + "."


def setup(families: dict, plan: dict, args) -> list[str]:
  lines = [
    f"Models: {', '.join(families)} on the 8x8 digits (configs/digits_mlp.py: 64-256-256-10, 30 epochs; "
    "configs/digits_cnn.py: conv 32-64 + dense 128, 20 epochs), trained through `jaxflow.seeds(..., "
    f"seeds={args.seeds}, vary='all', mode='sequential')` (Session.run)"
    + (f"; quick overrides {' '.join(next(iter(families.values())))}" if args.quick else ""),
    "Export: every seed's run through `jaxflow.export(run, out, precision=p, max_accuracy_drop=1.0)` for p in f32, "
    "bf16, int8 (int8: per-channel int8 weights, activation scales calibrated on the first 512 training examples; "
    "bf16: weights and compute in bfloat16). Accuracy is the card's: the exported program's own on the test split.",
    "Speed: seed 0's three artifacts loaded with `jaxflow.load_model(dir)`; `jax.jit(model.exported.call)` "
    f"compiled per batch size {list(plan['latency'])}; {plan['rounds']} interleaved rounds, each a median of its "
    "synchronized calls after a warm-up call (experiments/post_training/measure.py).",
    f"Fusion at batches {list(plan['fusion'])}: fused vs `xla_disable_hlo_passes={measure.NO_FUSION}` vs "
    "`jax.disable_jit()`; "
    + (
      "plus `jaxflow profile --model=DIR --precisions=f32` for the op-by-op baseline."
      if not args.quick
      else "`jaxflow profile --model` is not run in --quick."
    ),
    f"Streams at batches {list(plan['streams'])}: k = max(8, 256 // batch) calls by 1 thread, by 2 pool threads, "
    "and dispatched back to back.",
    f"Memory: `memory_analysis()` of the program compiled at batches {list(plan['memory'])} per precision.",
    "Kernel auto-tuning: `xla_gpu_autotune_level` 0 vs 4 where the default backend is a GPU; else marked "
    "not applicable.",
  ]
  return lines


def speed_word(speed: dict, family: str, p: str) -> str:
  """'faster' / 'slower' than f32 where the rounds' 95% CI of the speed ratio excludes 1, else 'tie'."""
  lat = speed[family]["latency"]
  words = []
  for size in sorted(lat):
    ci = tables.speedup(lat[size], p)["ci95"]
    words.append("tie" if ci is None or ci[0] <= 1 <= ci[1] else ("faster" if ci[0] > 1 else "slower"))
  faster = [str(b) for b, w in zip(sorted(lat), words, strict=True) if w == "faster"]
  slower = [str(b) for b, w in zip(sorted(lat), words, strict=True) if w == "slower"]
  return (
    f"{p} resolved faster at batch {', '.join(faster) or 'none'}, slower at {', '.join(slower) or 'none'}, "
    f"a tie at the other {words.count('tie')} of {len(words)} sizes"
  )


def _memory_precision(speed: dict, family: str) -> str:
  """Each precision's buffers at the largest compiled batch against f32's."""
  mem = speed[family]["memory"]
  size = max(mem["f32"])
  base = mem["f32"][size]["total"]
  return ", ".join(f"{p} {mem[p][size]['total'] / base:.1f}x" for p in PRECISIONS[1:]) + f" f32's at batch {size}"


def _all_ties(accuracy: dict, speed: dict) -> bool:
  """Every precision's accuracy change against f32 is a tie (the rows are rebuilt from the seeds' values)."""
  del speed
  rows = tables.accuracy_summary(accuracy)
  resolution = stats.accuracy_resolution(next(r["examples"] for r in accuracy[next(iter(accuracy))]["f32"] if r))
  return all(stats.is_tie(rows[f][p]["change_vs_f32"], resolution) for f in rows for p in PRECISIONS[1:])


def _against_the_workflow(accuracy: dict, speed: dict) -> str:
  """Where the measurements disagree with the workflow's premise that these steps make inference faster."""
  faster = [
    f"{f} {p} at batch {b}"
    for f in accuracy
    for p in PRECISIONS[1:]
    for b, t in sorted(speed[f]["latency"].items())
    if (tables.speedup(t, p)["ci95"] or [0, 0])[0] > 1
  ]
  fused = [f"{f} ({_fusion_ratio(speed, f)[1]:.2f}x)" for f in accuracy]
  return (
    "**Against the workflow's list.** The list names TensorRT's post-training steps, which are there to make "
    "inference faster. On this CPU: reduced precision "
    + ("kept the accuracy (every change a tie)" if _all_ties(accuracy, speed) else "changed the accuracy somewhere")
    + " but was resolved faster than f32 "
    + (f"only for {', '.join(faster)}" if faster else "at no batch size and model")
    + f"; fusion is what XLA does anyway (fusion off at the largest batch: {', '.join(fused)} the fused time); "
    "auto-tuning does not exist on XLA:CPU; and memory is planned per batch size at compile time, not managed "
    "dynamically while running."
  )


def _fusion_paragraph(accuracy: dict, speed: dict) -> str:
  """Fusion on vs off and disable_jit, per family, with the largest output difference and the op-by-op ratio."""
  parts = []
  for family in accuracy:
    fb, fr = _fusion_ratio(speed, family)
    f = speed[family]["fusion"][fb]
    eager = measure.summary(f["seconds"]["disable_jit"])["median"] / measure.summary(f["seconds"]["fused"])["median"]
    prof = speed[family]["op_by_op"]
    opbyop = ""
    timed = [b for b, v in (prof or {"batches": {}})["batches"].items() if v["median_seconds"].get("op_by_op")]
    if timed:  # the profiler runs op by op at small batches only
      m = prof["batches"][max(timed)]["median_seconds"]
      opbyop = f", op by op (jaxflow profile --model, batch {max(timed)}) {m['op_by_op'] / m['exported']:.1f}x"
    parts.append(
      f"{family} at batch {fb}: fusion off {fr:.2f}x the fused time, disable_jit {eager:.2f}x{opbyop}; largest "
      f"output difference fused vs unfused {f['max_abs_output_difference']:.1e}"
    )
  return (
    "**Fusion.** The same loaded program with XLA's fusion passes disabled, and called without an outer jit "
    "(above 1: slower than fused): " + "; ".join(parts) + ". An exported program is already one compiled call: "
    "`jax.disable_jit()` cannot open it up, so the fusion an export gives is XLA's, done when the program is "
    "compiled for a batch size; the op-by-op figure is the training code's jaxpr run one primitive per dispatch."
  )


def paragraphs(accuracy: dict, speed: dict, rows: list[dict]) -> list[str]:
  out = []
  for family in accuracy:
    changes = ", ".join(_change(rows, family, p) for p in PRECISIONS[1:])
    small = _speed(speed, family, "bf16", min(speed[family]["latency"]))
    big_bf, big_i8 = _speed(speed, family, "bf16"), _speed(speed, family, "int8")
    out.append(
      f"**Precision ({family}).** Accuracy against f32, seed by seed: {changes} (a tie is a change inside one test "
      f"image or the seeds' CI). Speed is the other half: at batch {big_bf[0]} bf16 runs at {big_bf[1]:.2f}x and "
      f"int8 at {big_i8[1]:.2f}x f32's speed (below 1: slower); at batch {small[0]} bf16 is at {small[1]:.2f}x. "
      f"Round by round (95% CI of the ratio): {speed_word(speed, family, 'bf16')}; {speed_word(speed, family, 'int8')}"
      ". Calibrated int8 and bf16 keep the accuracy here; the speed they buy depends on the model and the batch "
      "size, and is measured on this CPU only."
    )
  out.append(_fusion_paragraph(accuracy, speed))
  streams = "; ".join(
    f"{f} at batch {r[0]}: 2 callers {r[1]:.2f}x, dispatched {r[2]:.2f}x"
    for f, r in ((f, _streams_ratio(speed, f)) for f in accuracy)
  )
  out.append(
    "**Multi-stream and auto-tuning.** XLA:CPU has one stream per device; the CPU equivalent is concurrent callers. "
    f"Throughput against one caller that syncs each call: {streams}. What a second caller can add is the idle time "
    f"between one caller's calls (Python, dispatch, the sync): both share the same {os.cpu_count()} cores. "
    "Kernel auto-tuning is an XLA:GPU feature (timing candidate GEMM/convolution kernels): "
    "not applicable on this device (CPU); the same command measures it where a GPU is present."
  )
  spans = "; ".join(
    f"{f} f32 {r[1]:,.1f} KiB at batch {r[0]} to {r[3]:,.0f} KiB at batch {r[2]}"
    for f, r in ((f, _memory_span(speed, f)) for f in accuracy)
  )
  out.append(
    "**Dynamic tensor memory.** The artifact has a symbolic batch dimension, but each batch size compiles once "
    f"with a static buffer plan (arguments, outputs, temporaries; the weights are constants inside the program): "
    f"{spans}. By precision: "
    + "; ".join(f"{f} {_memory_precision(speed, f)}" for f in accuracy)
    + " (int8's extra is in the temporaries, XLA's buffers for intermediates, and grows with the batch). "
    "Memory is planned per shape at compile time, not grown while running; serving pads requests to a "
    "few batch sizes for that reason (one compile and one plan each)."
  )
  out.append(_against_the_workflow(accuracy, speed))
  return out


def caveats(args, speed: dict) -> list[str]:
  out = [
    "Timings come from one shared 2-core machine under other engineers' load; interleaved rounds share that load "
    "between the variants, but absolute figures move by tens of percent (see Provenance's load average).",
    "Speed is measured on seed 0's artifacts only (the seeds change weights, not the program's shapes); its "
    "intervals are over timing rounds, not over trained models.",
    "Fusion 'off' disables XLA:CPU's fusion and library-dot passes: it also removes the library dot path, so the "
    "ratio includes that path's advantage, not only fusion's.",
    "The workflow's list reads as TensorRT's (GPU) optimizations; on XLA:CPU, auto-tuning does not exist and "
    "streams mean threads.",
  ]
  if not next(iter(speed.values()))["autotune"]["applicable"]:
    out.append("No GPU was present for this run: GPU figures (autotuning, CUDA streams) are not measured or estimated.")
  if args.quick:
    out.insert(0, "A --quick run: a 16-unit MLP trained 3 steps, 2 seeds, 2 rounds; numbers show structure only.")
  return out
