"""The study's matplotlib plots, drawn from the same events TensorBoard reads (every seed, not only seed 0).

Why these next to the screenshots: a screenshot shows one seed as TensorBoard draws it (with its default
outlier clipping); these show all seeds on full axes, with the step each alert fires, so a reader can see that
the picture in the screenshot is what every seed does, and where the warning sign appears.
"""

from __future__ import annotations

import math

import numpy as np

from experiments.common import plots

COLORS = {"healthy": "tab:green", "overfitting": "tab:blue", "diverging": "tab:red"}
ALERT_OF = {
  "overfitting": (("overfit_step", "overfit alert", "--"),),
  "diverging": (("grad_spike_step", "grad-norm alert", "--"), ("chance_step", "stuck-at-chance alert", "-.")),
}


def _series(curve: dict | None, tag: str) -> tuple[np.ndarray, np.ndarray]:
  points = (curve or {}).get(tag) or []
  if not points:
    return np.zeros(0), np.zeros(0)
  a = np.asarray(points, np.float64)
  return a[:, 0], a[:, 1]


def _alert_line(ax, arm: str, summary: dict) -> None:
  for key, label, style in ALERT_OF.get(arm, ()):
    step = summary[arm]["alerts"][key]["step"]
    if step and step["mean"] is not None:
      ax.axvline(step["mean"], color="k", ls=style, lw=1, label=f"{label} (mean step {step['mean']:.0f})")


def _learning_curves(out: str, curves: dict, summary: dict) -> str:
  arms = list(curves)
  fig = plots.figure(4.2 * len(arms), 7.0)
  for j, arm in enumerate(arms):
    for i, (what, ylabel) in enumerate((("loss", "loss (log scale)"), ("accuracy", "accuracy"))):
      ax = fig.add_subplot(2, len(arms), i * len(arms) + j + 1)
      for k, curve in enumerate(curves[arm]):
        for split, color in (("train", "tab:orange"), ("eval", "tab:purple")):
          x, y = _series(curve, f"{split}/{what}")
          ax.plot(x, y, color=color, lw=0.7, alpha=0.6, label=f"{split}/{what}" if k == 0 else None)
      _alert_line(ax, arm, summary)
      if what == "loss":
        ax.set_yscale("log")
        ax.axhline(math.log(10), color="grey", lw=0.8, ls=":", label="ln 10 (chance)")
      ax.set_title(f"{arm}: {what}, every seed")
      ax.set_xlabel("step")
      ax.set_ylabel(ylabel)
      ax.grid(alpha=0.3)
      ax.legend(fontsize=7)
  return plots.save(fig, out, "learning_curves.png")


def _best_so_far_ratio(curve: dict | None) -> tuple[np.ndarray, np.ndarray]:
  x, y = _series(curve, "eval/loss")
  return x, y / np.minimum.accumulate(y) if y.size else y


def _signals(out: str, curves: dict) -> str:
  fig = plots.figure(13.0, 4.0)
  panels = (
    ("train/grad_norm", "gradient norm (log scale)", True),
    ("kernel_std", "std of all kernel weights (histograms)", True),
    ("ratio", "eval loss / its best so far", False),
  )
  for i, (tag, label, log) in enumerate(panels):
    ax = fig.add_subplot(1, len(panels), i + 1)
    for arm, seeds in curves.items():
      for k, curve in enumerate(seeds):
        x, y = _best_so_far_ratio(curve) if tag == "ratio" else _series(curve, tag)
        ax.plot(x, y, color=COLORS.get(arm), lw=0.7, alpha=0.6, label=arm if k == 0 else None)
    if tag == "ratio":
      ax.axhline(1.10, color="k", ls="--", lw=1, label="overfit alert threshold")
    if log:
      ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  fig.suptitle("The signals behind the alerts, every seed")
  return plots.save(fig, out, "signals.png")


def _headline(out: str, summary: dict) -> str:
  metrics = (
    ("accuracy_gap", "train - test accuracy"),
    ("eval_loss_rise", "final eval loss / best - 1"),
    ("peak_loss_ratio", "peak train loss / first"),
    ("final_test_accuracy", "test accuracy"),
  )
  fig = plots.figure(12.0, 3.6)
  arms = list(summary)
  for i, (key, label) in enumerate(metrics):
    ax = fig.add_subplot(1, len(metrics), i + 1)
    for j, arm in enumerate(arms):
      plots.error_bars(ax, [j], [summary[arm][key]], color=COLORS.get(arm), ls="none")
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels(arms, fontsize=8)
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.set_title(label, fontsize=9)
    ax.grid(alpha=0.3)
  fig.suptitle("Headline numbers per run type (mean, 95% CI over seeds)")
  return plots.save(fig, out, "headline.png")


def draw(out: str, curves: dict, summary: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Learning curves of every seed, with the step each alert fires", _learning_curves(out, curves, summary)),
    ("Gradient norm, kernel spread and eval loss against its best, every seed", _signals(out, curves)),
    ("Headline numbers per run type", _headline(out, summary)),
  ]
