"""`jaxflow profile compare A B`: two profile reports side by side (e.g. a CPU machine's and a GPU's).

Every device of both reports becomes a column (`A cpu:0`, `B gpu:0`, `B cpu:0` ...). Rows: the
devices' peaks; inference latency (AOT, median) and the fusion speedup per precision and batch size,
with each column's speed relative to the first; test metric per precision; training step time and
examples/s; the multi-stream gains. A row a report lacks shows `-`. The two reports' configs are
compared by hash: different configs are said to differ (with the fields that differ) before the tables.
"""

from __future__ import annotations

import json
import os

from jaxflow.config import ConfigError
from jaxflow.profiler.report_format import ms, table
from jaxflow.config import differences as config_differences

SCHEMA = "jaxflow.profile"
SUPPORTED_VERSIONS = (1,)


def load_report(workdir: str) -> dict:
  path = os.path.join(workdir, "report.json")
  if not os.path.isfile(path):
    raise ConfigError(
      f"{workdir} holds no profile report (no {path}); run `jaxflow profile --config=... --workdir={workdir}` first"
    )
  with open(path) as f:
    try:
      report = json.load(f)
    except json.JSONDecodeError as e:
      raise ConfigError(f"{path} is not valid JSON ({e.msg} at line {e.lineno})") from None
  if report.get("schema") != SCHEMA or report.get("schema_version") not in SUPPORTED_VERSIONS:
    raise ConfigError(
      f"{path} is not a jaxflow profile report of a known version (schema {report.get('schema')!r} version {report.get('schema_version')!r}; this jaxflow reads {SCHEMA!r} {SUPPORTED_VERSIONS})"
    )
  return report


def _columns(reports: dict[str, dict]) -> list[tuple[str, dict, dict]]:
  return [(f"{label} {d['name']}", report, d) for label, report in reports.items() for d in report["devices"]]


def _ratio(value, first) -> str:
  return f" ({first / value:.2f}x)" if value and first and value != first else ""


def _inference_rows(columns) -> list[list]:
  keys = sorted(
    {(r["precision"], r["batch_size"]) for _, _, d in columns for r in d["inference"]},
    key=lambda k: (k[0] != "f32", k[0], k[1]),
  )
  rows = []
  for precision, batch in keys:
    cells, first = [], None
    for _, _, d in columns:
      r = next((r for r in d["inference"] if r["precision"] == precision and r["batch_size"] == batch), None)
      if r is None:
        cells.append("-")
        continue
      t = r["timings"]["aot"]["median_s"]
      first = t if first is None else first
      cells.append(f"{ms(t)}{_ratio(t, first)}; fusion {r['fusion_speedup']['unfused_over_aot']:.0f}x")
    rows.append([precision, batch, *cells])
  return rows


def _precision_rows(columns) -> list[list]:
  names = sorted({n for _, _, d in columns for n in d["precision"]}, key=lambda n: (n != "f32", n))
  rows = []
  for name in names:
    cells = []
    for _, _, d in columns:
      p = d["precision"].get(name)
      cells.append(
        "-"
        if p is None
        else f"{p['value']:.4f} ({p['change_vs_f32'] * 100:+.1f} pt)"
        if p["metric"] == "accuracy"
        else f"{p['value']:.4g}"
      )
    rows.append([name, *cells])
  return rows


def compare_reports(a_dir: str, b_dir: str) -> str:
  """Markdown: the two reports in `a_dir` and `b_dir` side by side (module docstring)."""
  reports = {"A": load_report(a_dir), "B": load_report(b_dir)}
  a, b = reports["A"], reports["B"]
  columns = _columns(reports)
  headers = [label for label, _, _ in columns]
  lines = [f"# Profile comparison: A = {a_dir}, B = {b_dir}\n"]
  for label, r in reports.items():
    env = r["environment"]
    lines.append(
      f"- {label}: {r['model']['name']} ({r['model']['family']}, {r['model']['num_params']:,} parameters) on {', '.join(d['name'] for d in r['devices'])}; "
      f"jax {env['versions'].get('jax')}, jaxlib {env['versions'].get('jaxlib')}, CPU {env.get('cpu')} x{env.get('cpu_count')}, XLA_FLAGS={env.get('xla_flags') or '(none)'}, created {r['created']}"
    )
  if a["config_hash"] != b["config_hash"]:
    diffs = config_differences(a.get("config", {}), b.get("config", {}))
    shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
    lines.append(
      f"\n**The two reports profile different configs** ({shown or 'hashes differ'}): differences are not only the hardware's.\n"
    )
  else:
    lines.append(
      "\nSame config (hash " + a["config_hash"][:12] + "): differences are the hardware's and the software stack's.\n"
    )
  lines.append("## Peaks (measured)\n")
  peak_rows = []
  for dtype in ("f32", "bf16", "int8"):
    peak_rows.append(
      [
        f"matmul {dtype} G(FL)OP/s",
        *[_giga(d["peaks"]["matmul"].get(dtype, {}).get("flops_per_s")) for _, _, d in columns],
      ]
    )
  peak_rows.append(
    ["copy bandwidth GB/s (device memory)", *[_giga(d["peaks"]["copy"]["bytes_per_s"]) for _, _, d in columns]]
  )
  lines.append(table(["", *headers], peak_rows))
  lines.append("## Inference latency, AOT, ms (median; speed vs the first column); fusion = unfused / AOT\n")
  lines.append(table(["precision", "batch", *headers], _inference_rows(columns)))
  lines.append("## Test metric by precision (change vs that device's f32)\n")
  lines.append(table(["precision", *headers], _precision_rows(columns)))
  lines.append("## Training (jaxflow's programs)\n")
  train_rows = [
    ["batch size", *[str(d["training"]["batch_size"]) for _, _, d in columns]],
    ["step ms (synced)", *[ms(d["training"]["step"]["median_s"]) for _, _, d in columns]],
    ["examples/s", *[f"{d['training']['step']['examples_per_s']:.0f}" for _, _, d in columns]],
    ["host-fed input share", *[f"{d['training']['host_fed']['input_share_serial'] * 100:.0f}%" for _, _, d in columns]],
  ]
  lines.append(table(["", *headers], train_rows))
  lines.append("## Multi-stream (f32): async-dispatch gain; two models interleaved / threads vs sequential\n")
  batches = sorted({m["batch_size"] for _, _, d in columns for m in d["multistream"]})
  ms_rows = []
  for batch in batches:
    cells = []
    for _, _, d in columns:
      m = next((m for m in d["multistream"] if m["batch_size"] == batch), None)
      cells.append(
        "-"
        if m is None
        else f"{m['async_dispatch']['gain']:.2f}x; {m['two_models']['gain_interleaved']:.2f}x / {m['two_models']['gain_threads']:.2f}x"
      )
    ms_rows.append([batch, *cells])
  lines.append(table(["batch", *headers], ms_rows))
  lines.append("## Kernel auto-tuning\n")
  for label, _, d in columns:
    at = d["autotune"]
    if not at.get("applicable", True):
      lines.append(f"- {label}: not applicable ({at['reason'].split(';')[0]})")
    else:
      levels = ", ".join(
        f"level {k}: compile {v['compile_s']:.2f} s, run {ms(v['timing']['median_s'])} ms"
        if "timing" in v
        else f"level {k}: {v.get('error')}"
        for k, v in at["levels"].items()
      )
      lines.append(f"- {label}: {levels}")
  return "\n".join(lines) + "\n"


def _giga(value) -> str:
  return "-" if value is None else f"{value / 1e9:.3g}"
