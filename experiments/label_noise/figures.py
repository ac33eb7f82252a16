"""Test accuracy against the symmetric noise rate (final epoch and best epoch, mean and 95% CI over seeds, the
pairflip point beside it), and the labelling budget spent two ways: every arm's accuracy with its interval."""

from __future__ import annotations

from experiments.common import plots


def draw(out: str, findings: dict, curve: dict, *, names: dict) -> list[tuple[str, str]]:
  more = names["more"]
  key = {name: (more if name == f"symmetric {names['rate']:g}" else name) for name in curve}
  symmetric = [n for n in curve if not n.startswith("pairflip")]
  rates = [0.0 if n == "no noise" else float(n.split()[1]) for n in symmetric]
  fig = plots.figure(11, 4.2)
  ax = fig.add_subplot(1, 2, 1)
  plots.error_bars(ax, rates, [findings["accuracy"][key[n]] for n in symmetric], color="C0", label="symmetric, final")
  best = [findings["best_accuracy"][n] for n in symmetric]
  plots.error_bars(ax, [r + 0.005 for r in rates], best, color="C0", ls="--", alpha=0.6, label="symmetric, best epoch")
  for n in curve:
    if n.startswith("pairflip"):
      rate = float(n.split()[1]) + 0.01
      plots.error_bars(ax, [rate], [findings["accuracy"][n]], color="C3", label=f"{n}, final")
  ax.set(xlabel="share of training labels flipped", ylabel="test accuracy (clean test labels)")
  ax.set_title("The cost of wrong labels: mean and 95% CI over seeds", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)

  ax = fig.add_subplot(1, 2, 2)
  order = [names[k] for k in ("half_clean", "cleaned", "twice", "once", "more") if names[k] in findings["accuracy"]]
  for y, name in enumerate(order):
    s = findings["accuracy"][name]
    if s["mean"] is None:
      continue
    low, high = s["ci95"] or (s["mean"], s["mean"])
    color = "C2" if name == names["cleaned"] else ("C1" if name == more else "0.5")
    ax.errorbar([s["mean"]], [y], xerr=[[s["mean"] - low], [high - s["mean"]]], fmt="o", color=color, capsize=3)
  ax.set_yticks(range(len(order)), order, fontsize=8)
  ax.set(xlabel="test accuracy")
  ax.set_title(f"Symmetric noise {names['rate']:g}: more data or clean data", fontsize=9)
  ax.grid(alpha=0.3, axis="x")
  return [("Accuracy against noise; more data against clean data", plots.save(fig, out, "label_noise.png"))]
