"""The hardware study's PNGs: time per example against batch size (fused, op by op, eager; 1 and 2 threads),
the roofline (each model and batch at its arithmetic intensity under the measured roofs), and the paired
ratios with their intervals (op by op / fused, 1 / 2 threads)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from experiments.common import plots
from experiments.hardware import analysis

STYLES = {  # (threads, key) -> label, line style
  (2, "fused_s"): ("fused (AOT), 2 threads", "-"),
  (1, "fused_s"): ("fused (AOT), 1 thread", "--"),
  (2, "opbyop_s"): ("op by op, 2 threads", ":"),
  (2, "eager_s"): ("eager, 2 threads", "-."),
}


def _per_example(rounds, threads, model, batch, key):
  values = analysis.series(rounds, threads, model, "cpu", analysis.inference_getter(batch, key))
  return [None if v is None else v / batch * 1e6 for v in values]


def inference_by_batch(out, rounds, models, batches, threads) -> str:
  fig = plots.figure(3.2 * len(models), 3.4)
  for i, model in enumerate(models):
    ax = fig.add_subplot(1, len(models), i + 1)
    for (t, key), (label, style) in STYLES.items():
      if t not in threads:
        continue
      sizes = batches[model]
      summaries = [analysis.summary(_per_example(rounds, t, model, b, key)) for b in sizes]
      plots.error_bars(ax, sizes, summaries, label=label, linestyle=style)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(model, fontsize=9)
    ax.set_xlabel("batch size")
    if i == 0:
      ax.set_ylabel("µs per example (CPU)")
  fig.axes[0].legend(fontsize=6)
  return plots.save(fig, out, "inference_by_batch.png")


def roofline(out, rounds, models, batches, threads) -> str:
  """Achieved FLOP/s against intensity (median over rounds, 2 threads) under each setting's roofs."""
  fig = plots.figure(6.4, 4.4)
  ax = fig.add_subplot(1, 1, 1)
  xs = np.logspace(-2, 3, 200)
  for t, style in zip(threads, ("--", "-"), strict=False):
    peak = analysis.summary(analysis.series(rounds, t, models[0], "cpu", lambda d: d["peak_flops"]))["median"]
    bw = analysis.summary(analysis.series(rounds, t, models[0], "cpu", lambda d: d["peak_bytes_per_s"]))["median"]
    if peak and bw:
      ax.plot(xs, np.minimum(peak, bw * xs), style, color="gray", label=f"roof, {t} thread(s) (quick peaks)")
  markers = "osD^v"
  for m, model in enumerate(models):
    for batch in batches[model]:
      get = analysis.inference_getter
      x = analysis.summary(analysis.series(rounds, max(threads), model, "cpu", get(batch, "intensity")))["median"]
      y = analysis.summary(analysis.series(rounds, max(threads), model, "cpu", get(batch, "achieved_flops")))["median"]
      if x and y:
        ax.loglog([x], [y], markers[m % len(markers)], color=f"C{m}", ms=4 + 2 * np.log2(batch) / 4)
        ax.annotate(f"{model} b{batch}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("arithmetic intensity (FLOP per byte, XLA cost analysis)")
  ax.set_ylabel("achieved FLOP/s (fused inference)")
  ax.set_title("Roofline, CPU (points: 2 threads; marker size grows with the batch)", fontsize=9)
  ax.legend(fontsize=7)
  return plots.save(fig, out, "roofline.png")


def ratio_bars(out, ratios) -> str:
  fig = plots.figure(10.0, 1.4 + 0.2 * max(len(ratios["fusion"]), len(ratios["threads"])))
  for i, (key, title) in enumerate((("fusion", "op by op / fused"), ("threads", "1 thread / 2 threads"))):
    rows = [r for r in ratios[key] if r["ratio"] is not None]
    ax = fig.add_subplot(1, 2, i + 1)
    if not rows:
      ax.set_title(f"{title}: not measured", fontsize=9)
      continue
    y = np.arange(len(rows))
    mean = [r["ratio"] for r in rows]
    lo = [r["ratio"] - (r["ratio_ci95"] or [r["ratio"]])[0] for r in rows]
    hi = [(r["ratio_ci95"] or [0, r["ratio"]])[1] - r["ratio"] for r in rows]
    for j, r in enumerate(rows):
      color = "C7" if r["verdict"] == "tie" else "C0"
      ax.errorbar([mean[j]], [y[j]], xerr=[[lo[j]], [hi[j]]], fmt="o", color=color, capsize=3, ms=4)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([r["comparison"] for r in rows], fontsize=6)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("ratio (log scale; 1 = no difference)", fontsize=7)
    ax.set_title(f"{title}\n(geometric mean, 95% CI; grey: tie)", fontsize=8)
  return plots.save(fig, out, "ratios.png")


def draw(out, rounds, models, batches, threads, ratios) -> list[tuple[str, str]]:
  return [
    ("Time per example against batch size, CPU", inference_by_batch(out, rounds, models, batches, threads)),
    ("Roofline, CPU", roofline(out, rounds, models, batches, threads)),
    ("Paired ratios: op by op / fused and 1 / 2 threads", ratio_bars(out, ratios)),
  ]
