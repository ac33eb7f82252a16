"""The study's plots: median regret against evaluations per dimension, final regret against dimension per method,
and the digits MLP's best-so-far accuracy per trial with the retrained picks.

Why these: the claim is about where BO's advantage ends as the dimension grows, so one figure shows the whole
search at each dimension (does BO pull away, and when) and one puts the final regrets side by side along d.
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots, stats

COLORS = {"random": "tab:gray", "sobol": "tab:blue", "bo": "tab:red"}


def _key(name: str, d: int, method: str) -> str:
  return f"{name} d={d} {method}"


def _curves(out: str, summaries: dict, plan: dict, methods) -> str:
  rows, cols = len(plan["functions"]), len(plan["dims"])
  fig = plots.figure(2.6 * cols, 2.4 * rows + 0.4)
  for i, name in enumerate(plan["functions"]):
    for j, d in enumerate(plan["dims"]):
      ax = fig.add_subplot(rows, cols, i * cols + j + 1)
      for m in methods:
        curve = np.maximum(summaries[_key(name, d, m)]["curve_median"], 1e-12)
        ax.plot(np.arange(1, len(curve) + 1), curve, color=COLORS[m], label=m)
      ax.set_yscale("log")
      ax.set_title(f"{name}, d={d}", fontsize=9)
      ax.tick_params(labelsize=7)
      ax.grid(alpha=0.3)
      if j == 0:
        ax.set_ylabel("median simple regret", fontsize=8)
      if i == rows - 1:
        ax.set_xlabel("evaluations", fontsize=8)
  fig.axes[0].legend(fontsize=7)
  fig.suptitle("Median simple regret vs evaluations (over repetitions)", fontsize=10)
  return plots.save(fig, out, "regret_curves.png")


def _final(out: str, summaries: dict, plan: dict, methods) -> str:
  fig = plots.figure(4.2 * len(plan["functions"]), 3.8)
  dims = plan["dims"]
  for i, name in enumerate(plan["functions"]):
    ax = fig.add_subplot(1, len(plan["functions"]), i + 1)
    for k, m in enumerate(methods):
      xs = [j + (k - 1) * 0.12 for j in range(len(dims))]
      meds = [summaries[_key(name, d, m)]["median"] for d in dims]
      y = [s["median"] for s in meds]
      err = [[s["median"] - s["ci95"][0] for s in meds], [s["ci95"][1] - s["median"] for s in meds]]
      ax.errorbar(xs, y, yerr=err, marker="o", ms=4, capsize=3, color=COLORS[m], label=m)
    ax.set_xticks(range(len(dims)))
    ax.set_xticklabels([str(d) for d in dims])
    ax.set_yscale("log")
    ax.set_xlabel("dimension d (budget min(10 d, cap) evaluations)")
    ax.set_ylabel("final simple regret")
    ax.set_title(f"{name}: median [bootstrap 95% CI]", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  return plots.save(fig, out, "final_regret_vs_dim.png")


def _mlp(out: str, studies: dict, retrained: dict) -> str:
  fig = plots.figure(9.0, 3.8)
  ax = fig.add_subplot(1, 2, 1)
  for m, rows in studies.items():
    for r in rows:
      ax.plot(np.arange(1, len(r["curve"]) + 1), r["curve"], color=COLORS[m], alpha=0.35)
    ax.plot(
      np.arange(1, len(rows[0]["curve"]) + 1),
      np.median([r["curve"] for r in rows], axis=0),
      color=COLORS[m],
      lw=2,
      label=f"{m} (median of {len(rows)} studies)",
    )
  ax.set_xlabel("trials")
  ax.set_ylabel("best test accuracy so far")
  ax.set_title("jaxflow.tune on the digits MLP", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  ax = fig.add_subplot(1, 2, 2)
  names = list(retrained)
  plots.error_bars(
    ax, range(len(names)), [stats.mean_ci(r.values("accuracy")) for r in retrained.values()], ls="none", color="k"
  )
  ax.set_xticks(range(len(names)))
  ax.set_xticklabels([n.replace(" (", "\n(") for n in names], fontsize=7)
  ax.set_ylabel("test accuracy, retrained")
  ax.set_title("The picks retrained (mean, 95% CI over seeds)", fontsize=9)
  ax.grid(alpha=0.3)
  return plots.save(fig, out, "mlp_tuning.png")


def draw(out: str, summaries: dict, plan: dict, methods, studies: dict, retrained: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Median simple regret against evaluations, per function and dimension", _curves(out, summaries, plan, methods)),
    ("Final simple regret against dimension, per method", _final(out, summaries, plan, methods)),
    ("Digits MLP: best accuracy per trial, and the picks retrained", _mlp(out, studies, retrained)),
  ]
