"""The study's plots: accuracy against the learning rate per optimizer, the test-accuracy curve at each one's best
lr, and at the best lr the seeds' spread next to the time per step.

Why these: lr dependency is a curve, not a number (where it peaks and how wide the peak is); convergence is read off
the curves against the target line; spread and cost sit side by side because the question asks for both.
"""

from __future__ import annotations

from experiments.common import plots

COLORS = {
  "sgd": "tab:gray",
  "momentum": "tab:blue",
  "nesterov": "tab:cyan",
  "adam": "tab:red",
  "adamw": "tab:orange",
  "rmsprop": "tab:green",
  "adagrad": "tab:purple",
}


def _lr(out: str, summaries: dict) -> str:
  fig = plots.figure(7.5, 4.5)
  ax = fig.add_subplot(1, 1, 1)
  for k, (name, s) in enumerate(summaries.items()):
    lrs = [float(lr) for lr in s["accuracy_by_lr"]]
    xs = [lr * (1 + 0.04 * (k - 3)) for lr in lrs]  # a small offset so the bars do not overlap
    plots.error_bars(ax, xs, list(s["accuracy_by_lr"].values()), color=COLORS.get(name), label=name)
    for x, summary in zip(xs, s["accuracy_by_lr"].values(), strict=True):
      if summary.get("missing"):  # seeds stopped as diverged: the point above is over the survivors alone
        y = summary["mean"] if summary["mean"] is not None else 0.05
        ax.annotate(
          f"{summary['missing']} div.",
          (x, y),
          fontsize=7,
          color=COLORS.get(name),
          xytext=(4, 4),
          textcoords="offset points",
        )
  ax.set_xscale("log")
  ax.set_ylim(0.0, 1.03)  # room for the 'diverged' notes of arms whose every seed diverged (drawn at 0.05)
  ax.set_xlabel("learning rate (constant)")
  ax.set_ylabel("final test accuracy")
  ax.set_title("Accuracy against the learning rate (mean, 95% CI over seeds; 'k div.': seeds diverged)", fontsize=10)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  return plots.save(fig, out, "accuracy_vs_lr.png")


def _curves(out: str, summaries: dict, target: float) -> str:
  fig = plots.figure(7.5, 4.5)
  ax = fig.add_subplot(1, 1, 1)
  for name, s in summaries.items():
    curve = s["mean_curve"]
    ax.plot(
      range(1, len(curve) + 1), curve, marker="o", ms=3, color=COLORS.get(name), label=f"{name} lr={s['best_lr']:g}"
    )
  ax.axhline(target, color="black", ls="--", lw=1, label=f"target {target:.0%}")
  ax.set_ylim(max(0.0, min((min(s["mean_curve"], default=1) for s in summaries.values()), default=0) - 0.05), 1.0)
  ax.set_xlabel("epoch (11 steps each)")
  ax.set_ylabel("test accuracy (mean over seeds)")
  ax.set_title("Convergence at each optimizer's best learning rate")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "convergence.png")


def _spread_and_cost(out: str, summaries: dict, results: dict) -> str:
  fig = plots.figure(9.0, 4.2)
  ax, bx = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  names = list(summaries)
  for i, name in enumerate(names):
    values = [v for v in results[name][summaries[name]["best_lr"]].values("accuracy") if v is not None]
    ax.scatter([i] * len(values), values, color=COLORS.get(name), s=18)
    step = summaries[name]["seconds_per_step"]
    ci = step["ci95"] or [step["mean"], step["mean"]]
    bx.bar(
      i,
      1000 * step["mean"],
      color=COLORS.get(name),
      yerr=[[1000 * (step["mean"] - ci[0])], [1000 * (ci[1] - step["mean"])]],
    )
  for a, title, label in (
    (ax, "Final accuracy per seed at the best lr", "test accuracy"),
    (bx, "Time per step", "ms per step (5 seeds vmapped)"),
  ):
    a.set_xticks(range(len(names)))
    a.set_xticklabels(names, fontsize=8, rotation=30)
    a.set_title(title, fontsize=10)
    a.set_ylabel(label)
    a.grid(alpha=0.3)
  return plots.save(fig, out, "spread_and_step_time.png")


def draw(out: str, summaries: dict, results: dict, target: float) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Final test accuracy against the learning rate", _lr(out, summaries)),
    ("Test accuracy per epoch at each optimizer's best lr", _curves(out, summaries, target)),
    ("Spread over seeds and time per step at the best lr", _spread_and_cost(out, summaries, results)),
  ]
