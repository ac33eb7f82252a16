"""The report's PNGs, drawn on bare matplotlib Figures with the Agg canvas (no pyplot, no global backend).

- `latency_<device>.png`: latency vs batch size (log-log), one panel per precision, a line per
  variant (eager model code, unfused op by op, compiled without fusion, jit, AOT), p10-p90 error bars.
- `roofline_<device>.png`: achieved FLOP/s vs arithmetic intensity (log-log) of every AOT program, on
  the device's measured roofs (device-memory bandwidth diagonal, one flat roof per matmul dtype, and
  dotted diagonals for the bandwidth of cache-resident working sets).
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


def roofline_plot(device: dict, path: str) -> None:
  peaks = device["peaks"]
  bandwidth = peaks["copy"]["bytes_per_s"]
  rows = [r for r in device["inference"] if r["roofline"]["intensity"] and r["roofline"]["achieved_flops_per_s"]]
  fig = new_figure(6.4, 4.6, layout="constrained")
  ax = fig.subplots()
  roofs = {k: v["flops_per_s"] for k, v in peaks["matmul"].items() if v.get("flops_per_s")}
  intensities = [r["roofline"]["intensity"] for r in rows] + [p / bandwidth for p in roofs.values()]
  lo, hi = (min(intensities) / 4, max(intensities) * 4) if intensities else (0.1, 1000)
  x = np.geomspace(lo, hi, 200)
  for name, peak in roofs.items():
    colour = PRECISION_COLOURS.get(name, "grey")
    ax.plot(
      x,
      np.minimum(peak, bandwidth * x),
      color=colour,
      lw=1.5,
      ls="-" if name == "f32" else "--",
      label=f"roof {name}: {peak / 1e9:.3g} G(FL)OP/s, device memory {bandwidth / 1e9:.3g} GB/s",
    )
  top = max(roofs.values()) if roofs else None
  for level in peaks.get("copy_ladder", [])[:-1]:  # cache-resident working sets: their own, higher diagonals
    bw = level["bytes_per_s"]
    ax.plot(
      x,
      np.minimum(top, bw * x) if top else bw * x,
      color="grey",
      lw=0.8,
      ls=":",
      label=f"bandwidth, working set <= {2 * level['array_bytes'] / 2**20:.3g} MiB: {bw / 1e9:.3g} GB/s",
    )
  for name in dict.fromkeys(r["precision"] for r in rows):
    mine = sorted((r for r in rows if r["precision"] == name), key=lambda r: r["batch_size"])
    xs = [r["roofline"]["intensity"] for r in mine]
    ys = [r["roofline"]["achieved_flops_per_s"] for r in mine]
    ax.scatter(
      xs, ys, color=PRECISION_COLOURS.get(name, "black"), marker="o", zorder=3, label=f"{name} (AOT), label = batch"
    )
    for r, xi, yi in zip(mine, xs, ys):
      ax.annotate(str(r["batch_size"]), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7)
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("arithmetic intensity, FLOP/byte (XLA cost model)")
  ax.set_ylabel("FLOP/s")
  ax.set_title(f"Roofline on {device['name']} (measured peaks)")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(fontsize=7, loc="lower right")
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
