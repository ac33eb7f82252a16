"""The study's plots: accuracy per family (with its parameter count), time per step and compile time, and the
learning curves.

Why these: the question is which family to pick, so accuracy sits next to its parameter count (matched budgets
make the families comparable) and next to what each costs on this CPU (a step, and the compile a user waits for
before the first step); the curves show whether an arm was still learning when its budget ended.
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots

CHANCE = {"digits": 0.1, "karate": 0.5}
TASK_COLORS = {"digits": "tab:blue", "karate": "tab:green"}


def _label(name: str, v: dict) -> str:
  count = v["num_params"]
  return name.replace(" (", "\n(").replace(", ", ",\n") + (f"\n{count:,} p." if isinstance(count, int) else "")


def accuracy(out: str, s: dict) -> str:
  fig = plots.figure(4.0 + 2.2 * len(s), 4.4)
  for k, (task, arms) in enumerate(s.items()):
    ax = fig.add_subplot(1, len(s), k + 1)
    names = list(arms)
    plots.error_bars(ax, range(len(names)), [arms[n]["accuracy"] for n in names], ls="none", color=TASK_COLORS[task])
    for i, n in enumerate(names):  # every seed, so a bimodal arm shows
      values = arms[n]["accuracy"]["values"]
      ax.scatter([i + 0.12] * len(values), values, s=9, color="grey", alpha=0.7, zorder=3)
    ax.axhline(CHANCE[task], color="red", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([_label(n, arms[n]) for n in names], fontsize=7)
    ax.set_xlim(-0.5, len(names) - 0.5)
    ax.set_ylabel("final test accuracy")
    ax.set_title(f"{task}: mean, 95% CI, seeds (grey)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
  return plots.save(fig, out, "accuracy.png")


def timing(out: str, s: dict) -> str:
  """Left: ms per training step (mean, 95% CI); right: the first seed's compile and init seconds, stacked."""
  fig = plots.figure(11.0, 4.4)
  step_ax, compile_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  labels, x = [], 0
  for task, arms in s.items():
    for n, v in arms.items():
      plots.error_bars(step_ax, [x], [v["step_ms"]], ls="none", color=TASK_COLORS[task])
      c, i = v["cold_compile_s"] or 0.0, v["cold_init_s"] or 0.0
      first = n == next(iter(arms))  # one legend entry per task
      compile_ax.bar(x, c, color=TASK_COLORS[task], label=f"{task}: programs" if first else None)
      compile_ax.bar(
        x, i, bottom=c, color=TASK_COLORS[task], alpha=0.4, hatch="//", label=f"{task}: init" if first else None
      )
      labels.append(_label(n, v))
      x += 1
  for ax in (step_ax, compile_ax):
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, fontsize=6)
    ax.grid(alpha=0.3, axis="y")
  step_ax.set_yscale("log")
  step_ax.set_ylabel("ms per training step (log)")
  step_ax.set_title("Step time (train_seconds / steps), mean and 95% CI", fontsize=9)
  compile_ax.set_ylabel("seconds, first seed (cold)")
  compile_ax.set_title("Compile: step/eval programs + initializer", fontsize=9)
  compile_ax.legend(fontsize=7)
  return plots.save(fig, out, "timing.png")


def curves(out: str, s: dict) -> str:
  fig = plots.figure(4.0 + 2.2 * len(s), 4.0)
  for k, (task, arms) in enumerate(s.items()):
    ax = fig.add_subplot(1, len(s), k + 1)
    for n, v in arms.items():
      curve = [c for c in v["curve"] if c is not None]
      ax.plot(range(1, len(curve) + 1), curve, label=n, lw=1.3)
    ax.axhline(CHANCE[task], color="red", ls=":", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (mean over seeds)")
    ax.set_title(f"{task}: learning curves", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
  return plots.save(fig, out, "curves.png")


def draw(out: str, s: dict, reference: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  del reference
  return [
    ("Final test accuracy per family, with parameter counts", accuracy(out, s)),
    ("Time per training step and cold compile time per family", timing(out, s)),
    ("Test accuracy per epoch (mean over seeds)", curves(out, s)),
  ]
