"""The study's plots: regression test errors per loss with and without outliers, and classification accuracy per
loss, each a mean with its 95% CI over seeds.

Why these: the regression panel puts clean and outlier-laden training side by side per loss (the question is
what outliers do to each); the classification panel groups the losses by task, so a loss is read against the
task's natural one (cross-entropy for 10 classes, BCE for odd/even).
"""

from __future__ import annotations

from experiments.common import plots


def _regression(out: str, summaries: dict, names: list[str]) -> str:
  fig = plots.figure(8.0, 4.0)
  for k, (metric, label) in enumerate((("test_mae", "test MAE"), ("test_rmse", "test RMSE"))):
    ax = fig.add_subplot(1, 2, k + 1)
    plots.error_bars(ax, range(len(names)), [summaries[n][metric] for n in names], ls="none", color="tab:blue")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n.replace(", ", "\n") for n in names], fontsize=7)
    ax.set_ylabel(f"{label} (lower is better)")
    ax.set_yscale("log")
    ax.set_title(f"Regression: {label} on clean test targets", fontsize=9)
    ax.grid(alpha=0.3, which="both")
  return plots.save(fig, out, "regression_errors.png")


def _classification(out: str, summaries: dict, names: list[str]) -> str:
  fig = plots.figure(8.0, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  colors = ["tab:green" if n.startswith("10 classes") else "tab:purple" for n in names]
  for i, (n, c) in enumerate(zip(names, colors, strict=True)):
    plots.error_bars(ax, [i], [summaries[n]["accuracy"]], ls="none", color=c)
    values = summaries[n]["accuracy"]["values"]
    ax.scatter([i + 0.12] * len(values), values, s=10, color=c, alpha=0.5)  # the seeds themselves, beside the mean
  ax.set_xticks(range(len(names)))
  ax.set_xticklabels([n.replace(": ", ":\n") for n in names], fontsize=7)
  ax.set_ylabel("test accuracy")
  ax.set_title(
    "Classification: test accuracy per loss, mean with 95% CI and the seeds (green: 10 classes, purple: odd/even)",
    fontsize=9,
  )
  ax.grid(alpha=0.3)
  return plots.save(fig, out, "classification_accuracy.png")


def draw(out: str, summaries: dict, task: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report (a panel only when its arms ran)."""
  reg = [n for n in summaries if task[n] == "regression"]
  cls = [n for n in summaries if task[n] != "regression"]
  files = []
  if reg:
    files.append(("Regression test errors per loss, clean and with 10% outliers", _regression(out, summaries, reg)))
  if cls:
    files.append(("Classification test accuracy per loss", _classification(out, summaries, cls)))
  return files
