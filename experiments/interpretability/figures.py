"""The study's own plots (explain's pictures are copied beside them by run.py): the randomization check's rank
correlations per method, the saliency mass on the shortcut pixels per method and arm, and the mean saliency map
of each method on the tank task.

Why these: the sanity check's claim is a number per method (does the map change when the weights are random?);
the shortcut's is a comparison of two models' maps (does the shortcut model's mass move onto the background the
light changes?), shown as numbers with 95% CI bars over seeds and as the average map a reader can look at.
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots
from experiments.interpretability.attribution import METHOD_NAMES, METHODS

CNN = "digits CNN"


def _sanity(out: str, summaries: dict, threshold: float) -> str:
  fig = plots.figure(7.5, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  s = summaries[CNN]
  for k, (suffix, label, color) in enumerate(
    (("rank_correlation", "all pixels", "tab:blue"), ("rank_correlation_ink", "pixels with ink", "tab:orange"))
  ):
    xs = [i + (k - 0.5) * 0.25 for i in range(len(METHODS))]
    plots.error_bars(ax, xs, [s[f"{m}/{suffix}"] for m in METHODS], color=color, ls="none", label=label)
  ax.axhline(threshold, color="black", lw=0.8, ls="--", label=f"pass below {threshold}")
  ax.axhline(0, color="grey", lw=0.6)
  ax.set_xticks(range(len(METHODS)))
  ax.set_xticklabels([METHOD_NAMES[m] for m in METHODS], fontsize=8)
  ax.set_ylabel("Spearman rho, trained vs re-initialized |saliency|")
  ax.set_ylim(-0.2, 1.0)
  ax.set_title("Model randomization check on the digits CNN (mean, 95% CI over seeds)", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "randomization_check.png")


def _shortcut(out: str, summaries: dict, arms: tuple[str, str]) -> str:
  fig = plots.figure(8.0, 4.2)
  colors = ("tab:red", "tab:blue")
  panels = (("background_share", "all test rows"), ("background_share_day", "day rows only"))
  for p, (suffix, title) in enumerate(panels):
    ax = fig.add_subplot(1, 2, p + 1)
    for k, arm in enumerate(arms):
      xs = [i + (k - 0.5) * 0.25 for i in range(len(METHODS))]
      plots.error_bars(
        ax, xs, [summaries[arm][f"{m}/{suffix}"] for m in METHODS], color=colors[k], ls="none", label=arm
      )
    even = summaries[arms[0]]["background_pixels"]["mean"]
    ax.axhline(even, color="grey", lw=0.8, ls=":", label=f"an even map ({even:.2f})")
    ax.set_xticks(range(len(METHODS)))
    ax.set_xticklabels([METHOD_NAMES[m].replace(" ", "\n", 1) for m in METHODS], fontsize=7)
    ax.set_ylim(0, 1)
    ax.set_title(f"saliency mass on background pixels: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    if p == 0:
      ax.set_ylabel("share of sum |attribution|")
      ax.legend(fontsize=7, loc="upper right")
  return plots.save(fig, out, "shortcut_background_share.png")


def _mean_maps(out: str, results: dict, arms: tuple[str, str]) -> str:
  fig = plots.figure(8.0, 4.4)
  for r, arm in enumerate(arms):
    row = next((x for x in results[arm].per_seed if x), {})
    for c, m in enumerate(METHODS):
      ax = fig.add_subplot(len(arms), len(METHODS), r * len(METHODS) + c + 1)
      image = np.asarray(row.get(f"{m}/mean_map", np.zeros((8, 8))))
      ax.imshow(image, cmap="magma", vmin=0)
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(METHOD_NAMES[m], fontsize=8)
      if c == 0:
        ax.set_ylabel(arm.replace(" (", "\n("), fontsize=7)
  fig.suptitle(
    "Mean |attribution| per pixel (each row's map scaled to sum 1), seed 0, test digits by day and night", fontsize=8
  )
  return plots.save(fig, out, "shortcut_mean_maps.png")


def draw(out: str, summaries: dict, results: dict, arms: tuple[str, str], threshold: float) -> list[tuple[str, str]]:
  return [
    (
      "Model randomization: rank correlation of trained vs random saliency per method",
      _sanity(out, summaries, threshold),
    ),
    (
      "Tank task: saliency mass on the background per method, shortcut vs decorrelated",
      _shortcut(out, summaries, arms),
    ),
    ("Tank task: each method's mean saliency map", _mean_maps(out, results, arms)),
  ]
