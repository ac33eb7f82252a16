"""Target accuracy against the target-set size per arm (mean and 95% CI over seeds), and each transfer arm's paired
difference from scratch per size: where keeping the early layers pays and where it costs."""

from __future__ import annotations

from experiments.common import plots


def draw(out: str, findings: dict, scratch: str) -> list[tuple[str, str]]:
  sizes = [int(n) for n in findings]
  names = list(next(iter(findings.values()))["accuracy"])
  fig = plots.figure(11, 4.2)
  ax = fig.add_subplot(1, 2, 1)
  for i, name in enumerate(names):
    shift = [n * (1 + 0.04 * (i - len(names) / 2)) for n in sizes]
    plots.error_bars(ax, shift, [findings[str(n)]["accuracy"][name] for n in sizes], color=f"C{i}", label=name)
  ax.set(xscale="log", xlabel="training images of 5-9 (n/5 per class, drawn per seed)", ylabel="test accuracy on 5-9")
  ax.set_xticks(sizes, [str(n) for n in sizes])
  ax.minorticks_off()
  ax.set_title("Mean and 95% CI over seeds", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)

  ax = fig.add_subplot(1, 2, 2)
  others = [name for name in names if name != scratch]
  width = 0.8 / max(len(others), 1)
  for i, name in enumerate(others):
    xs, ys, errs = [], [], [[], []]
    for j, n in enumerate(sizes):
      d = next(d for d in findings[str(n)]["versus_scratch"] if d["a"] == name)
      if d["mean"] is None:
        continue
      low, high = d["ci95"] or (d["mean"], d["mean"])
      xs.append(j + (i - (len(others) - 1) / 2) * width)
      ys.append(d["mean"])
      errs[0].append(d["mean"] - low)
      errs[1].append(high - d["mean"])
    ax.bar(xs, ys, width, yerr=errs, capsize=2, color=f"C{names.index(name)}", label=name)
  ax.axhline(0, color="k", lw=0.8)
  ax.set_xticks(range(len(sizes)), [f"n={n}" for n in sizes])
  ax.set(ylabel="accuracy - scratch (paired)")
  ax.set_title("Each transfer arm against scratch, 95% CI", fontsize=9)
  ax.grid(alpha=0.3, axis="y")
  ax.legend(fontsize=8)
  return [("Transfer against scratch by target-set size", plots.save(fig, out, "transfer.png"))]
