"""The hardware study's numbers: per cell (model x device x thread setting x batch), the rounds' values, their
median and the 95% interval of their mean; paired ratios between cells measured in the same round.

Why ratios of the same round: on a shared machine an absolute time moves with the neighbours' load by tens of
percent, but two cells measured back to back in one round see about the same load, so their ratio is what the
rounds can resolve. A ratio is judged on the logarithms (a 2x speedup and a 2x slowdown are the same size):
stats.compare on log values, the tie rule's verdict (95% interval containing 0, i.e. the ratio's containing 1).
"""

from __future__ import annotations

import math

import numpy as np

from experiments.common import report, stats

PLATFORMS = ("cpu", "gpu", "tpu")
NOT_HERE = "not measured: no such device here"


def device_of(result: dict | None, platform: str) -> dict | None:
  """The summary of `platform`'s device in one worker's answer (None: the profile saw no such device)."""
  if result is None:
    return None
  return next((d for d in result["devices"] if d["platform"] == platform), None)


def inference_row(device: dict | None, batch: int) -> dict | None:
  if device is None:
    return None
  return next((r for r in device["inference"] if r["batch"] == batch), None)


def series(rounds: list[dict], threads: int, model: str, platform: str, get) -> list[float | None]:
  """One cell's value in every round: get(device summary) of `model` profiled by the `threads` worker."""
  out = []
  for one in rounds:
    device = device_of(one[threads].get(model), platform)
    value = None if device is None else get(device)
    out.append(None if value is None else float(value))
  return out


def inference_getter(batch: int, key: str):
  return lambda d: (inference_row(d, batch) or {}).get(key)


def summary(values: list[float | None]) -> dict:
  """stats.mean_ci plus the median over the rounds."""
  s = stats.mean_ci(values)
  return s | {"median": float(np.median(s["values"])) if s["values"] else None}


def ms_cell(values: list[float | None], scale: float = 1e3, digits: int = 3) -> str:
  """'median (mean [95% CI])' in milliseconds (scale 1e3) or another unit."""
  s = summary(values)
  if s["median"] is None:
    return NOT_HERE
  ci = s["ci95"]
  shown = f"{s['median'] * scale:.{digits}g}"
  if ci:
    shown += f" ({s['mean'] * scale:.{digits}g} [{ci[0] * scale:.{digits}g}, {ci[1] * scale:.{digits}g}])"
  return shown


def ratio(name: str, a_name: str, a: list, b_name: str, b: list) -> dict:
  """a / b round by round, judged on log(a) - log(b); mean ratio = exp(mean log ratio) with its interval."""

  def logs(v):
    return [None if x is None or x <= 0 else math.log(x) for x in v]

  row = stats.compare(name, a_name, logs(a), b_name, logs(b), resolution=None, higher_is_better=True)
  row["ratio"] = None if row["mean"] is None else math.exp(row["mean"])
  row["ratio_ci95"] = None if not row["ci95"] else [math.exp(row["ci95"][0]), math.exp(row["ci95"][1])]
  row["per_round"] = [None if x is None else math.exp(x) for x in row["diffs"]]
  row["verdict"] = "tie" if stats.is_tie(row, None) else ("a larger" if row["mean"] > 0 else "b larger")
  return row


def ratio_text(row: dict) -> str:
  """'3.2x [2.9, 3.5] (resolved)' or '... (tie)'."""
  if row["ratio"] is None:
    return "not measured"
  ci = row["ratio_ci95"]
  interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
  return f"{row['ratio']:.2f}x{interval} ({'tie' if row['verdict'] == 'tie' else 'resolved'})"


def ratio_table(title: str, rows: list[dict], note: str = "") -> report.Table:
  body = [
    [r["comparison"], f"{r['a']} / {r['b']}", str(r["n"]), ratio_text(r), r["verdict"]]
    for r in rows
    if r["ratio"] is not None
  ]
  rule = "Judged on log ratios: a tie when the 95% interval of the mean log ratio contains 0 (the ratio's contains 1)."
  return report.Table(
    title, ["comparison", "ratio", "rounds", "geometric mean [95% CI]", "verdict"], body, f"{note} {rule}"
  )


def speed_ratios(rounds: list[dict], models: list[str], batches: dict[str, list[int]], threads: list[int]) -> dict:
  """The study's paired ratios: op-by-op / fused per model and batch (CPU, each thread setting), 1-thread /
  2-thread times (inference fused, training step, peak matmul FLOP/s inverted so > 1 means 2 threads faster)."""
  fusion, scaling = [], []
  top = max(threads)
  for model in models:
    for batch in batches[model]:
      fused = series(rounds, top, model, "cpu", inference_getter(batch, "fused_s"))
      opbyop = series(rounds, top, model, "cpu", inference_getter(batch, "opbyop_s"))
      fusion.append(ratio(f"{model} batch {batch}", "op-by-op", opbyop, "fused", fused))
    if len(threads) < 2:
      continue
    for batch in batches[model]:
      one = series(rounds, 1, model, "cpu", inference_getter(batch, "fused_s"))
      two = series(rounds, 2, model, "cpu", inference_getter(batch, "fused_s"))
      scaling.append(ratio(f"{model} inference batch {batch}", "1 thread", one, "2 threads", two))
    one = series(rounds, 1, model, "cpu", lambda d: d["train"]["step_s"])
    two = series(rounds, 2, model, "cpu", lambda d: d["train"]["step_s"])
    scaling.append(ratio(f"{model} training step", "1 thread", one, "2 threads", two))
  if len(threads) >= 2:
    first = models[0]
    one = series(rounds, 1, first, "cpu", lambda d: 1.0 / d["peak_flops"])
    two = series(rounds, 2, first, "cpu", lambda d: 1.0 / d["peak_flops"])
    scaling.append(ratio("peak f32 matmul (256x256, time per FLOP)", "1 thread", one, "2 threads", two))
    one, two = ([1.0 / c["gflops"] if c else None for c in thread_checks(rounds, t, first)] for t in (1, 2))
    scaling.append(ratio("thread check: 512x512 matmul", "1 thread", one, "2 threads", two))
  return {"fusion": fusion, "threads": scaling}


def thread_checks(rounds: list[dict], threads: int, model: str) -> list[dict | None]:
  """The worker's matmul check of every round (made with the round's first model)."""
  return [(one[threads].get(model) or {}).get("thread_check") for one in rounds]


def round_cells(one: dict, model: str, threads: list[int]) -> dict:
  """One round of one model, flat (results.json's per_seed: here a round): fused inference and train step, ms."""
  cells = {}
  for t in threads:
    for platform in PLATFORMS:
      device = device_of(one[t].get(model), platform)
      if device is None:
        continue
      tag = f"{platform}_{t}t"
      cells |= {f"{tag}/fused_ms/b{r['batch']}": (r["fused_s"] or 0) * 1e3 for r in device["inference"]}
      cells |= {f"{tag}/opbyop_ms/b{r['batch']}": (r["opbyop_s"] or 0) * 1e3 for r in device["inference"]}
      cells[f"{tag}/train_step_ms"] = device["train"]["step_s"] * 1e3
  return cells


def inference_table(rounds, models, batches, threads) -> report.Table:
  """Fused (AOT-compiled) inference per call on every device column, CPU per thread setting."""
  header = ["model", "batch"] + [f"CPU {t} thread{'s' if t > 1 else ''}" for t in threads] + ["GPU", "TPU"]
  body = []
  for model in models:
    for batch in batches[model]:
      get = inference_getter(batch, "fused_s")
      row = [model, str(batch)] + [ms_cell(series(rounds, t, model, "cpu", get)) for t in threads]
      row += [ms_cell(series(rounds, max(threads), model, p, get)) for p in ("gpu", "tpu")]
      body.append(row)
  note = "ms per call (one batch): median over rounds (mean [95% CI of the mean]); fused = the AOT-compiled program."
  return report.Table("Inference, fused, ms per call", header, body, note)


def fusion_table(rounds, models, batches, threads) -> report.Table:
  """The CPU's execution styles side by side at the default thread setting, with the roofline place."""
  top = max(threads)
  header = ["model", "batch", "fused (AOT)", "op by op", "fusion off", "eager", "roofline: bound, efficiency"]
  body = []
  for model in models:
    for batch in batches[model]:
      cells = [ms_cell(series(rounds, top, model, "cpu", inference_getter(batch, k))) for k in KEYS]
      eff = summary(series(rounds, top, model, "cpu", inference_getter(batch, "efficiency")))
      bound = next(
        (r["bound"] for one in rounds if (r := inference_row(device_of(one[top].get(model), "cpu"), batch))), "-"
      )
      shown = f"{bound}, {eff['median']:.1%}" if eff["median"] is not None else "-"
      body.append([model, str(batch), *cells, shown])
  note = (
    f"CPU, {top} thread(s), ms per call, median (mean [95% CI]). Op by op: the jaxpr one primitive per dispatch; "
    "fusion off: one program compiled with XLA's fusion passes off; eager: the model's code without jit. "
    "Efficiency: achieved FLOP/s over the roof (matmul peak or measured bandwidth) at the model's intensity."
  )
  return report.Table("Fused vs op by op (CPU)", header, body, note)


KEYS = ("fused_s", "opbyop_s", "nofusion_s", "eager_s")


def training_table(rounds, models, threads) -> report.Table:
  header = ["model", "batch"] + [f"CPU {t} thread{'s' if t > 1 else ''}" for t in threads] + ["GPU", "TPU"]
  body = []
  for model in models:
    batch = next((d["train"]["batch"] for one in rounds if (d := device_of(one[max(threads)].get(model), "cpu"))), "-")
    row = [model, str(batch)] + [
      ms_cell(series(rounds, t, model, "cpu", lambda d: d["train"]["step_s"])) for t in threads
    ]
    row += [ms_cell(series(rounds, max(threads), model, p, lambda d: d["train"]["step_s"])) for p in ("gpu", "tpu")]
    body.append(row)
  note = "jaxflow's own train step (one step per dispatch, synchronized), ms: median over rounds (mean [95% CI])."
  return report.Table("Training step, ms", header, body, note)


def machine_table(rounds, models, threads) -> report.Table:
  """What each thread setting really got: peaks, the process's threads and its CPU seconds per wall second."""
  header = ["setting", "XLA_FLAGS", "CPUs", "threads", "matmul: CPU s per wall s", "512² matmul GFLOP/s", "copy GB/s"]
  body = []
  for t in threads:
    answers = [one[t][m] for one in rounds for m in models if one[t].get(m)]
    if not answers:
      continue
    checks = [a["thread_check"] for a in answers if a.get("thread_check")]
    busy = summary([c["cpu_per_wall"] for c in checks])
    flops = [c["gflops"] * 1e9 for c in checks]
    copy = series(rounds, t, models[0], "cpu", lambda d: d["peak_bytes_per_s"])
    body.append(
      [
        f"{t} thread{'s' if t > 1 else ''}",
        f"`{answers[0]['xla_flags'] or '(none)'}`",
        ",".join(map(str, answers[0]["cpus"])),
        str(max(a["process_threads"] for a in answers)),
        f"{busy['median']:.2f} [{busy['ci95'][0]:.2f}, {busy['ci95'][1]:.2f}]"
        if busy["ci95"]
        else f"{busy['median']:.2f}",
        ms_cell(flops, 1e-9),
        ms_cell(copy, 1e-9),
      ]
    )
  note = (
    "Threads: the most threads the worker process held. Matmul columns: a jitted 512x512 f32 matmul called 30 times "
    "back to back once per round and setting, after its first profile: CPU seconds the process burnt per wall second "
    "(1.0 = one core busy; 2.0 = both) and its GFLOP/s, median (mean [95% CI]) over rounds."
  )
  return report.Table("The thread settings as measured", header, body, note)
