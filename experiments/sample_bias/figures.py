"""The study's plots: test accuracy per arm on the three test distributions, the audit's Cramér's V beside the
accuracy each arm loses when the light stops following the label, and where the measured arms look.

Why these: the tank story's claim has three parts (the model scores well on its own kind of photos and fails when
the light changes; the data could have told us first; a training set without the correlation fixes it); each
panel puts one part's numbers for every arm side by side, with 95% CI bars over seeds.
"""

from __future__ import annotations

from experiments.common import plots

COLORS = {"in_distribution": "tab:green", "decorrelated": "tab:blue", "reversed": "tab:red"}


def _label(arm: str) -> str:
  return arm.replace(" (", "\n(").replace(" reweighted", "\nreweighted")


def _accuracy(out: str, summaries: dict, tests, names: dict) -> str:
  fig = plots.figure(8.0, 4.4)
  ax = fig.add_subplot(1, 1, 1)
  arms = list(summaries)
  for k, t in enumerate(tests):
    xs = [i + (k - 1) * 0.2 for i in range(len(arms))]
    plots.error_bars(ax, xs, [summaries[a][t] for a in arms], color=COLORS[t], ls="none", label=names[t])
  ax.set_xticks(range(len(arms)))
  ax.set_xticklabels([_label(a) for a in arms], fontsize=8)
  ax.set_xlabel("training set: share of each class photographed in its 'own' light (tank by day)")
  ax.set_ylabel("test accuracy")
  ax.set_ylim(-0.05, 1.05)
  ax.axhline(0.5, color="grey", lw=0.8, ls=":")
  ax.set_title("Test accuracy by test distribution (mean, 95% CI over seeds; dotted: chance)")
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8, loc="lower left")
  return plots.save(fig, out, "accuracy_by_test.png")


def _audit(out: str, summaries: dict, audits: dict) -> str:
  fig = plots.figure(8.0, 3.8)
  left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  arms = list(summaries)
  v = [audits[a]["splits"]["train"]["cramers_v"] or 0.0 for a in arms]
  left.bar(range(len(arms)), v, color=["tab:red" if audits[a]["flagged"] else "tab:grey" for a in arms])
  left.axhline(0.3, color="black", lw=0.8, ls="--", label="audit threshold 0.3")
  left.set_xticks(range(len(arms)))
  left.set_xticklabels([a.split(" (")[0].replace(" reweighted", "\nreweighted") for a in arms], fontsize=7)
  left.set_ylabel("Cramér's V, daylight x label (train)")
  left.set_ylim(0, 1.05)
  left.set_title("jaxflow audit, before training (red: flagged)", fontsize=9)
  left.legend(fontsize=7)
  plots.error_bars(right, v, [summaries[a]["light_gap"] for a in arms], color="tab:purple", ls="none")
  for x, a in zip(v, arms, strict=True):
    if summaries[a]["light_gap"]["mean"] is not None:
      right.annotate(
        a.split(" (")[0], (x, summaries[a]["light_gap"]["mean"]), fontsize=7, xytext=(4, 4), textcoords="offset points"
      )
  right.set_xlabel("Cramér's V (train), as audited")
  right.set_ylabel("accuracy lost when the light is reversed")
  right.set_title("Audited association vs the trained model's light gap", fontsize=9)
  right.grid(alpha=0.3)
  return plots.save(fig, out, "audit_vs_gap.png")


def _saliency(out: str, summaries: dict) -> str | None:
  arms = [a for a in summaries if "background_share" in summaries[a]]
  if not arms:
    return None
  fig = plots.figure(8.0, 3.6)
  for k, (key, label) in enumerate(
    (("background_share", "share of |gradient| on background"), ("light_alignment", "|cos(gradient, day light)|"))
  ):
    ax = fig.add_subplot(1, 2, k + 1)
    plots.error_bars(ax, range(len(arms)), [summaries[a][key] for a in arms], color="tab:orange", ls="none")
    if key == "background_share":
      ax.axhline(0.49, color="grey", lw=0.8, ls=":", label="uniform map (49% of pixels)")
      ax.legend(fontsize=7)
    ax.set_xticks(range(len(arms)))
    ax.set_xticklabels([_label(a) for a in arms], fontsize=7)
    ax.set_xlim(-0.5, len(arms) - 0.5)
    ax.set_ylabel(label)
    ax.grid(alpha=0.3)
  fig.suptitle("Where the model looks: vanilla gradient of its decision (mean, 95% CI over seeds)", fontsize=9)
  return plots.save(fig, out, "saliency_measure.png")


def draw(out: str, summaries: dict, audits: dict, tests, names: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  shown = [
    ("Test accuracy per arm on the three test distributions", _accuracy(out, summaries, tests, names)),
    ("The audit's Cramér's V per arm, and the light gap it foretells", _audit(out, summaries, audits)),
  ]
  measured = _saliency(out, summaries)
  if measured:
    shown.append(("Where the measured arms look", measured))
  return shown
