"""The report's tables: Wald's hangar, the effects per section, the models on the unfiltered sample, the audit.

Why these five: the hangar is the naive evidence (holes on the planes that came back); the effects are what a
model concludes from each record; the evaluation and the audit are the two ways the study shows the filter.
"""

from __future__ import annotations

from collections import Counter

from experiments.common import report
from experiments.survivorship_bias import data
from experiments.survivorship_bias.measure import rate_gap


def _rate(v) -> str:
  return "-" if v is None else f"{v:.2f}"


def hangar(wald: dict) -> report.Table:
  rows = [
    [
      s,
      f"{w['area']:.1f}",
      report.cell(w["all"], 2),
      report.cell(w["returned"], 2),
      report.cell(w["ratio"], 2),
      report.cell(w["returned_per_area"], 2),
    ]
    for s, w in wald.items()
  ]
  header = [
    "section",
    "exposed area (hits per sortie)",
    "holes per plane, all sorties",
    "holes per plane, returned",
    "returned / all",
    "holes per unit area, returned",
  ]
  note = (
    "Mean [95% t-CI] over seeds (one pool of sorties per seed). The analysts' reading armours the section with the "
    "most holes per unit area on the returning planes; Wald's, the one whose holes are missing (lowest returned / all)."
  )
  return report.Table(
    "Wald's hangar: holes per section on the planes that returned and on all sorties", header, rows, note
  )


def effects(summaries: dict) -> report.Table:
  arms = list(summaries)
  rows = []
  for k, s in enumerate(data.SECTIONS):
    implied = data.recorded_engine_effect() if k == 0 else data.LETHALITY[k]
    cells = [report.cell(summaries[a][f"effect/{s}"], 2) for a in arms]
    cells += [report.cell(summaries[a][f"linear/{s}"], 2) for a in arms]
    rows.append([s, f"{data.LETHALITY[k]:+.2f}", f"{implied:+.2f}", *cells])
  header = ["section", "truth", "a perfect model of the recorded data", *(f"{a}: MLP" for a in arms)]
  header += [f"{a}: logistic regression" for a in arms]
  note = (
    "Log odds of loss that one more hit in the section adds, mean over the unfiltered held-out planes, of each seed's "
    "exported model; mean [95% t-CI] over seeds. 'A perfect model of the recorded data': the truth plus the filter's "
    f"log selection odds (engine: {data.LETHALITY[0]:.1f} - {data.ENGINE_DROP:.1f}); an outcome-only filter implies "
    "the truth. 'Logistic regression': scikit-learn's unpenalized fit on the same training split, its coefficient "
    "per hit (a reference statistic, not a jaxflow arm)."
  )
  return report.Table("The effect of one more hit, as each arm's model learned it", header, rows, note)


def _mode(values: list) -> str:
  kept = [v for v in values if v]
  if not kept:
    return "-"
  counts = Counter(kept).most_common()
  return ", ".join(f"{v} ({n}/{len(values)})" for v, n in counts)


def evaluation(summaries: dict, test_size: int) -> report.Table:
  rows = []
  for name, s in summaries.items():
    predicted, observed = s["predicted_loss_rate"]["mean"], s["observed_loss_rate"]["mean"]
    rows.append(
      [
        name,
        report.cell(s["accuracy"]),
        report.cell(s["balanced_accuracy"]),
        report.cell(s["loss"]),
        f"{_rate(predicted)} ({_rate(observed)})",
        *(report.cell(s[f"engine_{b}/ece"]) for b in data.BUCKETS),
        report.cell(s["engine_rank"], 1),
        _mode(s["armour_first"]),
      ]
    )
  header = ["arm", "accuracy", "balanced accuracy", "BCE loss", "predicted loss rate (observed)"]
  header += [f"ECE, {b} engine hits" for b in data.BUCKETS] + ["engine's rank (1 = deadliest)", "armour first (seeds)"]
  note = (
    f"On each seed's unfiltered held-out sample ({test_size} sorties; accuracy resolution 1/{test_size}); mean [95% "
    "t-CI] over seeds. ECE per engine-hit group: jaxflow's per-group metrics (`data.group_feature=hits_engine`). "
    "'Armour first': the section with the largest effect, per seed."
  )
  return report.Table("Each arm's model on the unfiltered sample", header, rows, note)


def _pair(facts: dict, key: str, digits: int = 3) -> str:
  return f"{facts[key]['train']:.{digits}f} / {facts[key]['test']:.{digits}f}"


def audit(audits: dict) -> report.Table:
  rows = []
  for name, a in audits.items():
    engine = a["sections"]["engine"]
    rows.append(
      [
        name,
        _pair(a, "lost_share"),
        f"{a['label_shift']['total_variation']:.3f} ({'flagged' if a['label_shift']['flagged'] else 'not flagged'})",
        f"{a['input_shift']['ks_statistic']:.3f} ({'flagged' if a['input_shift']['flagged'] else 'not flagged'})",
        f"{a['most_shifted']['section']} ({a['most_shifted']['smd']:+.2f})",
        f"{engine['train']['cramers_v']:.2f} / {engine['test']['cramers_v']:.2f}",
        " / ".join(_rate(v) for v in engine["train"]["loss_rate"]),
        " / ".join(_rate(v) for v in engine["test"]["loss_rate"]),
      ]
    )
  header = [
    "training split",
    "lost share: train / unfiltered",
    "label shift (TVD)",
    "input shift (KS D)",
    "most shifted section (SMD)",
    "engine hits ~ loss, Cramér's V: train / unfiltered",
    "loss rate at 0 / 1 / 2+ engine hits: train",
    "... unfiltered",
  ]
  note = (
    "`jaxflow.audit` of seed 0's training split against seed 0's unfiltered held-out sample (its eval split), with "
    "the hits per section as metadata attributes (0, 1, 2+). SMD: the audit's standardized mean difference "
    "(unfiltered - train) of the feature."
  )
  return report.Table("What the audit reports (seed 0)", header, rows, note)


def audit_sections(audits: dict) -> report.Table:
  rows = []
  for name, a in audits.items():
    for s, entry in a["sections"].items():
      gaps = [rate_gap(a, s, split) for split in ("train", "test")]
      rows.append(
        [
          name,
          s,
          f"{entry['train']['cramers_v']:.2f}",
          f"{entry['test']['cramers_v']:.2f}",
          " / ".join("-" if g is None else f"{g:+.3f}" for g in gaps),
          f"{a['smd'].get(s, 0.0):+.2f}",
        ]
      )
  header = ["training split", "section", "V: train", "V: unfiltered", "loss rate, hit - not hit: train / unfiltered"]
  header += ["SMD"]
  note = "Loss rate of the planes with one or more hits in the section minus that of the planes with none."
  return report.Table("The audit's association of each section's hits with loss (seed 0)", header, rows, note)
