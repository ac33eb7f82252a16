"""The study's two pictures: each framing's answers to each question (mean and 95% CI over seeds), and the
regression model's predicted values against the true digit (why rounding them names few digits)."""

from __future__ import annotations

import numpy as np

from experiments.common import plots, stats


def draw(
  out: str, results: dict, predictions: dict, labels: np.ndarray, *, names: tuple[str, str, str]
) -> list[tuple[str, str]]:
  multiclass, binary, regression = names
  fig = plots.figure(10, 4)
  accuracy, error = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  bars = (  # (question position, framing, metric)
    (0, multiclass, "accuracy"),
    (0, regression, "rounded_accuracy"),
    (1, multiclass, "parity_accuracy"),
    (1, binary, "accuracy"),
    (1, regression, "parity_accuracy"),
  )
  colors = {multiclass: "C0", binary: "C1", regression: "C2"}
  offsets = {multiclass: -0.25, binary: 0.0, regression: 0.25}
  seen = set()
  for position, framing, metric in bars:
    s = stats.mean_ci(results[framing].values(metric))
    label = None if framing in seen else framing
    seen.add(framing)
    plots.error_bars(accuracy, [position + offsets[framing]], [s], color=colors[framing], ls="none", label=label)
  accuracy.set_xticks([0, 1], ["which digit", "odd or even"])
  accuracy.set(ylabel="test accuracy (mean, 95% CI)", title="Each framing asked each question")
  accuracy.legend(fontsize=8)
  for i, (framing, metric) in enumerate(((multiclass, "value_mae"), (regression, "mae"))):
    s = stats.mean_ci(results[framing].values(metric))
    plots.error_bars(error, [i], [s], color=colors[framing], ls="none")
  error.set_xticks([0, 1], ["multiclass\n(predicted digit)", "regression\n(predicted value)"])
  error.set(ylabel="mean |predicted - true digit|", title="How far off the digit's value is")
  files = [("Accuracy and value error per framing", plots.save(fig, out, "framings.png"))]

  fig = plots.figure(6, 4.2)
  ax = fig.add_subplot()
  value = predictions.get(regression)
  if value is not None:
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, labels.size)
    ax.scatter(labels + jitter, value, s=6, alpha=0.5, color="C2")
    ax.plot([-0.5, 9.5], [-0.5, 9.5], color="0.5", lw=1, ls="--")
    for d in range(10):
      ax.axhspan(d - 0.5, d + 0.5, color="0.93" if d % 2 else "white", zorder=0)
  ax.set(xlabel="true digit", ylabel="predicted value", title="Regression, seed 0: a band around the diagonal")
  files.append(("Regression predictions against the true digit", plots.save(fig, out, "regression_predictions.png")))
  return files
