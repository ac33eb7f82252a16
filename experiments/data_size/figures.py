"""The learning curves (accuracy against size, mean and 95% CI over seeds, the fitted power law drawn
through them) and the same errors on log-log axes, where a power law is a straight line down to its floor."""

from __future__ import annotations

import numpy as np

from experiments.common import plots
from experiments.data_size import fit


def _fitted(ax, s: dict, color: str, *, error: bool) -> None:
  f = s["fit"]
  if not f.get("informative"):
    return
  n = np.geomspace(min(s["sizes"]), max(s["sizes"]), 100)
  e = fit.power_law(n, f["a"], f["b"], f["c"])
  ax.plot(n, e if error else 1 - e, color=color, lw=1, ls="--")


def draw(out: str, summaries: dict) -> list[tuple[str, str]]:
  fig = plots.figure(11, 4.2)
  digits, graph = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  for i, (name, s) in enumerate(summaries.items()):
    ax = graph if s["unit"] == "labelled nodes" else digits
    color = f"C{i}"
    plots.error_bars(ax, s["sizes"], s["accuracy"], color=color, label=name)
    _fitted(ax, s, color, error=False)
    if s["target_95"] is not None:
      ax.axhline(s["target_95"], color=color, lw=0.8, ls=":")
  digits.set(xscale="log", xlabel="training examples (stratified, drawn per seed)", ylabel="test accuracy")
  digits.set_title("Digits: mean, 95% CI; dashed: power-law fit; dotted: 95% of the largest", fontsize=9)
  graph.set(xscale="log", xlabel="labelled nodes (half per club)", ylabel="accuracy on the unlabelled nodes")
  for ax, unit in ((digits, "training examples"), (graph, "labelled nodes")):
    sizes = sorted({n for s in summaries.values() if s["unit"] == unit for n in s["sizes"]})
    ax.set_xticks(sizes, [str(n) for n in sizes], fontsize=8)
    ax.minorticks_off()
  graph.set_title("Karate club GCN", fontsize=9)
  for ax in (digits, graph):
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
  files = [("Learning curves", plots.save(fig, out, "learning_curves.png"))]

  fig = plots.figure(6.5, 4.2)
  ax = fig.add_subplot()
  for i, (name, s) in enumerate(summaries.items()):
    errors = [None if a["mean"] is None else max(1 - a["mean"], 1e-4) for a in s["accuracy"]]
    points = [(n, e) for n, e in zip(s["sizes"], errors, strict=True) if e is not None]
    ax.plot([p[0] for p in points], [p[1] for p in points], "o", color=f"C{i}", label=name, ms=4)
    _fitted(ax, s, f"C{i}", error=True)
  ax.set(xscale="log", yscale="log", xlabel="training examples / labelled nodes", ylabel="test error (1 - accuracy)")
  ax.set_title("Error against size: a power law runs straight until its floor c", fontsize=9)
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3, which="both")
  files.append(("Error against size, log-log, with the fitted power laws", plots.save(fig, out, "error_loglog.png")))
  return files
