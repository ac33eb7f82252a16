"""The profile report: report.json (everything, versioned schema), report.md (tables), plots/*.png.

report.json's top level: `schema` ("jaxflow.profile") and `schema_version`, `created`, `config` and
`config_hash`, `model`, `problem`, `weights` (where the parameters came from), `request` (batch sizes,
precisions, trace), `protocol` (the timing protocol), `environment` (versions, CPU, XLA_FLAGS, load
averages), `devices` (one entry per profiled device: `name`, `peaks`, `precision`, `calibration`,
`inference` rows, `training`, `multistream`, `autotune`, `memory_stats`, `notes`), `not_applicable`,
`trace`. Times are seconds; report.md shows milliseconds.
"""

from __future__ import annotations

import os

from jaxflow.profiler import plots
from jaxflow.profiler.report_device import device_section
from jaxflow.profiler.report_format import ms
from jaxflow.workdir import write_report


def write(result: dict, workdir: str, *, draw: bool = True) -> dict:
  """Writes report.json, plots/*.png (unless `draw` is False) and report.md into `workdir`; returns their paths."""
  figures = plots.write_plots(result, os.path.join(workdir, "plots")) if draw else {}
  result["plots"] = {k: os.path.relpath(v, workdir) for k, v in figures.items()}
  return write_report(workdir, result, markdown(result, drew=draw)) | figures


def findings(result: dict) -> list[str]:
  """Key figures in words, per device (also what `profiling/README.md` summarises)."""
  out = []
  for d in result["devices"]:
    rows = [r for r in d["inference"] if r["precision"] == "f32"]
    if rows:
      out += _inference_findings(d, rows)
      out += _precision_findings(d, rows)
    t = d.get("training", {})
    if "step" in t:
      share = t.get("host_fed", {}).get("input_share_serial")
      out.append(
        f"{d['name']}: training step {ms(t['step']['median_s'])} ms at batch {t['batch_size']} "
        f"({t['step']['examples_per_s']:.0f} examples/s)"
        + (f"; fed from the host, input takes {share * 100:.0f}% of a serial step" if share is not None else "")
      )
    for m in d.get("multistream", []):
      out.append(
        f"{d['name']}: async dispatch of {m['k']} batches of {m['batch_size']}: "
        f"{m['async_dispatch']['gain']:.2f}x vs syncing each; "
        f"two models interleaved {m['two_models']['gain_interleaved']:.2f}x, "
        f"two threads {m['two_models']['gain_threads']:.2f}x vs sequential"
      )
  return out


def _inference_findings(d: dict, rows: list[dict]) -> list[str]:
  """What fusion, jit and the roofline say about the f32 rows of device `d`."""
  out = []
  speedups = ", ".join(f"{r['fusion_speedup']['unfused_over_aot']:.1f}x at {r['batch_size']}" for r in rows)
  out.append(f"{d['name']}: f32 op by op / fused AOT program: {speedups} (what jit buys: per-op dispatch and fusion).")
  eager = ", ".join(f"{r['fusion_speedup']['eager_over_aot']:.0f}x at {r['batch_size']}" for r in rows)
  out.append(f"{d['name']}: vs the model's own code run eagerly (no jit, framework Python included): {eager}.")
  if all(r["fusion_speedup"].get("nofusion_over_aot") for r in rows):
    kernel = ", ".join(f"{r['fusion_speedup']['nofusion_over_aot']:.2f}x at {r['batch_size']}" for r in rows)
    out.append(
      f"{d['name']}: one compiled program without / with XLA's fusion passes: {kernel} (fusion inside one dispatch)."
    )
  roof = ", ".join(
    f"{r['roofline']['efficiency']:.2f} at {r['batch_size']} ({r['roofline']['limited_by']})"
    for r in rows
    if r["roofline"]["efficiency"] is not None
  )
  if roof:
    out.append(f"{d['name']}: f32 AOT achieved FLOP/s as a share of its roofline's attainable: {roof}.")
  return out


def _precision_findings(d: dict, rows: list[dict]) -> list[str]:
  """Each other precision's speed against f32 at the largest batch, with its accuracy change."""
  out = []
  largest = max(r["batch_size"] for r in rows)
  at = {r["precision"]: r for r in d["inference"] if r["batch_size"] == largest}
  base = at["f32"]["timings"]["aot"]["median_s"]
  for name, r in at.items():
    if name == "f32":
      continue
    acc = d["precision"].get(name, {})
    change = acc.get("change_vs_f32")
    out.append(
      f"{d['name']}: {name} at batch {largest} runs {base / r['timings']['aot']['median_s']:.2f}x f32's speed"
      + (
        f", {acc.get('metric')} change {change * 100:+.1f} points"
        if change is not None and acc.get("metric") == "accuracy"
        else ""
      )
    )
  return out


def markdown(result: dict, *, drew: bool = True) -> str:
  """report.md: the headline, findings, plots, one section per device, what did not apply, trace, protocol.
  Each note once: a line repeated by two sections (e.g. a device note and "Not applicable here") is dropped.
  `drew`: whether plots were asked for (no plots then means no results to draw, not plots=False)."""
  parts = _headline(result)
  parts += [f"- {line}\n" for line in findings(result)]
  drawn = result.get("plots") or {}
  links = ", ".join(f"[{k}]({v})" for k, v in drawn.items())
  parts.append(f"\nPlots: {links or ('none (nothing to draw)' if drew else 'none (plots=False)')}\n")
  for d in result["devices"]:
    parts += device_section(d, result)
  parts.append("## Not applicable here\n")
  parts += [f"- {note}\n" for note in result["not_applicable"]] or ["- (nothing)\n"]
  if result.get("trace"):
    tr = result["trace"]
    parts.append(
      f"\n## Trace\n\n{len(tr['files'])} files in `{tr['logdir']}` ({tr['events']} events in the JSON trace); "
      f"steps: {', '.join(tr['steps'])}.\nOpen: {tr['open']}\n"
    )
  parts.append(_protocol(result["protocol"]))
  return "\n".join(once(parts))


def once(parts: list[str]) -> list[str]:
  """`parts` without a bullet ("- ...") that an earlier part already said: a note read twice reads as two."""
  seen, out = set(), []
  for part in parts:
    if part.startswith("- ") and part.strip() in seen:
      continue
    seen.add(part.strip())
    out.append(part)
  return out


def _headline(result: dict) -> list[str]:
  """The title (model, devices), the setting (data, weights, versions, CPU, load) and the findings heading."""
  m = result["model"]
  env = result["environment"]
  devices = ", ".join(d["name"] for d in result["devices"])
  return [
    f"# Profile: {m['name']} ({m['family']}, {m['num_params']:,} parameters) on {devices}\n",
    f"Dataset `{result['problem']['dataset']}`, weights {result['weights']['source']} "
    f"({result['weights'].get('workdir')}). "
    f"jax {env['versions'].get('jax')}, jaxlib {env['versions'].get('jaxlib')}; "
    f"XLA_FLAGS={env['xla_flags'] or '(none)'}; CPU {env['cpu']} x{env['cpu_count']}; "
    f"load average {env['load_average_start']} -> {env['load_average_end']}. Created {result['created']}, "
    f"{result['seconds']:.0f} s.\n",
    "## Findings\n",
  ]


def _protocol(p: dict) -> str:
  """How every time in the report was taken, in words."""
  return (
    f"\n## Protocol\n\nWarm-up {p['warmup']} calls, then up to {p['repeats']} timed calls "
    f"(at least {p['min_repeats']}, stopping after {p['max_seconds']} s of timed work), "
    f"variants interleaved in {p['rounds']} rounds; "
    "each call synchronized with block_until_ready on its outputs inside the timed interval; "
    f"input batches rotated (up to {p['max_rotations']} distinct, {p['rotate_bytes'] / 2**20:.0f} MiB); "
    "median with p10/p90 (ms). "
    "Inference times are per call: one call runs one batch of `batch` examples (not per example). "
    "Eager = the model's own Python under jax.disable_jit() (framework overhead included); "
    "unfused = the program's jaxpr run op by op (every primitive its own dispatch and kernel); "
    "no fusion = one compiled program with XLA's fusion passes disabled; jit = the fused program through a "
    "jax.jit call; AOT = jit(f).lower(...).compile() called directly. "
    "FLOPs and bytes are XLA's cost model of the optimized program; roofs are this device's measured peaks.\n"
  )
