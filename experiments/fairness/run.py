"""Fairness, the ethics of bias: an under-represented group (5% of the training images are inverted digits)
against the majority, per group (`data.group_feature`: accuracy, balanced accuracy, ECE, per-class recall),
and the remedies' effect on both groups: oversampling the minority (its rows written k times, which is also
what per-group loss reweighting by k does in expectation) and collecting more minority data (50%).

  python experiments/fairness/run.py            # full run: ~2-3 min on 2 shared CPU cores
  python experiments/fairness/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py on an NPZ built here (experiments/fairness/data.py; `data.name=npz:PATH`,
`data.input_feature=features`, `data.group_feature=group`), trained for about the config's 330 optimizer steps
through `jaxflow.seeds(config, workdir, seeds=5, vary="all")`; seed i of every arm shares its streams (paired).
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.fairness import data, figures, meaning  # noqa: E402

QUESTION = (
  "The ethics of bias: does an under-represented group get worse per-group accuracy, recall and calibration, "
  "and what do the remedies (group reweighting, oversampling) do for both groups?"
)
CONFIG = "configs/digits_mlp.py"
STEPS, BATCH = 330, 128  # the config's own budget: 30 epochs of 11 steps (1437 // 128)
# Quick: the ported studies' tiny MLP and 3 steps on the file's first 180 training rows (the same mix as the
# whole file), so both quick arms, whatever their file's length, compile the same programs.
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")
GROUPS = (data.MAJORITY, data.MINORITY)
METRICS = ("accuracy", "balanced_accuracy", "ece")
LOWER_IS_BETTER = ("ece", "accuracy_gap")
BASELINE = "baseline (5% minority)"


@dataclasses.dataclass(frozen=True)
class Condition:
  name: str
  mix: data.Mix
  remedy: str  # what the arm stands for, in the report's setup


CONDITIONS = (
  Condition("absent (0% minority)", data.Mix(0.0), "reference: the minority never seen in training"),
  Condition(BASELINE, data.Mix(0.05), "the under-represented group: 71 of 1437 training images"),
  Condition("oversampled x12", data.Mix(0.05, copies=12), "the same 71 images written 12 times (~38% of draws)"),
  Condition("collected (50% minority)", data.Mix(0.5), "more minority data: 718 of 1437 training images"),
)
QUICK_CONDITIONS = (BASELINE, "oversampled x12")


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: overall accuracy, each group's metrics and per-class recall, the worst group and the gap."""
  del workdir
  final = summary["final"]["eval"]
  row = {"accuracy": final["accuracy"], "worst_accuracy": final["group/worst_accuracy"]}
  row["accuracy_gap"] = final["group/accuracy_gap"]
  for g in GROUPS:
    for m in (*METRICS, "count"):
      row[f"{g}/{m}"] = final[f"group/{g}/{m}"]
    row[f"{g}/recall"] = summary["final"]["per_group"][g]["recall"]
  return row


def overrides(npz: str, rows: int, quick: bool) -> tuple[str, ...]:
  """The NPZ and its group feature; epochs giving about the config's 330 steps on `rows` training rows."""
  dataset = (f"data.name=npz:{npz}", "data.input_feature=features", f"data.group_feature={data.GROUP}")
  if quick:
    return (*dataset, *QUICK)
  return (*dataset, harness_extras.epochs_override(rows, STEPS, BATCH))


def run_arms(session: study.Session, quick: bool) -> tuple[dict, dict]:
  """Builds each condition's NPZ in the session's workdir and trains it; (results, data counts) by arm."""
  results, counts = {}, {}
  for c in CONDITIONS:
    if quick and c.name not in QUICK_CONDITIONS:
      continue
    slug = "".join(ch if ch.isalnum() else "_" for ch in c.name)
    npz = os.path.join(session.root, "data", f"{slug}.npz")
    counts[c.name] = data.build(npz, c.mix)
    arm = study.Arm(c.name, CONFIG, overrides(npz, counts[c.name]["train_rows"], quick), mode="sequential")
    results[c.name] = session.run(arm, extract)
  return results, counts


def _resolution(result: study.ArmResult, group: str) -> float | None:
  """One test example of the group: the smallest change its accuracy (and, near enough, its ECE) can show."""
  counts = [v for v in result.values(f"{group}/count") if v]
  return stats.accuracy_resolution(int(counts[0])) if counts else None


def summarize(results: dict) -> dict:
  """Per arm: mean and CI of every metric, per group; per-class recall means per group."""
  out = {}
  for name, r in results.items():
    s = {k: stats.mean_ci(r.values(k)) for k in ("accuracy", "worst_accuracy", "accuracy_gap")}
    for g in GROUPS:
      for m in METRICS:
        s[f"{g}/{m}"] = stats.mean_ci(r.values(f"{g}/{m}"))
      recalls = [row[f"{g}/recall"] for row in r.per_seed if row]
      s[f"{g}/recall"] = [sum(x[c] for x in recalls) / len(recalls) for c in range(len(recalls[0]))] if recalls else []
      s[f"{g}/resolution"] = _resolution(r, g)
    out[name] = s
  return out


def differences(results: dict) -> tuple[list[dict], list[dict]]:
  """(each arm against the baseline, seed by seed, per group and metric; majority - minority within each arm)."""
  base = results[BASELINE]
  resolution = _resolution(base, data.MINORITY)
  versus = []
  for name, r in results.items():
    if name == BASELINE:
      continue
    keys = [f"{g}/{m}" for g in GROUPS for m in METRICS] + ["worst_accuracy", "accuracy_gap", "accuracy"]
    for key in keys:
      lower = key.split("/")[-1] in LOWER_IS_BETTER
      versus.append(
        stats.compare(
          key, name, r.values(key), BASELINE, base.values(key), resolution=resolution, higher_is_better=not lower
        )
      )
  gaps = [
    stats.compare(
      f"{name}: {m}",
      data.MAJORITY,
      r.values(f"{data.MAJORITY}/{m}"),
      data.MINORITY,
      r.values(f"{data.MINORITY}/{m}"),
      resolution=_resolution(r, data.MINORITY),
      higher_is_better=m not in LOWER_IS_BETTER,
    )
    for name, r in results.items()
    for m in METRICS
  ]
  return versus, gaps


def group_table(summaries: dict, counts: dict) -> report.Table:
  rows = []
  for name, s in summaries.items():
    c = counts[name]
    for g in GROUPS:
      rows.append(
        [
          name,
          f"{c['train_minority_draw_share']:.1%}"
          if g == data.MINORITY
          else f"{1 - c['train_minority_draw_share']:.1%}",
          g,
          *(report.cell(s[f"{g}/{m}"]) for m in METRICS),
        ]
      )
  header = ["arm", "share of training draws", "group", "accuracy", "balanced accuracy", "ECE (lower is better)"]
  note = "Mean [95% t-CI] over seeds; each group has 180 test images (resolution 1/180 = 0.0056)."
  return report.Table("Per-group metrics on the test split", header, rows, note)


def overall_table(summaries: dict) -> report.Table:
  keys = ("accuracy", "worst_accuracy", "accuracy_gap")
  rows = [[name, *(report.cell(s[k]) for k in keys)] for name, s in summaries.items()]
  header = ["arm", "overall accuracy (50/50 test)", "worst-group accuracy", "accuracy gap (best - worst group)"]
  return report.Table("Overall, worst group and gap", header, rows, "Mean [95% t-CI] over seeds.")


def recall_table(summaries: dict) -> report.Table:
  rows = [[name, g, *(f"{v:.2f}" for v in s[f"{g}/recall"])] for name, s in summaries.items() for g in GROUPS]
  classes = len(next(iter(summaries.values()))[f"{data.MINORITY}/recall"])
  header = ["arm", "group", *(f"digit {c}" for c in range(classes))]
  return report.Table("Per-class recall by group (mean over seeds; 18 test images per digit and group)", header, rows)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results, counts = run_arms(session, args.quick)
    summaries = summarize(results)
    versus, gaps = differences(results)
    plot_files = figures.draw(args.out, summaries, GROUPS)
    facts = {
      "title": "Fairness: an under-represented group, per-group metrics and remedies",
      "question": QUESTION,
      "answer": meaning.answer(summaries, versus, BASELINE),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(CONDITIONS, counts, args, QUICK),
      "arms": {name: {**study.arm_facts(r), "data": counts[name]} for name, r in results.items()},
      "differences": versus + gaps,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, versus, gaps, BASELINE),
      "caveats": meaning.caveats(args),
      "findings": summaries,
      "provenance": session.clock.finish(),
    }
  tables = [group_table(summaries, counts), overall_table(summaries), recall_table(summaries)]
  diff_tables = [
    report.difference_table(f"Each arm - {BASELINE}, seed by seed", versus),
    report.difference_table("Majority - minority within each arm (the gap per metric)", gaps),
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
