"""The report's tables and results.json's findings: accuracy by precision (mean and 95% CI over seeds), speed by
batch size (medians over interleaved rounds, p10-p90), fusion, streams, autotuning and memory."""

from __future__ import annotations

from experiments.common import report, stats
from experiments.post_training import measure

PRECISIONS = ("f32", "bf16", "int8")
ROUNDS = "Timing rows pair interleaved rounds, not seeds: their 'seeds' column counts rounds; no resolution."


def accuracy_summary(accuracy: dict) -> dict:
  """{family: {precision: mean_ci of accuracy, and of the change vs f32 (paired)}}."""
  out = {}
  for family, by_p in accuracy.items():
    base = [r and r["accuracy"] for r in by_p["f32"]]
    out[family] = {}
    for p, rows in by_p.items():
      values = [r and r["accuracy"] for r in rows]
      seconds = [r and r["export_seconds"] for r in rows]
      out[family][p] = {
        "accuracy": stats.mean_ci(values),
        "change_vs_f32": stats.paired(values, base),
        "export_seconds": stats.mean_ci(seconds),
      }
  return out


def speedup(times: dict, p: str) -> dict:
  """f32 time / p time, round by round (paired by round): mean and 95% CI over rounds."""
  return stats.mean_ci([a / b for a, b in zip(times["f32"], times[p], strict=True)])


def _ms(values) -> str:
  s = measure.summary(values)
  return f"{1e3 * s['median']:.3f} [{1e3 * s['p10']:.3f}, {1e3 * s['p90']:.3f}]"


def _signed(d: dict) -> str:
  """'+0.001 [-0.002, +0.004]' of a paired difference (its verdict is in the differences table)."""
  if d["mean"] is None:
    return "-"
  ci = d["ci95"]
  return f"{d['mean']:+.3f}" + (f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "")


def findings(accuracy: dict, speed: dict) -> dict:
  """The study's own numbers for results.json: summaries of every measurement, per family."""
  acc = accuracy_summary(accuracy)
  out = {}
  for family, s in speed.items():
    lat = {
      size: {p: measure.summary(v) for p, v in t.items()} | {f"{p}_speedup": speedup(t, p) for p in PRECISIONS[1:]}
      for size, t in s["latency"].items()
    }
    fusion = {
      size: {k: measure.summary(v) for k, v in f["seconds"].items()} | {"fusions": f["fusions"]}
      for size, f in s["fusion"].items()
    }
    for size, f in s["fusion"].items():
      fusion[size]["max_abs_output_difference"] = f["max_abs_output_difference"]
    streams = {
      size: {k: measure.summary(v) for k, v in st["examples_per_second"].items()} for size, st in s["streams"].items()
    }
    out[family] = {
      "accuracy": acc[family],
      "latency": lat,
      "fusion": fusion,
      "streams": streams,
      "autotune": s["autotune"],
      "memory": s["memory"],
      "op_by_op": s["op_by_op"],
    }
  return out


def accuracy_table(accuracy: dict) -> report.Table:
  rows = []
  for family, by_p in accuracy_summary(accuracy).items():
    for p, s in by_p.items():
      change = "-" if p == "f32" else _signed(s["change_vs_f32"])
      rows.append([family, p, report.cell(s["accuracy"]), change, report.cell(s["export_seconds"], 1)])
  header = ["model", "precision", "test accuracy", "change vs f32 (paired)", "export seconds"]
  note = (
    "Mean [95% t-CI] over seeds: one trained model per seed, exported at each precision; each card's accuracy "
    "is the exported program's own, on the 360-image test split (resolution 1/360 = 0.0028). The change's "
    "verdict is in Paired differences."
  )
  return report.Table("Accuracy by precision (precision calibration)", header, rows, note)


def latency_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    for size, t in s["latency"].items():
      ups = [speedup(t, p) for p in PRECISIONS[1:]]
      f32 = measure.summary(t["f32"])["median"]
      rows.append(
        [family, str(size), *(_ms(t[p]) for p in PRECISIONS), *(report.cell(u, 2) for u in ups), f"{size / f32:,.0f}"]
      )
  header = [
    "model",
    "batch",
    "f32 ms/call",
    "bf16 ms/call",
    "int8 ms/call",
    "bf16 speed vs f32",
    "int8 speed vs f32",
    "f32 examples/s",
  ]
  note = (
    "Seed 0's loaded artifacts; ms per call: median [p10, p90] over interleaved rounds (each round's value a "
    "median of its calls); speed vs f32 = f32 time / that precision's time, mean [95% CI] over rounds "
    "(above 1: faster than f32)."
  )
  return report.Table("Latency and throughput by batch size and precision", header, rows, note)


def fusion_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    for size, f in s["fusion"].items():
      sec = f["seconds"]
      ratio = stats.mean_ci([b / a for a, b in zip(sec["fused"], sec["no fusion"], strict=True)])
      rows.append(
        [
          family,
          str(size),
          _ms(sec["fused"]),
          _ms(sec["no fusion"]),
          _ms(sec["disable_jit"]),
          report.cell(ratio, 2),
          f"{f['fusions']['fused']} / {f['fusions']['no fusion']}",
          f"{f['max_abs_output_difference']:.1e}",
        ]
      )
  header = [
    "model",
    "batch",
    "fused ms",
    "fusion off ms",
    "disable_jit ms",
    "fusion speedup",
    "fusions (on/off)",
    "max abs diff",
  ]
  note = (
    "The f32 artifact's program compiled as XLA does (fused), with XLA:CPU's fusion passes disabled "
    f"(`xla_disable_hlo_passes={measure.NO_FUSION}`), and called under `jax.disable_jit()` (the exported "
    "program stays one compiled call: what remains is the missing outer jit's dispatch). Speedup = fusion-off "
    "time / fused time per round, mean [95% CI]; max abs diff: largest output (probability) difference."
  )
  return report.Table("Layer and tensor fusion on the loaded model", header, rows, note)


def op_by_op_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    prof = s["op_by_op"]
    if prof is None:
      rows.append([family, "-", "not run (--quick) or failed", "-", "-", "-"])
      continue
    for size, b in prof["batches"].items():
      m = b["median_seconds"]
      opbyop = m.get("op_by_op")
      rows.append(
        [
          family,
          str(size),
          f"{1e3 * m['exported']:.3f}",
          f"{1e3 * m['training_jit']:.3f}",
          "-" if opbyop is None else f"{1e3 * opbyop:.3f}",
          "-" if opbyop is None else f"{opbyop / m['exported']:.1f}x",
        ]
      )
  header = ["model", "batch", "exported ms", "training jit ms", "op-by-op ms", "op-by-op / exported"]
  note = (
    "From `jaxflow profile --model=DIR` (its own protocol, medians): op by op = the training code's jaxpr run "
    "one primitive per dispatch (an exported program is one call and cannot be opened up)."
  )
  return report.Table("Fused program vs op by op (jaxflow profile --model)", header, rows, note)


def streams_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    for size, st in s["streams"].items():
      eps = st["examples_per_second"]
      two = stats.mean_ci([b / a for a, b in zip(eps["1 caller"], eps["2 callers (threads)"], strict=True)])
      names = ("1 caller", "2 callers (threads)", "dispatched back to back")
      rows.append(
        [family, str(size), *(f"{measure.summary(eps[n])['median']:,.0f}" for n in names), report.cell(two, 2)]
      )
  header = ["model", "batch", "1 caller ex/s", "2 callers ex/s", "dispatched ex/s", "2 callers / 1 caller"]
  note = (
    "The f32 artifact, k = max(8, 256 // batch) calls per measurement: one thread calling and syncing each, two "
    "pool threads (started beforehand) sharing the k calls, one thread dispatching all k before one sync. Medians "
    "over rounds; ratio mean [95% CI] over rounds."
  )
  return report.Table("Multi-stream execution: concurrent callers and asynchronous dispatch", header, rows, note)


def autotune_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    a = s["autotune"]
    if not a["applicable"]:
      rows.append([family, a["platform"], "no", a["reason"]])
    else:
      med = {k: 1e3 * measure.summary(v)["median"] for k, v in a["seconds"].items()}
      rows.append([family, a["platform"], "yes", ", ".join(f"{k}: {v:.3f} ms" for k, v in med.items())])
  return report.Table("Kernel auto-tuning", ["model", "backend", "measured", "result"], rows)


def memory_table(speed: dict) -> report.Table:
  rows = []
  for family, s in speed.items():
    for p, by_size in s["memory"].items():
      for size, m in by_size.items():
        cells = [f"{m.get(k, 0) / 1024:,.1f}" for k in ("argument", "output", "temp", "total")]
        rows.append([family, p, str(size), *cells, f"{m['compile_s']:.2f}"])
  header = ["model", "precision", "batch", "argument KiB", "output KiB", "temp KiB", "total KiB", "compile s"]
  note = (
    "`memory_analysis()` of the loaded program compiled for each batch size (the artifact's batch dimension "
    "is symbolic: each new size compiles once, with its own static buffer plan)."
  )
  return report.Table("Dynamic tensor memory: buffers by batch size", header, rows, note)


def result_tables(accuracy: dict, speed: dict) -> list[report.Table]:
  return [
    accuracy_table(accuracy),
    latency_table(speed),
    fusion_table(speed),
    op_by_op_table(speed),
    streams_table(speed),
    autotune_table(speed),
    memory_table(speed),
  ]


def difference_tables(rows: list[dict]) -> list[report.Table]:
  acc = [r for r in rows if "accuracy" in r["comparison"]]
  lat = [r for r in rows if "ms per call" in r["comparison"] and r["b"] == "f32"]
  fus = [r for r in rows if r["b"] == "no fusion"]
  st = [r for r in rows if "examples/s" in r["comparison"]]
  return [
    report.difference_table("Accuracy: each precision - f32, seed by seed", acc),
    report.difference_table("Latency (ms per call): each precision - f32, round by round", lat, note=ROUNDS),
    report.difference_table("Latency (ms per call): fused - fusion off, round by round", fus, note=ROUNDS),
    report.difference_table("Throughput (examples/s): 2 callers - 1 caller, round by round", st, 0, ROUNDS),
  ]
