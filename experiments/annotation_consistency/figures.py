"""The study's plots: scenes with every convention's car box, the agreement matrix, and the models' IoU.

Why these: the first shows what the conventions are (the question "what to do when objects overlap?" has
several answers, all defensible); the second is the consistency measurement itself (pairwise agreement by
IoU with Hungarian matching); the third sets each model's IoU with the truth beside its own labels'.
"""

from __future__ import annotations

import numpy as np
from matplotlib.patches import Rectangle

from experiments.annotation_consistency import annotators
from experiments.common import plots

COLORS = {"tight": "tab:green", "loose": "tab:blue", "visible": "tab:orange", "merged": "tab:red", "3-D": "tab:purple"}
MODEL_COLORS = {"tight": "tab:green", annotators.MIXED: "tab:red", annotators.NOISE: "tab:blue"}


def _box(ax, box, color, ls="-", label=None) -> None:
  x0, y0, x1, y1 = box
  ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.4, ls=ls, label=label))


def _examples(s, test: np.ndarray, k: int = 4) -> list[int]:
  """Test scenes worth showing: occluded cars (visible differs) first, the most overlapping ones."""
  idx = np.flatnonzero(test)
  hidden = idx[~s.car_in_front[idx]]
  order = hidden[np.argsort(s.visible_share[hidden])]
  picks = list(order[len(order) // 3 :: max(1, len(order) // (2 * k))][:k])
  return picks + [i for i in idx if i not in picks][: k - len(picks)]


def _scenes(out: str, s, built: dict, predictions: dict) -> str:
  picks = _examples(s, built["test"])
  test_index = {int(i): j for j, i in enumerate(np.flatnonzero(built["test"]))}
  fig = plots.figure(2.4 * len(picks), 5.2)
  for col, i in enumerate(picks):
    for row in range(2):
      ax = fig.add_subplot(2, len(picks), row * len(picks) + col + 1)
      ax.imshow(s.images[i, ..., 0], cmap="gray", vmin=0, vmax=255, extent=(0, s.images.shape[2], s.images.shape[1], 0))
      if row == 0:
        for c in annotators.CONVENTIONS:
          _box(ax, built["car"][c][i], COLORS[c], label=c)
      else:
        _box(ax, s.full["car"][i], "white", ls=":", label="truth")
        for name, boxes in predictions.items():
          if boxes is not None and name in MODEL_COLORS:
            _box(ax, boxes[test_index[int(i)]], MODEL_COLORS[name], label=f"model: {name}")
      ax.set_xticks([])
      ax.set_yticks([])
      if col == 0:
        ax.set_ylabel("annotators' car box" if row == 0 else "models (seed 0)", fontsize=8)
  for row in (0, 1):
    handles, labels = fig.axes[row].get_legend_handles_labels()
    fig.axes[row].legend(handles, labels, fontsize=6, loc="lower left", framealpha=0.7)
  fig.suptitle("Test scenes: the car (bright) and the crate (grey); car boxes by convention and by model", fontsize=9)
  return plots.save(fig, out, "scenes.png")


def _matrix(out: str, agreement: dict) -> str:
  names = agreement["names"]
  m = np.eye(len(names))
  for pair, r in agreement["pairs"].items():
    a, b = pair.split(" vs ")
    m[names.index(a), names.index(b)] = m[names.index(b), names.index(a)] = r["overall"]["agreement"]
  fig = plots.figure(5.6, 4.6)
  ax = fig.add_subplot(1, 1, 1)
  image = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
  for i in range(len(names)):
    for j in range(len(names)):
      ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", color="white" if m[i, j] < 0.6 else "black", fontsize=8)
  ax.set_xticks(range(len(names)), names, rotation=30)
  ax.set_yticks(range(len(names)), names)
  ax.set_title("Agreement (F1 of Hungarian matches at IoU >= 0.5), test scenes", fontsize=9)
  fig.colorbar(image, ax=ax, fraction=0.046)
  return plots.save(fig, out, "agreement_matrix.png")


def _models(out: str, summaries: dict, label_iou: dict) -> str:
  fig = plots.figure(7.5, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  arms = list(summaries)
  plots.error_bars(ax, range(len(arms)), [summaries[a]["iou_truth"] for a in arms], ls="none", label="model (95% CI)")
  ax.scatter(range(len(arms)), [label_iou[a] for a in arms], marker="x", color="tab:red", label="its training labels")
  ax.set_xticks(range(len(arms)), [a.replace(" + ", "\n+ ") for a in arms], fontsize=8)
  ax.set_ylabel("mean IoU with the true car box (test)")
  ax.set_title("IoU with the truth: each model against the labels it learned from")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "model_iou.png")


def draw(out: str, s, built: dict, agreement: dict, summaries: dict, predictions: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Scenes with each convention's car box, and the models' boxes", _scenes(out, s, built, predictions)),
    ("Pairwise agreement of the annotators (jaxflow.agreement)", _matrix(out, agreement)),
    ("Model IoU with the truth against its labels' IoU", _models(out, summaries, agreement["label_iou_truth"])),
  ]
