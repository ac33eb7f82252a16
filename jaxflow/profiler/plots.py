"""The report's PNGs, drawn on bare matplotlib Figures with the Agg canvas (no pyplot, no global backend).

- `latency_<device>.png`: latency vs batch size (log-log), one panel per precision, a line per
  variant (eager model code, unfused op by op, compiled without fusion, jit, AOT), p10-p90 error bars.
- `roofline_<device>.png`: achieved FLOP/s vs arithmetic intensity (log-log) of every AOT program, each
  on the roof its cost-table row is compared with, drawn solid (its dtype's matmul peak and the bandwidth
  measured for its working set, often a cache level: `row_roofs`); device memory's roof dotted for
  reference when no row uses it. So no point sits above a drawn roof unless its row says `above_roof`.
- `throughput_<device>.png`: AOT examples/s vs batch size, a line per precision.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxflow.plotting import new_figure

VARIANTS = (
  ("eager", "eager model code", "#8c564b"),
  ("unfused", "unfused (op by op)", "#d62728"),
  ("nofusion", "compiled, no fusion", "#ff7f0e"),
  ("jit", "jit (fused)", "#1f77b4"),
  ("aot", "AOT compiled", "#2ca02c"),
)
PRECISION_COLOURS = {"f32": "#1f77b4", "bf16": "#ff7f0e", "int8": "#2ca02c", "int8_weights": "#9467bd"}


def slug(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()


def latency_plot(device: dict, path: str) -> None:
  precisions = list(dict.fromkeys(r["precision"] for r in device["inference"]))
  fig = new_figure(4.2 * len(precisions), 3.6, layout="constrained")
  axes = fig.subplots(1, len(precisions), squeeze=False)[0]
  for ax, name in zip(axes, precisions):
    rows = sorted((r for r in device["inference"] if r["precision"] == name), key=lambda r: r["batch_size"])
    sizes = np.array([r["batch_size"] for r in rows])
    for key, label, colour in VARIANTS:
      if not all(key in r["timings"] for r in rows):
        continue
      med = np.array([r["timings"][key]["median_s"] for r in rows]) * 1e3
      lo = med - np.array([r["timings"][key]["p10_s"] for r in rows]) * 1e3
      hi = np.array([r["timings"][key]["p90_s"] for r in rows]) * 1e3 - med
      ax.errorbar(
        sizes, med, yerr=[np.maximum(lo, 0), np.maximum(hi, 0)], marker="o", ms=4, capsize=3, color=colour, label=label
      )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("latency, ms (median, p10-p90)")
    ax.set_title(f"{name}")
    ax.grid(True, which="both", alpha=0.3)
  axes[0].legend(fontsize=8)
  fig.suptitle(f"Inference latency on {device['name']}")
  fig.savefig(path)


def row_roofs(device: dict) -> dict[tuple, list[dict]]:
  """The roofs the report's rows are compared with, keyed (compute dtype, peak FLOP/s, bandwidth, working
  set bytes or None) -> rows: the same roofs the cost table's attainable and efficiency use, so the plot
  can draw exactly them (a row's bandwidth is the one measured for its working set, often a cache level)."""
  peaks = device["peaks"]
  out: dict[tuple, list[dict]] = {}
  for r in device["inference"]:
    rf = r["roofline"]
    peak = (peaks["matmul"].get(rf.get("compute_roof") or r["precision"]) or {}).get("flops_per_s")
    bandwidth = rf.get("bandwidth_bytes_per_s") or (peak / rf["ridge"] if peak and rf.get("ridge") else None)
    if peak and bandwidth and rf["intensity"] and rf["achieved_flops_per_s"]:
      where = rf.get("bandwidth_working_set_bytes") or next(
        (2 * e["array_bytes"] for e in peaks.get("copy_ladder", []) if e["bytes_per_s"] == bandwidth), None
      )
      key = (rf.get("compute_roof") or r["precision"], peak, bandwidth, where)
      out.setdefault(key, []).append(r)
  return out


def roof_label(dtype: str, peak: float, bandwidth: float, working_set: float | None) -> str:
  """A roof in words: its compute peak and the working set whose measured bandwidth is its diagonal."""
  where = f"working set <= {working_set / 2**20:.3g} MiB" if working_set else "device memory"
  return f"{dtype} {peak / 1e9:.3g} G(FL)OP/s, {where} {bandwidth / 1e9:.3g} GB/s"


def roofline_plot(device: dict, path: str) -> None:
  """Each AOT point on the very roof its table row is compared with (solid, same colour, same marker), plus
  the device-memory roof dotted for reference; a point above its own roof is labelled so."""
  roofs = row_roofs(device)
  device_bw = device["peaks"]["copy"]["bytes_per_s"]
  fig = new_figure(7.2, 5.0, layout="constrained")
  ax = fig.subplots()
  intensities = [r["roofline"]["intensity"] for rows in roofs.values() for r in rows] + [k[1] / k[2] for k in roofs]
  lo, hi = (min(intensities) / 4, max(intensities) * 4) if intensities else (0.1, 1000)
  x = np.geomspace(lo, hi, 200)
  markers = "osD^v<>p*h"
  styles: dict[str, int] = {}  # a precision's second roof (another working set) dashed, its third dash-dotted
  for i, ((dtype, peak, bandwidth, working_set), rows) in enumerate(roofs.items()):
    colour = PRECISION_COLOURS.get(rows[0]["precision"], "grey")
    style = ("-", "--", "-.", ":")[styles.setdefault(rows[0]["precision"], 0) % 4]
    styles[rows[0]["precision"]] += 1
    names = ", ".join(f"{r['precision']} b{r['batch_size']}" for r in rows)
    label = f"roof of {names}: " + roof_label(dtype, peak, bandwidth, working_set)
    ax.plot(x, np.minimum(peak, bandwidth * x), color=colour, lw=1.5, ls=style, label=label)
    for r in rows:
      rf = r["roofline"]
      ax.scatter(rf["intensity"], rf["achieved_flops_per_s"], color=colour, marker=markers[i % len(markers)], zorder=3)
      text = f"{r['precision']} b{r['batch_size']}" + (" (above its roof)" if rf.get("above_roof") else "")
      ax.annotate(
        text, (rf["intensity"], rf["achieved_flops_per_s"]), textcoords="offset points", xytext=(4, 3), fontsize=7
      )
  if not any(k[2] == device_bw for k in roofs):
    top = max((k[1] for k in roofs), default=None)
    ax.plot(
      x,
      np.minimum(top, device_bw * x) if top else device_bw * x,
      color="grey",
      lw=0.8,
      ls=":",
      label=f"device memory {device_bw / 1e9:.3g} GB/s (reference: no point is compared with it)",
    )
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("arithmetic intensity, FLOP/byte (XLA cost model)")
  ax.set_ylabel("achieved FLOP/s (AOT)")
  ax.set_title(f"Roofline on {device['name']}: each point with the roof its table row uses")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=6, loc="lower right")
  fig.savefig(path)


def throughput_plot(device: dict, path: str) -> None:
  fig = new_figure(5.6, 3.8, layout="constrained")
  ax = fig.subplots()
  for name in dict.fromkeys(r["precision"] for r in device["inference"]):
    rows = sorted((r for r in device["inference"] if r["precision"] == name), key=lambda r: r["batch_size"])
    ax.plot(
      [r["batch_size"] for r in rows],
      [r["throughput_per_s"]["aot"] for r in rows],
      marker="o",
      color=PRECISION_COLOURS.get(name),
      label=name,
    )
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_xlabel("batch size")
  ax.set_ylabel("examples per second (AOT)")
  ax.set_title(f"Inference throughput on {device['name']}")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=8)
  fig.savefig(path)


def write_plots(result: dict, directory: str) -> dict[str, str]:
  os.makedirs(directory, exist_ok=True)
  paths = {}
  for device in result["devices"]:
    if not device["inference"]:
      continue
    s = slug(device["name"].split(" ")[0])
    for kind, draw in (("latency", latency_plot), ("roofline", roofline_plot), ("throughput", throughput_plot)):
      path = os.path.join(directory, f"{kind}_{s}.png")
      draw(device, path)
      paths[f"{kind}_{s}"] = path
  return paths
