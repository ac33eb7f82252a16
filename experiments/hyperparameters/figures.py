"""The study's plots: a heatmap per surface (mean test accuracy, the best cell of each column framed, cells tied with
it dotted), the collapse plot (accuracy against lr x steps, every batch size and epoch count) and the best lr
against batch size and epochs next to the linear and square-root scaling rules.

Why these: a heatmap shows at a glance whether the best row moves from column to column (interaction) or stays
(additive); the collapse plot shows whether one combined variable explains the moves; the scaling panel puts the
measured optimum beside the rules practitioners apply.
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from experiments.common import plots


def _heatmap(out: str, a: dict, file: str) -> str:
  means = np.array([[c["mean"] for c in row] for row in a["cells"]], np.float64)
  fig = plots.figure(1.6 + 1.25 * len(a["cols"]), 1.4 + 0.75 * len(a["rows"]))
  ax = fig.add_subplot(1, 1, 1)
  image = ax.imshow(means, cmap="viridis", origin="lower", aspect="auto", vmin=max(0.0, float(means.min())), vmax=1.0)
  fig.colorbar(image, ax=ax, label="test accuracy (mean over seeds)")
  for i in range(means.shape[0]):
    for j in range(means.shape[1]):
      dark = means[i, j] < 0.5 * (1.0 + means.min())
      ax.text(j, i, f"{means[i, j]:.3f}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
  for j, best in enumerate(a["best_per_column"]):
    ax.add_patch(Rectangle((j - 0.5, best["best"] - 0.5), 1, 1, fill=False, ec="red", lw=2.2))
    for i in best["tied"]:
      if i != best["best"]:
        ax.plot(j + 0.36, i + 0.3, "o", color="red", ms=4)
  ax.set_xticks(range(len(a["cols"])))
  ax.set_xticklabels([f"{c:g}" for c in a["cols"]])
  ax.set_yticks(range(len(a["rows"])))
  ax.set_yticklabels([f"{r:g}" for r in a["rows"]])
  ax.set_xlabel(a["col_name"])
  ax.set_ylabel(a["row_name"])
  share = a["interaction"]
  tail = "" if share is None else f"\ninteraction share {share['share']:.0%} (red frame: best per column, dot: tied)"
  ax.set_title(a["name"] + tail, fontsize=9)
  return plots.save(fig, out, file)


def _collapse(out: str, shapes: dict, analyzed: dict, batches) -> str:
  fig = plots.figure(7.2, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  markers = "osD^v<>"
  for b in batches:
    s = shapes[f"lr x epochs (batch {b})"]
    values = np.asarray(s["values"], np.float64).mean(2)
    x, y = np.asarray(s["combined"], np.float64), values
    line = ax.plot([], [], color=None)[0]
    for i, lr in enumerate(s["rows"]):
      ax.plot(x[i], y[i], marker=markers[i % len(markers)], color=line.get_color(), ls="-", lw=0.8, ms=4)
    line.set_label(f"batch {b}")
  ax.set_xscale("log")
  ax.set_xlabel("lr x optimizer steps (lr x epochs x steps per epoch)")
  ax.set_ylabel("test accuracy (mean over seeds)")
  lrs = shapes[f"lr x epochs (batch {batches[0]})"]["rows"]
  shapes_note = ", ".join(f"{m} lr {lr:g}" for m, lr in zip(markers, lrs))
  r2 = analyzed["lr x batch"].get("collapse", {})
  title = "One curve if lr x steps explained everything; markers: " + shapes_note
  if r2.get("r2") is not None and r2.get("additive_r2") is not None:
    title += f"\nlr x batch at the last epoch: R^2 {r2['r2']:.2f} on lr x steps alone, {r2['additive_r2']:.2f} additive"
  ax.set_title(title, fontsize=8)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "collapse_lr_steps.png")


def _scaling(out: str, analyzed: dict, main: str) -> str | None:
  panels = [(analyzed["lr x batch"], "batch size"), (analyzed[main], "epochs")]
  panels = [(a, x) for a, x in panels if a.get("slope")]
  if not panels:
    return None
  fig = plots.figure(4.0 * len(panels), 3.8)
  for k, (a, label) in enumerate(panels):
    ax = fig.add_subplot(1, len(panels), k + 1)
    cols, slope = np.asarray(a["cols"], np.float64), a["slope"]
    best = 10 ** np.asarray(slope["best_log10"])
    edge = np.asarray(slope["at_edge"])
    ax.plot(cols, best, "o-", color="black", label=f"measured best lr (slope {slope['slope']:+.2f})")
    ax.plot(cols[edge], best[edge], "x", color="red", ms=9, label="at the grid's edge")
    sign = 1 if label == "batch size" else -1  # lr ~ batch; lr x epochs constant
    linear = "linear rule" if sign > 0 else "lr x epochs constant"
    for power, style, name in ((1.0, "--", linear), (0.5, ":", "square-root rule")):
      rule = best[0] * (cols / cols[0]) ** (sign * power)
      ax.plot(cols, rule, style, color="tab:blue", label=f"{name} (slope {sign * power:+.1f})")
    for r in a["rows"]:
      ax.axhline(r, color="grey", lw=0.4)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("best lr (interpolated)")
    ax.set_title(f"{a['name']}: grey = lrs tried", fontsize=8)
    ax.legend(fontsize=7)
  return plots.save(fig, out, "best_lr_scaling.png")


def draw(out: str, shapes: dict, analyzed: dict, main: str, grid: dict) -> list[tuple[str, str]]:
  files = [
    (f"Heatmap: {analyzed[main]['name']}", _heatmap(out, analyzed[main], "heatmap_lr_epochs.png")),
    ("Heatmap: lr x batch size", _heatmap(out, analyzed["lr x batch"], "heatmap_lr_batch.png")),
    ("Heatmap: dropout x batch size", _heatmap(out, analyzed["dropout x batch"], "heatmap_dropout_batch.png")),
    ("Accuracy against lr x steps", _collapse(out, shapes, analyzed, grid["batches"])),
  ]
  scaling = _scaling(out, analyzed, main)
  return files + ([("Best lr against batch size and epochs", scaling)] if scaling else [])
