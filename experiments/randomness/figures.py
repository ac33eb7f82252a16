"""The study's plots: the std of test accuracy per source (ours, MLP and CNN reference, beside Summers & Dinneen's
published figures) and of test loss; the pairwise disagreement per source; the sequential comparison's looks.

Why these: the claim under test is a pattern across sources (every single source, even one bit, spreads the
result about as much as all together), so each panel puts the sources side by side with their bootstrap CIs; the
published values sit next to ours on the same axis, labelled as theirs.
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots

THEIRS = "tab:gray"


def _bars(ax, xs, items: list[dict | None], scale: float, **kw) -> None:
  """Bars of the runner's {std|mean, ci95} dicts with their intervals; missing ones left out."""
  pts = [(x, d) for x, d in zip(xs, items, strict=True) if d and d.get("std", d.get("mean")) is not None]
  if not pts:
    return
  x = [p[0] for p in pts]
  v = [p[1].get("std", p[1].get("mean")) * scale for p in pts]
  lo = [max(0.0, vi - (p[1]["ci95"] or [vi / scale])[0] * scale) for vi, p in zip(v, pts, strict=True)]
  hi = [max(0.0, (p[1]["ci95"] or [0, vi / scale])[1] * scale - vi) for vi, p in zip(v, pts, strict=True)]
  ax.bar(x, v, kw.pop("width"), yerr=[lo, hi], capsize=3, **kw)


def _std(out: str, found: dict, ref: dict | None, published: dict) -> str:
  names = list(dict.fromkeys([*found, *(ref or {})]))
  theirs = published["std_accuracy_percent"]
  fig = plots.figure(9.0, 4.2)
  ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  x = np.arange(len(names))
  w = 0.27
  _bars(ax, x - w, [found.get(n, {}).get("accuracy_std") for n in names], 100, width=w, label="ours: digits MLP")
  if ref:
    _bars(ax, x, [ref.get(n, {}).get("accuracy_std") for n in names], 100, width=w, label="ours: digits CNN (ref.)")
  t = [(i, theirs[n]) for i, n in enumerate(names) if n in theirs]
  ax.bar([i + w for i, _ in t], [v for _, v in t], w, color=THEIRS, label="theirs: ResNet-14 / CIFAR-10")
  ax.set_ylabel("std of test accuracy over seeds (points)")
  ax.set_title("Accuracy spread by source (95% bootstrap CI)", fontsize=9)
  _bars(bx, x - w / 2, [found.get(n, {}).get("loss_std") for n in names], 1, width=w, label="digits MLP")
  if ref:
    _bars(bx, x + w / 2, [ref.get(n, {}).get("loss_std") for n in names], 1, width=w, label="digits CNN (ref.)")
  bx.set_ylabel("std of test loss over seeds")
  bx.set_title("Loss spread by source (ours only)", fontsize=9)
  for a in (ax, bx):
    a.set_xticks(x)
    a.set_xticklabels(names, rotation=30, fontsize=8)
    a.grid(alpha=0.3, axis="y")
    a.legend(fontsize=7)
  return plots.save(fig, out, "std_by_source.png")


def _disagreement(out: str, found: dict, ref: dict | None, published: dict) -> str:
  names = list(dict.fromkeys([*found, *(ref or {})]))
  fig = plots.figure(7.0, 4.0)
  ax = fig.add_subplot(1, 1, 1)
  x = np.arange(len(names))
  w = 0.38
  _bars(ax, x - w / 2, [found.get(n, {}).get("disagreement") for n in names], 100, width=w, label="ours: digits MLP")
  if ref:
    _bars(ax, x + w / 2, [ref.get(n, {}).get("disagreement") for n in names], 100, width=w, label="ours: CNN (ref.)")
  theirs = published["pairwise_disagreement_percent"]
  ax.axhline(theirs, color=THEIRS, ls="--", label=f"theirs: ~{theirs}% (ResNet-14 / CIFAR-10, every source)")
  ax.set_xticks(x)
  ax.set_xticklabels(names, rotation=30, fontsize=8)
  ax.set_ylabel("pairwise disagreement of test predictions (%)")
  ax.set_title("Prediction disagreement between seeds, by source (95% bootstrap CI)", fontsize=9)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  return plots.save(fig, out, "disagreement_by_source.png")


def _until(out: str, decided: dict) -> str:
  """The accuracy difference of the two learning rates per arm seed, and where the sequential test stopped."""
  fig = plots.figure(7.0, 3.8)
  ax = fig.add_subplot(1, 1, 1)
  arms = list(decided["arms"])
  a, b = (decided["arms"][k]["per_seed"] for k in arms)
  diffs = [x - y for x, y in zip(a, b, strict=True) if x is not None and y is not None]
  n = np.arange(1, len(diffs) + 1)
  running = np.cumsum(diffs) / n
  ax.plot(n, diffs, "o", ms=3, alpha=0.5, label="seed i: A - B")
  ax.plot(n, running, "-", label="running mean of A - B")
  ax.axhline(0, color="k", lw=0.8)
  ax.axvline(decided["seeds_per_arm"], color="tab:green", ls="--", label=f"stopped: {decided['seeds_per_arm']} seeds")
  fixed = decided.get("fixed_design_seeds_per_arm")
  if fixed:
    ax.axvline(fixed, color="tab:red", ls=":", label=f"fixed design (80% power): {fixed} seeds")
  ax.set_xlabel("seeds per arm")
  ax.set_ylabel("test accuracy difference")
  ax.set_title(f"{arms[0]} (A) vs {arms[1]} (B): {decided['decision']}", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return plots.save(fig, out, "until_decided.png")


def draw(out: str, found: dict, reference: dict | None, published: dict, decided: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  ref = reference and reference["found"]
  return [
    ("Std of test accuracy and loss by source, beside the published figures", _std(out, found, ref, published)),
    ("Pairwise disagreement of test predictions by source", _disagreement(out, found, ref, published)),
    ("Learning rates compared until decided", _until(out, decided)),
  ]
