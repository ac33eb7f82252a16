"""The study's plots: Wald's hangar, the effect per section per arm against the truth, and the two reveals.

Why these: the hangar is the evidence the analysts had (holes on returning planes) beside what all sorties took;
the effects show the inversion section by section against the known truth; the reveal puts side by side what
the audit shows of the data (loss rate by engine hits, record vs unfiltered sample) and what an unfiltered sample
shows of a model (its predicted loss rate by engine hits against the observed one).
"""

from __future__ import annotations

import numpy as np

from experiments.common import plots
from experiments.survivorship_bias import data

COLORS = {"population": "tab:blue", "recorded": "tab:red", "outcome-only": "tab:green"}


def _hangar(out: str, wald: dict) -> str:
  fig = plots.figure(7.5, 4.2)
  ax = fig.add_subplot(1, 1, 1)
  sections = list(wald)
  x = np.arange(len(sections))
  for k, (key, label, color) in enumerate((("all", "all sorties", "0.6"), ("returned", "returned planes", "tab:red"))):
    means = [wald[s][key]["mean"] / wald[s]["area"] for s in sections]
    ax.bar(x + (k - 0.5) * 0.38, means, 0.38, label=label, color=color)
  for i, s in enumerate(sections):
    ax.text(
      i, wald[s]["all"]["mean"] / wald[s]["area"] + 0.03, f"{wald[s]['ratio']['mean']:.2f}", ha="center", fontsize=8
    )
  ax.set_xticks(x)
  ax.set_xticklabels(sections)
  ax.set_ylabel("holes per unit of exposed area")
  ax.set_ylim(0, 1.25)
  ax.set_title("Holes per unit area: all sorties vs the planes that returned\n(number: returned / all)", fontsize=10)
  ax.legend(loc="upper right", fontsize=8)
  ax.grid(alpha=0.3, axis="y")
  return plots.save(fig, out, "hangar.png")


def _effects(out: str, summaries: dict) -> str:
  fig = plots.figure(7.5, 4.4)
  ax = fig.add_subplot(1, 1, 1)
  x = np.arange(len(data.SECTIONS))
  arms = list(summaries)
  for k, a in enumerate(arms):
    xs = x + (k - (len(arms) - 1) / 2) * 0.18
    rows = [summaries[a][f"effect/{s}"] for s in data.SECTIONS]
    plots.error_bars(ax, xs, rows, color=COLORS.get(a), ls="none", label=f"{a}: MLP (mean, 95% CI)")
    linear = [summaries[a][f"linear/{s}"]["mean"] for s in data.SECTIONS]
    ax.scatter(xs + 0.06, linear, marker="o", s=22, facecolors="none", edgecolors=COLORS.get(a), label=f"{a}: logistic")
  ax.scatter(x, data.LETHALITY, marker="_", s=400, color="black", label="truth", zorder=3)
  ax.scatter(
    [0], [data.recorded_engine_effect()], marker="_", s=400, color="tab:red", label="perfect model of the record"
  )
  ax.axhline(0, color="0.5", lw=0.8)
  ax.set_xticks(x)
  ax.set_xticklabels(data.SECTIONS)
  ax.set_ylabel("log odds of loss per extra hit")
  ax.set_title("What each record teaches a model: the effect of one more hit", fontsize=10)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=6, loc="lower right", ncol=2)
  return plots.save(fig, out, "effects.png")


def _audit_panel(ax, audits: dict) -> None:
  x = np.arange(len(data.BUCKETS))
  if not audits:
    return
  first = next(iter(audits.values()))
  ax.plot(x, first["sections"]["engine"]["test"]["loss_rate"], "k-o", label="unfiltered sample")
  for name, a in audits.items():
    ax.plot(x, a["sections"]["engine"]["train"]["loss_rate"], "--o", color=COLORS.get(name), label=f"{name} (train)")
  ax.set_xticks(x)
  ax.set_xticklabels(data.BUCKETS)
  ax.set_xlabel("engine hits")
  ax.set_ylabel("share of planes lost")
  ax.set_title("The audit's tables (seed 0)", fontsize=10)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)


def _model_panel(ax, summaries: dict) -> None:
  x = np.arange(len(data.BUCKETS))
  first = next(iter(summaries.values()))
  observed = [first[f"engine_{b}/observed"]["mean"] for b in data.BUCKETS]
  ax.plot(x, observed, "k-o", label="observed")
  for name, s in summaries.items():
    plots.error_bars(ax, x, [s[f"engine_{b}/predicted"] for b in data.BUCKETS], color=COLORS.get(name), label=name)
  ax.set_xticks(x)
  ax.set_xticklabels(data.BUCKETS)
  ax.set_xlabel("engine hits")
  ax.set_ylabel("loss rate")
  ax.set_title("Models on the unfiltered sample:\npredicted vs observed (mean, 95% CI)", fontsize=10)
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)


def _reveal(out: str, summaries: dict, audits: dict) -> str:
  fig = plots.figure(9.0, 4.2)
  _audit_panel(fig.add_subplot(1, 2, 1), audits)
  _model_panel(fig.add_subplot(1, 2, 2), summaries)
  for ax in fig.axes:
    ax.set_ylim(0, 1)
  return plots.save(fig, out, "reveal.png")


def draw(out: str, summaries: dict, wald: dict, audits: dict) -> list[tuple[str, str]]:
  """Writes the PNGs into `out`; returns [(title, file)] for the report."""
  return [
    ("Wald's hangar: holes per unit area on all sorties and on the returning planes", _hangar(out, wald)),
    ("The effect of one more hit per section, per arm, against the truth", _effects(out, summaries)),
    (
      "How it shows: loss rate by engine hits in the audit's tables, and the models on the unfiltered sample",
      _reveal(out, summaries, audits),
    ),
  ]
