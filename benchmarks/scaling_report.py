"""benchmarks/scaling.py's report: each configuration's runs summarized (medians, ranges, timeouts) and the
scaling and max_in_flight tables benchmarks/README.md shows; `render` rebuilds them from a results JSON."""

from __future__ import annotations

import statistics

MODES = ("sharded", "pmap")  # the order the tables list them in


def stats(values: list[float]) -> dict | None:
  if not values:
    return None
  return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def summarize(entry: dict) -> dict:
  ok = [r for r in entry["runs"] if r["status"] == "ok"]
  s = {
    "ok": len(ok),
    "timeouts": sum(r["status"] == "timeout" for r in entry["runs"]),
    "failed": sum(r["status"] == "failed" for r in entry["runs"]),
  }
  for field in ("examples_per_second", "compile_seconds", "wall_seconds", "process_seconds", "final_test_accuracy"):
    s[field] = stats([r[field] for r in ok])
  s["loadavg_1min"] = stats(
    [r["loadavg_before"][0] for r in entry["runs"]] + [r["loadavg_after"][0] for r in entry["runs"]]
  )
  return s


def _fmt_range(st: dict | None, fmt: str) -> tuple[str, str]:
  if st is None:
    return "-", "-"
  return format(st["median"], fmt), f"{format(st['min'], fmt)}-{format(st['max'], fmt)}"


def _status(s: dict) -> str:
  parts = (
    [f"{s['ok']} ok"]
    + ([f"**{s['timeouts']} timeout**"] if s["timeouts"] else [])
    + ([f"**{s['failed']} failed**"] if s["failed"] else [])
  )
  return ", ".join(parts)


def scaling_table(results: dict, model: str) -> str:
  entries = [
    e
    for e in results.values()
    if e["spec"]["model"] == model and (e["spec"]["max_in_flight"] == 2 or e["spec"]["devices"] == 1)
  ]
  if not entries:
    return ""
  spec0 = entries[0]["spec"]
  base = next(
    (
      e["summary"]["examples_per_second"]
      for e in entries
      if e["spec"]["devices"] == 1 and e["summary"]["examples_per_second"]
    ),
    None,
  )
  ok_runs = [r for e in entries for r in e["runs"] if r["status"] == "ok"]
  batch = ok_runs[0]["batch_size"] if ok_runs else (spec0["batch_size"] or "(config default)")
  dispatch = ok_runs[0]["steps_per_dispatch"] if ok_runs else "?"
  steps = ok_runs[0]["steps"] if ok_runs else "?"
  lines = [
    f"### {model.upper()} ({spec0['config']}): {spec0['epochs']} epochs, {steps} steps, global batch {batch}, "
    f"{dispatch} step(s) per dispatch",
    "",
    "| mode | devices | batch/device | ex/s, median | min-max | vs 1 device | ms/step | compile s | wall s | process s "
    "| test acc | load avg (1 min) | runs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
  ]
  entries.sort(
    key=lambda e: (e["spec"]["devices"], MODES.index(e["spec"]["mode"]) if e["spec"]["mode"] in MODES else -1)
  )
  for e in entries:
    s, spec = e["summary"], e["spec"]
    eps = s["examples_per_second"]
    med, rng_ = _fmt_range(eps, ",.0f")
    rel = f"{eps['median'] / base['median']:.2f}x" if eps and base else "-"
    ms = f"{1000 * batch / eps['median']:.2f}" if eps else "-"
    load = s["loadavg_1min"]
    per_device = batch // spec["devices"] if isinstance(batch, int) else "?"
    lines.append(
      f"| {spec['mode']} | {spec['devices']} | {per_device} | {med} | {rng_} | {rel} | {ms} | "
      f"{_fmt_range(s['compile_seconds'], '.2f')[0]} | {_fmt_range(s['wall_seconds'], '.2f')[0]} | "
      f"{_fmt_range(s['process_seconds'], '.1f')[0]} | {_fmt_range(s['final_test_accuracy'], '.4f')[0]} | "
      f"{load['min']:.1f}-{load['max']:.1f} | {_status(s)} |"
    )
  return "\n".join(lines)


def in_flight_table(results: dict, devices: int, limits, modes) -> str:
  entries = [
    e
    for e in results.values()
    if e["spec"]["model"] == "cnn"
    and e["spec"]["devices"] == devices
    and e["spec"]["mode"] in modes
    and e["spec"]["max_in_flight"] in limits
  ]
  if len({e["spec"]["max_in_flight"] for e in entries}) < 2:
    return ""
  if not entries:
    return ""
  spec0 = entries[0]["spec"]
  lines = [
    f"### CNN on {spec0['devices']} devices: parallel.max_in_flight ({spec0['epochs']} epochs, one step per dispatch)",
    "",
    "| mode | max_in_flight | ex/s, median | min-max | vs max_in_flight=1 | compile s | wall s "
    "| load avg (1 min) | runs |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ]
  for mode in modes:
    rows = sorted((e for e in entries if e["spec"]["mode"] == mode), key=lambda e: e["spec"]["max_in_flight"])
    base = next((e["summary"]["examples_per_second"] for e in rows if e["spec"]["max_in_flight"] == 1), None)
    for e in rows:
      s = e["summary"]
      eps = s["examples_per_second"]
      med, rng_ = _fmt_range(eps, ",.0f")
      rel = f"{eps['median'] / base['median']:.2f}x" if eps and base else "-"
      load = s["loadavg_1min"]
      lines.append(
        f"| {mode} | {e['spec']['max_in_flight']} | {med} | {rng_} | {rel} | "
        f"{_fmt_range(s['compile_seconds'], '.2f')[0]} | "
        f"{_fmt_range(s['wall_seconds'], '.2f')[0]} | {load['min']:.1f}-{load['max']:.1f} | {_status(s)} |"
      )
  return "\n".join(lines)


def render(results: dict, models, flight_devices: int, limits, modes) -> str:
  tables = [scaling_table(results, m) for m in models] + [in_flight_table(results, flight_devices, limits, modes)]
  return "\n\n".join(t for t in tables if t)
