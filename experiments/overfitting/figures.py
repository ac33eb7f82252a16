"""The study's plots: learning curves (train vs test accuracy per step) for a few arms, the test accuracy and the
train/test gap per arm, and every arm's paired difference from no remedy.

Why these: overfitting is a gap that opens while training goes on, so the curves show when and how wide it opens
and what a remedy does to each side of it (raise test, or only lower train); the per-arm panels put the two
numbers the question asks for side by side; the paired panel is what the verdicts are read from.
"""

from __future__ import annotations

from experiments.common import plots

CURVE_ARMS = ("none", "dropout + weight decay", "augmentation", "more data")


def _curves(out: str, curves: dict) -> str:
  arms = [a for a in CURVE_ARMS if curves.get(a, {}).get("train")]
  fig = plots.figure(3.2 * max(1, len(arms)), 3.6)
  for k, arm in enumerate(arms):
    c = curves[arm]
    ax = fig.add_subplot(1, len(arms), k + 1)
    ax.plot(c["step"], c["train"], color="tab:blue", label="train (its own images)")
    ax.plot(c["step"], c["test"], color="tab:orange", label="test (360 images)")
    ax.fill_between(c["step"], c["test"], c["train"], color="tab:red", alpha=0.12, label="gap")
    ax.set_title(arm, fontsize=9)
    ax.set_xlabel("optimizer step")
    ax.set_ylim(0.5, 1.01)
    ax.grid(alpha=0.3)
    if k == 0:
      ax.set_ylabel("accuracy (eval mode, mean over seeds)")
      ax.legend(fontsize=7, loc="lower right")
  return plots.save(fig, out, "learning_curves.png")


def _per_arm(out: str, summaries: dict, none: str) -> str:
  arms = list(summaries)
  fig = plots.figure(10.0, 0.45 * len(arms) + 1.6)
  for k, (metric, label) in enumerate((("accuracy", "test accuracy"), ("gap", "train - test accuracy (gap)"))):
    ax = fig.add_subplot(1, 2, k + 1)
    ys = list(range(len(arms)))[::-1]
    for y, arm in zip(ys, arms, strict=True):
      s = summaries[arm][metric]
      if s["mean"] is None:
        continue
      ci = s["ci95"] or [s["mean"], s["mean"]]
      ax.errorbar(s["mean"], y, xerr=[[s["mean"] - ci[0]], [ci[1] - s["mean"]]], fmt="o", capsize=3, color="tab:blue")
    base = summaries[none][metric]["mean"]
    if base is not None:
      ax.axvline(base, color="grey", ls="--", lw=1, label=f"{none}: {base:.3f}")
      ax.legend(fontsize=7)
    ax.set_yticks(ys)
    ax.set_yticklabels(arms if k == 0 else [""] * len(arms), fontsize=8)
    ax.set_xlabel(label + " (mean, 95% CI)")
    ax.grid(alpha=0.3)
  return plots.save(fig, out, "accuracy_and_gap.png")


def _paired(out: str, versus: list[dict]) -> str:
  arms = list(dict.fromkeys(d["a"] for d in versus))
  fig = plots.figure(10.0, 0.45 * len(arms) + 1.6)
  for k, (metric, label) in enumerate((("accuracy", "test accuracy"), ("gap", "gap"))):
    ax = fig.add_subplot(1, 2, k + 1)
    ys = list(range(len(arms)))[::-1]
    for y, arm in zip(ys, arms, strict=True):
      d = next((d for d in versus if d["a"] == arm and d["comparison"] == metric), None)
      if d is None or d["mean"] is None:
        continue
      ci = d["ci95"] or [d["mean"], d["mean"]]
      color = "grey" if d["verdict"] == "tie" else ("tab:green" if d["verdict"].startswith(arm) else "tab:red")
      ax.errorbar(d["mean"], y, xerr=[[d["mean"] - ci[0]], [ci[1] - d["mean"]]], fmt="o", capsize=3, color=color)
    ax.axvline(0, color="black", lw=1)
    ax.set_yticks(ys)
    ax.set_yticklabels(arms if k == 0 else [""] * len(arms), fontsize=8)
    ax.set_xlabel(f"{label}: arm - none, paired (95% CI)")
    ax.set_title("green: better than none, red: worse, grey: tie", fontsize=8)
    ax.grid(alpha=0.3)
  return plots.save(fig, out, "paired_differences.png")


def draw(out: str, summaries: dict, curves: dict, versus: list[dict], none: str) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Learning curves: train vs test accuracy per step", _curves(out, curves)),
    ("Test accuracy and train/test gap per arm", _per_arm(out, summaries, none)),
    ("Paired differences from no remedy", _paired(out, versus)),
  ]
