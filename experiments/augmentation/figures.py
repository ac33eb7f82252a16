"""Test accuracy against the training-set size per arm (mean and 95% CI over seeds), and each op's gain over no
augmentation in points and as a share of the errors left, per size, with the claim's 10 drawn in."""

from __future__ import annotations

from experiments.common import plots


def draw(out: str, findings: dict, off: str, combined: str) -> list[tuple[str, str]]:
  sizes = [int(n) for n in findings]
  names = list(dict.fromkeys(name for f in findings.values() for name in f["accuracy"]))
  fig = plots.figure(11, 4.2)
  ax = fig.add_subplot(1, 2, 1)
  for i, name in enumerate(names):
    shift = [n * (1 + 0.03 * (i - len(names) / 2)) for n in sizes]
    style = {"lw": 2} if name in (off, combined) else {"lw": 0.8, "alpha": 0.7}
    kept = [(x, n) for x, n in zip(shift, sizes) if name in findings[str(n)]["accuracy"]]
    summaries = [findings[str(n)]["accuracy"][name] for _, n in kept]
    plots.error_bars(ax, [x for x, _ in kept], summaries, color=f"C{i}", label=name, **style)
  ax.set(xscale="log", xlabel="training images (n/10 per class, drawn per seed)", ylabel="test accuracy")
  ax.set_xticks(sizes, [str(n) for n in sizes])
  ax.minorticks_off()
  ax.set_title("Mean and 95% CI over seeds", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)

  ax = fig.add_subplot(1, 2, 2)
  gained = [name for name in names if name != off]
  width = 0.8 / max(len(gained), 1)
  for i, name in enumerate(gained):
    xs, ys, errs = [], [], [[], []]
    for j, n in enumerate(sizes):
      if name not in findings[str(n)]["gains"]:
        continue
      s = findings[str(n)]["gains"][name]["error_share"]
      if s["mean"] is None:
        continue
      low, high = s["ci95"] or (s["mean"], s["mean"])
      xs.append(j + (i - (len(gained) - 1) / 2) * width)
      ys.append(100 * s["mean"])
      errs[0].append(100 * (s["mean"] - low))
      errs[1].append(100 * (high - s["mean"]))
    ax.bar(xs, ys, width, yerr=errs, capsize=2, color=f"C{names.index(name)}", label=name)
  ax.axhline(10, color="k", ls="--", lw=1, label="the claim: 10%")
  ax.axhline(0, color="k", lw=0.6)
  ax.set_xticks(range(len(sizes)), [f"n={n}" for n in sizes])
  ax.set(ylabel="errors removed, % of those left without augmentation")
  ax.set_title("Gain as a share of the remaining error (paired, 95% CI)", fontsize=9)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=7)
  return [("Accuracy per size and the gain as a share of the errors", plots.save(fig, out, "augmentation.png"))]
