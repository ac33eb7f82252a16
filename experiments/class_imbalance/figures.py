"""The rare class's recall and the balanced accuracy against the ratio, one line per remedy (mean and 95% CI over
seeds, the unskewed reference as a band), and the recall of every class at the largest ratio: where a remedy's
gain for the rare class comes from."""

from __future__ import annotations

from experiments.common import plots, stats


def _ratio(name: str) -> float:
  return float(name.split(":")[0])


def draw(out: str, findings: dict, reference, rare: int) -> list[tuple[str, str]]:
  ratios = list(findings)
  xs = [_ratio(r) for r in ratios]
  remedies = list(findings[ratios[0]]["remedies"])
  fig = plots.figure(11, 4.2)
  panels = ((fig.add_subplot(1, 2, 1), "rare_recall", f"recall of the rare class ({rare})"),)
  panels += ((fig.add_subplot(1, 2, 2), "balanced_accuracy", "balanced accuracy"),)
  for ax, metric, label in panels:
    for i, remedy in enumerate(remedies):
      shift = [x * (1 + 0.04 * (i - len(remedies) / 2)) for x in xs]  # side by side, not on top of each other
      plots.error_bars(
        ax, shift, [findings[r]["remedies"][remedy][metric] for r in ratios], color=f"C{i}", label=remedy
      )
    if reference is not None:
      s = stats.mean_ci(reference.values(metric))
      if s["mean"] is not None:
        low, high = s["ci95"] or (s["mean"], s["mean"])
        ax.axhspan(low, high, color="0.85", zorder=0, label="no skew (95% CI)")
    ax.set(xscale="log", xlabel="imbalance ratio (common : rare training images)", ylabel=f"test {label}")
    ax.set_xticks(xs, ratios)
    ax.minorticks_off()
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  panels[0][0].set_title("Mean and 95% CI over seeds", fontsize=9)
  files = [("Rare-class recall and balanced accuracy against the ratio", plots.save(fig, out, "recall_vs_ratio.png"))]

  fig = plots.figure(8, 4.0)
  ax = fig.add_subplot()
  last = ratios[-1]
  width = 0.8 / len(remedies)
  for i, remedy in enumerate(remedies):
    recall = findings[last]["remedies"][remedy]["recall_per_class"]
    if recall:
      ax.bar([c + (i - (len(remedies) - 1) / 2) * width for c in range(10)], recall, width, color=f"C{i}", label=remedy)
  ax.set_xticks(range(10), [f"{c}{' (rare)' if c == rare else ''}" for c in range(10)], fontsize=8)
  ax.set(xlabel="class", ylabel="test recall (mean over seeds)", ylim=(0, 1.25))
  ax.set_title(f"Recall of every class at {last}", fontsize=9)
  ax.legend(fontsize=8, ncol=len(remedies), loc="upper center")
  ax.grid(alpha=0.3, axis="y")
  files.append((f"Per-class recall at {last}", plots.save(fig, out, "recall_per_class.png")))
  return files
