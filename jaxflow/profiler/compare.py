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
from jaxflow.config import differences as config_differences
from jaxflow.profiler.report_format import ms, table

SCHEMA = "jaxflow.profile"
SUPPORTED_VERSIONS = (1,)


def load_report(workdir: str) -> dict:
  """The report.json in `workdir`, checked to be a profile report this jaxflow reads (else ConfigError)."""
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
      f"{path} is not a jaxflow profile report of a known version (schema {report.get('schema')!r} "
      f"version {report.get('schema_version')!r}; this jaxflow reads {SCHEMA!r} {SUPPORTED_VERSIONS})"
    )
  return report


def _columns(reports: dict[str, dict]) -> list[tuple[str, dict, dict]]:
  """One (label, report, device) column per device of each report, A's first."""
  return [(f"{label} {d['name']}", report, d) for label, report in reports.items() for d in report["devices"]]


def _ratio(value, first) -> str:
  """ " (N.NNx)": the first column's time over this one's, where they differ."""
  return f" ({first / value:.2f}x)" if value and first and value != first else ""


def _inference_rows(columns) -> list[list]:
  """AOT latency and fusion speedup per (precision, batch) that any column has, f32 first."""
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
  """The test metric per precision that any column has, f32 first."""
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
  columns = _columns(reports)
  headers = [label for label, _, _ in columns]
  lines = [f"# Profile comparison: A = {a_dir}, B = {b_dir}\n"]
  lines += [_describe(label, r) for label, r in reports.items()]
  lines.append(_same_config(reports["A"], reports["B"]))
  lines.append("## Peaks (measured)\n")
  lines.append(table(["", *headers], _peak_rows(columns)))
  lines.append("## Inference latency, AOT, ms (median; speed vs the first column); fusion = unfused / AOT\n")
  lines.append(table(["precision", "batch", *headers], _inference_rows(columns)))
  lines.append("## Test metric by precision (change vs that device's f32)\n")
  lines.append(table(["precision", *headers], _precision_rows(columns)))
  lines.append("## Training (jaxflow's programs)\n")
  lines.append(table(["", *headers], _training_rows(columns)))
  lines.append("## Multi-stream (f32): async-dispatch gain; two models interleaved / threads vs sequential\n")
  lines.append(table(["batch", *headers], _multistream_rows(columns)))
  lines.append("## Kernel auto-tuning\n")
  lines += _autotune_lines(columns)
  return "\n".join(lines) + "\n"


def _describe(label: str, r: dict) -> str:
  """One report in a line: model, devices, versions, CPU, XLA_FLAGS, when."""
  env = r["environment"]
  return (
    f"- {label}: {r['model']['name']} ({r['model']['family']}, {r['model']['num_params']:,} parameters) "
    f"on {', '.join(d['name'] for d in r['devices'])}; "
    f"jax {env['versions'].get('jax')}, jaxlib {env['versions'].get('jaxlib')}, "
    f"CPU {env.get('cpu')} x{env.get('cpu_count')}, XLA_FLAGS={env.get('xla_flags') or '(none)'}, "
    f"created {r['created']}"
  )


def _same_config(a: dict, b: dict) -> str:
  """Whether the reports profile one config (by hash, or field by field: a report an earlier jaxflow wrote hashed
  its config with fields that are resume-neutral now), and if not, the first fields that differ."""
  diffs = config_differences(a.get("config", {}), b.get("config", {}))
  if a["config_hash"] == b["config_hash"] or (not diffs and a.get("config") and b.get("config")):
    return (
      "\nSame config (hash " + a["config_hash"][:12] + "): differences are the hardware's and the software stack's.\n"
    )
  shown = "; ".join(diffs[:5]) + (f"; and {len(diffs) - 5} more" if len(diffs) > 5 else "")
  return (
    f"\n**The two reports profile different configs** ({shown or 'hashes differ'}): "
    "differences are not only the hardware's.\n"
  )


def _peak_rows(columns) -> list[list]:
  """The measured matmul peaks per dtype and the copy bandwidth, per column."""
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
  return peak_rows


def _training_rows(columns) -> list[list]:
  """Training batch size, synced step time, examples/s and the host-fed input share, per column."""
  return [
    ["batch size", *[str(d["training"]["batch_size"]) for _, _, d in columns]],
    ["step ms (synced)", *[ms(d["training"]["step"]["median_s"]) for _, _, d in columns]],
    ["examples/s", *[f"{d['training']['step']['examples_per_s']:.0f}" for _, _, d in columns]],
    ["host-fed input share", *[f"{d['training']['host_fed']['input_share_serial'] * 100:.0f}%" for _, _, d in columns]],
  ]


def _multistream_rows(columns) -> list[list]:
  """The async-dispatch and two-model gains per batch size that any column has."""
  batches = sorted({m["batch_size"] for _, _, d in columns for m in d["multistream"]})
  ms_rows = []
  for batch in batches:
    cells = []
    for _, _, d in columns:
      m = next((m for m in d["multistream"] if m["batch_size"] == batch), None)
      cells.append(
        "-"
        if m is None
        else f"{m['async_dispatch']['gain']:.2f}x; "
        f"{m['two_models']['gain_interleaved']:.2f}x / {m['two_models']['gain_threads']:.2f}x"
      )
    ms_rows.append([batch, *cells])
  return ms_rows


def _autotune_lines(columns) -> list[str]:
  """Per column, each autotune level's compile and run time, or why autotuning does not apply."""
  lines = []
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
  return lines


def _giga(value) -> str:
  """A count in units of 1e9; a missing one is "-" (as every absent cell of the comparison)."""
  return "-" if value is None else f"{value / 1e9:.3g}"
