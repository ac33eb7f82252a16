"""The study's plots: per-group accuracy and ECE per arm with 95% CI bars, and the minority's per-class recall.

Why these: the question is whether the minority is served worse and what each remedy does to BOTH groups, so
every panel puts the two groups side by side per arm; the recall panel shows whether the loss is spread
over every digit or concentrated on a few.
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots

COLORS = {"majority": "tab:blue", "minority": "tab:orange"}


def _per_group(out: str, summaries: dict, groups, metric: str, label: str, name: str) -> str:
  fig = plots.figure(7.5, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  arms = list(summaries)
  for k, g in enumerate(groups):
    xs = [i + (k - 0.5) * 0.2 for i in range(len(arms))]
    plots.error_bars(ax, xs, [summaries[a][f"{g}/{metric}"] for a in arms], color=COLORS.get(g), ls="none", label=g)
  ax.set_xticks(range(len(arms)))
  ax.set_xticklabels([a.replace(" (", "\n(") for a in arms], fontsize=8)
  ax.set_ylabel(label)
  ax.set_title(f"Test {label} per group (mean, 95% CI over seeds)")
  ax.grid(alpha=0.3)
  ax.legend()
  return plots.save(fig, out, name)


def _recall(out: str, summaries: dict, group: str) -> str:
  fig = plots.figure(7.5, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  arms = list(summaries)
  width = 0.8 / max(1, len(arms))
  for i, a in enumerate(arms):
    recall = summaries[a][f"{group}/recall"]
    ax.bar(np.arange(len(recall)) + (i - (len(arms) - 1) / 2) * width, recall, width, label=a)
  ax.set_xticks(range(10))
  ax.set_xlabel("digit")
  ax.set_ylabel(f"{group} recall")
  ax.set_ylim(0, 1.25)  # room above the bars for the legend
  ax.set_title(f"Per-class recall of the {group} group (mean over seeds)")
  ax.legend(fontsize=7, loc="upper center", ncol=len(arms))
  return plots.save(fig, out, f"recall_{group}.png")


def draw(out: str, summaries: dict, groups) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Accuracy per group and arm", _per_group(out, summaries, groups, "accuracy", "accuracy", "accuracy_by_group.png")),
    ("Calibration error (ECE) per group and arm", _per_group(out, summaries, groups, "ece", "ECE", "ece_by_group.png")),
    ("Minority per-class recall per arm", _recall(out, summaries, groups[-1])),
  ]
