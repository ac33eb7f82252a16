"""Sample bias, the tank story: a brightness attribute ("day" / "night") planted to go with the label in training
and not in test. Does the model learn the shortcut (in-distribution vs shifted accuracy), does `jaxflow audit` flag
the association before any training, does a decorrelated or reweighted training set remove the gap, and where does
the shortcut model look (saliency)?

  python experiments/sample_bias/run.py            # full run: ~5-8 min on 2 shared CPU cores
  python experiments/sample_bias/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py on an NPZ built here (experiments/sample_bias/data.py; `data.name=npz:PATH`,
`data.group_feature=bias`, `data.metadata_features=('daylight',)`), audited with `jaxflow.audit` first, then
trained for about the config's 330 optimizer steps through `jaxflow.seeds(config, workdir, seeds=5, vary="all")`;
seed i of every arm shares its streams (paired). Saliency: `jaxflow.explain` on seed 0 of the shortcut and the
decorrelated arm (pictures), and per seed a gradient measure through `jaxflow.export` (experiments/sample_bias/
saliency.py). Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.sample_bias import data, figures, meaning, saliency  # noqa: E402

QUESTION = (
  "Is there sample bias in the data? (the tank story: images with tanks only at day, without tanks only at night)"
)
CONFIG = "configs/digits_mlp.py"
STEPS, BATCH = 330, 128  # the config's own budget: 30 epochs of 11 steps (1437 // 128)
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")
TESTS = ("in_distribution", "decorrelated", "reversed")  # the test distributions each run is scored on
TEST_NAMES = {
  "in_distribution": "in-distribution (light as in training)",
  "decorrelated": "decorrelated (light independent of label)",
  "reversed": "reversed (tanks only at night)",
}


@dataclasses.dataclass(frozen=True)
class Condition:
  name: str
  lighting: data.Lighting
  role: str  # what the arm stands for, in the report's setup
  saliency: bool = False  # measure its saliency per seed (export + gradients: a few seconds a seed)


SHORTCUT, DECORRELATED = "100% (the tank story)", "50% (decorrelated)"
CONDITIONS = (
  Condition(DECORRELATED, data.Lighting(0.5), "the remedy by collection: light independent of the label", True),
  Condition("90%", data.Lighting(0.9), "a strong but imperfect shortcut: 10% of each class in the other light", True),
  Condition("95%", data.Lighting(0.95), "5% of each class in the other light"),
  Condition(SHORTCUT, data.Lighting(1.0), "every tank by day, every other image by night", True),
  Condition(
    "90% reweighted", data.Lighting(0.9, 9), "the 90% images, each conflicting one written 9 times (cells equal)", True
  ),
)
QUICK_CONDITIONS = (SHORTCUT, DECORRELATED)
REMEDIES = {"90% reweighted": "90%"}  # remedy arm -> the shortcut arm it repairs (same photos)


def overrides(npz: str, rows: int, quick: bool) -> tuple[str, ...]:
  """The NPZ, its group and audit columns; epochs giving about the config's 330 steps on `rows` rows."""
  dataset = (
    f"data.name=npz:{npz}",
    "data.input_feature=features",
    "data.standardize=False",
    f"data.group_feature={data.BIAS}",
    f"data.metadata_features=('{data.DAYLIGHT}',)",
  )
  if quick:
    return (*dataset, *QUICK)
  return (*dataset, harness_extras.epochs_override(rows, STEPS, BATCH))


def audit_facts(report_json: dict) -> dict:
  """The audit's verdict on the daylight attribute (Cramér's V per split, flagged, the finding's sentence) and
  what its other checks found."""
  attribute = report_json["attribute_bias"]["attributes"][data.DAYLIGHT]
  per = {
    s: {k: v[k] for k in ("cramers_v", "mutual_info_fraction", "p_value", "flagged", "table")}
    for s, v in attribute["splits"].items()
  }
  findings = report_json["summary"]["findings"]
  finding = next((f for f in findings if f"'{data.DAYLIGHT}'" in f), None)
  others = [f for f in findings if f != finding]  # the audit's other checks (shift, duplicates, balance, ...)
  return {"flagged": attribute["flagged"], "splits": per, "finding": finding, "other_findings": others}


def extractor(condition: Condition, session: study.Session, quick: bool):
  """Per seed: accuracy on the three test distributions (from the per-group accuracies of the one counterfactual
  test split), the light gap, and (arms with `saliency`) where the gradient goes."""
  p = condition.lighting.correlation

  def extract(summary: dict, workdir: str) -> dict:
    final = summary["final"]["eval"]
    aligned, conflicting = final[f"group/{data.ALIGNED}/accuracy"], final[f"group/{data.CONFLICTING}/accuracy"]
    row = {
      "aligned": aligned,
      "conflicting": conflicting,
      "in_distribution": p * aligned + (1 - p) * conflicting,
      "decorrelated": final["accuracy"],  # both groups hold the same 360 images: the 50/50 mix
      "reversed": conflicting,
      "light_gap": aligned - conflicting,
    }
    row["shift_gap"] = row["in_distribution"] - row["decorrelated"]
    first = os.path.basename(os.path.normpath(workdir)).endswith("000")
    if condition.saliency and (first or not quick):
      out = saliency.export_path(session.root, condition.name, workdir)
      row.update(saliency.measure(workdir, out, rows=40 if quick else None))
    return row

  return extract


def run_arms(session: study.Session, quick: bool) -> tuple[dict, dict, dict]:
  """Builds each condition's NPZ, audits every one before any training, then trains them; (results, data
  counts, audits) by arm."""
  conditions = [c for c in CONDITIONS if not quick or c.name in QUICK_CONDITIONS]
  arms, counts, audits = {}, {}, {}
  for c in conditions:
    slug = "".join(ch if ch.isalnum() else "_" for ch in c.name)
    npz = os.path.join(session.root, "data", f"{slug}.npz")
    counts[c.name] = data.build(npz, c.lighting)
    arms[c.name] = study.Arm(c.name, CONFIG, overrides(npz, counts[c.name]["train_rows"], quick), mode="sequential")
    audits[c.name] = audit_facts(jaxflow.audit(session.config(arms[c.name]), os.path.join(session.root, "audit", slug)))
    print(f"[sample_bias] audit {c.name}: {audits[c.name]['finding'] or 'nothing flagged'}", flush=True)
  results = {c.name: session.run(arms[c.name], extractor(c, session, quick)) for c in conditions}
  return results, counts, audits


def explain_pictures(session: study.Session, results: dict, out: str) -> list[tuple[str, str]]:
  """`jaxflow.explain` on seed 0 of the shortcut and the decorrelated arm; their saliency.png copied into `out`.
  The full run only: explain's one saliency program alone costs a quick run's budget of CPU (~6 s) to compile."""
  shown = []
  for name, stem in ((SHORTCUT, "explain_shortcut"), (DECORRELATED, "explain_decorrelated")):
    where = os.path.join(session.root, "explain", stem)
    jaxflow.explain(results[name].workdirs[0], examples=8, out=where)
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(os.path.join(where, "saliency.png"), os.path.join(out, f"{stem}.png"))
    shown.append((f"jaxflow explain, seed 0 of {name}: saliency of the predicted class", f"{stem}.png"))
  return shown


def _measured(r: study.ArmResult, key: str) -> list:
  """The key's per-seed values; a seed that completed without measuring it (quick: saliency on seed 0 only) is
  left out rather than counted as failed."""
  return [v for row, v in zip(r.per_seed, r.values(key), strict=True) if row is None or key in row]


def summarize(results: dict) -> dict:
  keys = ("aligned", "conflicting", *TESTS, "light_gap", "shift_gap", "background_share", "light_alignment")
  return {
    name: {k: stats.mean_ci(_measured(r, k)) for k in keys if any(v is not None for v in r.values(k))}
    for name, r in results.items()
  }


def differences(results: dict) -> tuple[list[dict], list[dict]]:
  """(within each arm: in-distribution - decorrelated and - reversed test accuracy, seed by seed; between arms:
  each against the decorrelated arm on the shifted tests, each remedy against the arm it repairs, saliency)."""
  res = stats.accuracy_resolution(360)  # one of the 360 test images of a group
  within = []
  for name, r in results.items():
    for test in ("decorrelated", "reversed"):
      within.append(
        stats.compare(
          f"{name}: in-distribution - {test}",
          "in-distribution",
          r.values("in_distribution"),
          test,
          r.values(test),
          resolution=res,
        )
      )
  between = []
  base = results[DECORRELATED]
  pairs = [(name, DECORRELATED) for name in results if name != DECORRELATED]
  pairs += [(remedy, shortcut) for remedy, shortcut in REMEDIES.items() if remedy in results and shortcut in results]
  for a, b in pairs:
    for test in ("decorrelated", "reversed", "in_distribution"):
      between.append(
        stats.compare(
          f"{test.replace('_', '-')} accuracy", a, results[a].values(test), b, results[b].values(test), resolution=res
        )
      )
  for name, r in results.items():
    if name != DECORRELATED and any(v is not None for v in r.values("background_share")):
      for key in ("background_share", "light_alignment"):
        between.append(
          stats.compare(
            key, name, r.values(key), DECORRELATED, base.values(key), resolution=None, higher_is_better=False
          )
        )
  return within, between


def accuracy_table(summaries: dict, counts: dict) -> report.Table:
  rows = [
    [
      name,
      f"{counts[name]['train_aligned_share']:.1%}",
      *(report.cell(s[t]) for t in TESTS),
      report.cell(s["shift_gap"]),
    ]
    for name, s in summaries.items()
  ]
  header = [
    "arm",
    "share of training draws in the aligned light",
    *(TEST_NAMES[t] for t in TESTS),
    "in-distribution - decorrelated",
  ]
  note = (
    "Mean [95% t-CI] over seeds of test accuracy on the 360 test digits, each seen by day and by night: reversed = "
    "the 360 rows in the light the shortcut does not expect; decorrelated = all 720 rows; in-distribution = "
    "p x aligned + (1 - p) x reversed for the arm's collected correlation p (0.9 for the reweighted arm)."
  )
  return report.Table("Test accuracy by test distribution", header, rows, note)


def audit_table(audits: dict, counts: dict) -> report.Table:
  rows = []
  for name, a in audits.items():
    train, test = a["splits"]["train"], a["splits"]["test"]
    cells = counts[name]["train_cells"]
    rows.append(
      [
        name,
        " / ".join(str(cells[k]) for k in ("tank/day", "tank/night", "no_tank/day", "no_tank/night")),
        report.fmt(train["cramers_v"]),
        report.fmt(train["mutual_info_fraction"]),
        report.fmt(test["cramers_v"]),
        "yes" if a["flagged"] else "no",
      ]
    )
  header = [
    "arm",
    "train rows tank day / night, no tank day / night",
    "Cramér's V (train)",
    "MI / H(label) (train)",
    "Cramér's V (test)",
    "flagged",
  ]
  note = "`jaxflow audit` on each arm's dataset before any training (bias-corrected Cramér's V, flagged at >= 0.3)."
  return report.Table("The audit, before training: daylight x label", header, rows, note)


def saliency_table(summaries: dict) -> report.Table:
  rows = [
    [name, report.cell(s["background_share"]), report.cell(s["light_alignment"])]
    for name, s in summaries.items()
    if "background_share" in s
  ]
  header = ["arm", "share of the absolute gradient on background pixels", "abs. cosine(gradient, day light's change)"]
  note = "Mean [95% t-CI] over seeds, each the mean over the test rows (saliency.py); background pixels are 49% of all."
  return report.Table("Where the model looks (vanilla gradient of the decision)", header, rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results, counts, audits = run_arms(session, args.quick)
    summaries = summarize(results)
    within, between = differences(results)
    plot_files = figures.draw(args.out, summaries, audits, TESTS, TEST_NAMES)
    if not args.quick:
      plot_files += explain_pictures(session, results, args.out)
    facts = {
      "title": "Sample bias: the tank story (a brightness shortcut)",
      "question": QUESTION,
      "answer": meaning.answer(summaries, audits, between, (SHORTCUT, DECORRELATED), REMEDIES),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(CONDITIONS, counts, args, QUICK),
      "arms": {
        name: {**study.arm_facts(r), "data": counts[name], "audit": audits[name]} for name, r in results.items()
      },
      "differences": within + between,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, audits, counts, within, between, (SHORTCUT, DECORRELATED), REMEDIES),
      "caveats": meaning.caveats(args),
      "findings": summaries,
      "provenance": session.clock.finish(),
    }
  tables = [audit_table(audits, counts), accuracy_table(summaries, counts), saliency_table(summaries)]
  diff_tables = [
    report.difference_table("In-distribution - shifted test accuracy within each arm, seed by seed", within),
    report.difference_table(
      f"Between arms, seed by seed (each against {DECORRELATED}; the remedy against its shortcut arm)", between
    ),
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
