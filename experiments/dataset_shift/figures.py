"""The study's plots: accuracy against each camera's severity per arm, the audit's statistic against the measured
drop, and the excluded style's accuracy per arm.

Why these: the question is how much each shift costs and what the remedies win back (one panel per camera kind,
severity on x, the remedies beside the baseline), whether the audit's number would have warned of it (drop on y,
the audit's KS statistic and |Cohen's d| on x, the flag marked), and whether an excluded group is served worse
(the style's and the rest's accuracy side by side per arm).
"""

from __future__ import annotations

from experiments.common import plots
from experiments.dataset_shift import data

KIND_COLORS = {"blur": "tab:blue", "contrast": "tab:orange", "offset": "tab:green", "resolution": "tab:red"}
STYLE_ARMS = ("baseline", "style excluded", "random removal", "excluded + geometric aug", "excluded + 10% of style")


def _severity(out: str, summaries: dict) -> str:
  """Accuracy against severity (0 = clean), one panel per camera kind, one line per arm that saw every style."""
  fig = plots.figure(11, 7)
  arms = [a for a in summaries if a not in STYLE_ARMS[1:]]
  for k, kind in enumerate(data.KINDS):
    ax = fig.add_subplot(2, 2, k + 1)
    shifts = [s for s in data.tested(summaries[arms[0]]) if s.kind == kind]
    for i, arm in enumerate(arms):
      xs = [j + (i - (len(arms) - 1) / 2) * 0.06 for j in range(len(shifts) + 1)]
      points = [summaries[arm]["clean"], *(summaries[arm][s.name] for s in shifts)]
      plots.error_bars(ax, xs, points, label=arm, color=f"C{i}")
    ax.set_xticks(range(len(shifts) + 1), ["clean", *(f"{s.level:g}" for s in shifts)])
    ax.set(xlabel=f"{kind} severity", ylabel="test accuracy")
    ax.set_title(f"{kind}: mean and 95% CI over seeds", fontsize=9)
    ax.grid(alpha=0.3)
    if k == 0:
      ax.legend(fontsize=7)
  return plots.save(fig, out, "accuracy_by_camera.png")


def _audit(out: str, summaries: dict, audits: dict, baseline: str) -> str:
  """The measured drop against the audit's KS statistic and |Cohen's d|; filled markers: flagged by the audit."""
  fig = plots.figure(11, 4.2)
  base = summaries[baseline]
  names = data.tested(audits)
  for p, (key, label) in enumerate((("ks_statistic", "audit KS statistic"), ("cohens_d", "audit |Cohen's d|"))):
    ax = fig.add_subplot(1, 2, p + 1)
    for s in names:
      a = audits[s.name]
      x, y = abs(a[key]), base["clean"]["mean"] - base[s.name]["mean"]
      face = KIND_COLORS[s.kind] if a["flagged"] else "none"
      ax.scatter([x], [y], s=40, edgecolors=KIND_COLORS[s.kind], facecolors=face)
      ax.annotate(f"{s.level:g}", (x, y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    for kind, color in KIND_COLORS.items():
      ax.scatter([], [], edgecolors=color, facecolors="none", label=kind)
    ax.set(xlabel=label, ylabel=f"accuracy drop ({baseline}, clean - camera)")
    ax.set_title(f"The {label} against the real drop (filled: flagged)", fontsize=9)
    ax.grid(alpha=0.3)
    if p == 0:
      ax.legend(fontsize=7)
  return plots.save(fig, out, "audit_vs_drop.png")


def _style(out: str, summaries: dict) -> str:
  """The style's and the rest's clean test accuracy per exclusion arm."""
  fig = plots.figure(8, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  arms = [a for a in STYLE_ARMS if a in summaries]
  for k, (group, color) in enumerate((("style", "tab:orange"), ("rest", "tab:blue"))):
    xs = [i + (k - 0.5) * 0.2 for i in range(len(arms))]
    label = "the excluded style" if group == "style" else "every other image"
    plots.error_bars(ax, xs, [summaries[a][group] for a in arms], color=color, ls="none", label=label)
  ax.set_xticks(range(len(arms)), [a.replace(" + ", "\n+ ") for a in arms], fontsize=8)
  ax.set_ylabel("clean test accuracy")
  ax.set_title("Exclusion: the left-out style against the rest (mean, 95% CI over seeds)", fontsize=9)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  return plots.save(fig, out, "exclusion.png")


def draw(out: str, summaries: dict, audits: dict, baseline: str) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Accuracy per camera and severity, per arm", _severity(out, summaries)),
    ("The audit's shift statistic against the measured drop", _audit(out, summaries, audits, baseline)),
    ("The excluded style's accuracy per arm", _style(out, summaries)),
  ]
