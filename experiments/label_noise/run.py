"""Use more data, or clean the data? With 30% of the labels wrong (symmetric noise) and a budget of two labels per
image of a half of the digits training set, or one label per image of all of it: the digits MLP trained on all
1437 images with one noisy label each (2x the noisy data) against the half whose images were labelled twice,
with the pairs the audit's conflict finder flags (identical images, different labels) removed. Plus the cost of
wrong labels: test accuracy against the noise rate (symmetric 0-0.4, pairflip 0.2) on the whole training split.

  python experiments/label_noise/run.py            # full run: 3.1 min on 2 shared CPU cores (load 6.1-6.9; 8.7 at 9-10)
  python experiments/label_noise/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py with the same budget of optimizer steps (the config's 330: 30 epochs of
1437; batch min(128, n // 2)), label noise from jaxflow's `data.label_noise` (drawn from the `noise` stream).
Each arm: `jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="sequential")`; the half's arms read the study's
own `npz:` file (experiments/label_noise/data.py). The cleaning per seed: `jaxflow.audit` of the twice-labelled
split with that seed's noise, checked against the noisy labels that seed's run trained on; the cleaned split is
seed i's own, so seed i trains through `jaxflow.seeds(..., seeds=1)` with `seed=i`, which pins every stream to i as
seed index i of the other arms does: every comparison is paired by seed.
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras as kit  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.label_noise import data, figures, meaning  # noqa: E402

QUESTION = "Use more data, or clean the data?"
CONFIG = "configs/digits_mlp.py"
DIGITS_TRAIN, STEPS, BATCH = 1437, 330, 128
RATE = 0.3
CURVE = (("symmetric", 0.0), ("symmetric", 0.1), ("symmetric", 0.2), ("symmetric", RATE), ("symmetric", 0.4))
CURVE += (("pairflip", 0.2),)
NPZ = ("data.input_feature=features", "data.label_feature=y", "data.eval_split=test")
MORE, ONCE, TWICE, CLEANED, HALF_CLEAN = (
  "2x images, 1 noisy label each",
  "half, 1 noisy label",
  "half, 2 noisy labels each",
  "half, 2 labels, conflicts removed",
  "half, true labels",
)


def noise(kind: str, rate: float) -> tuple[str, ...]:
  return (f"data.label_noise.kind={kind}", f"data.label_noise.rate={rate}") if rate else ()


def curve_name(kind: str, rate: float) -> str:
  return "no noise" if not rate else f"{kind} {rate:g}"


def extract(summary: dict, workdir: str) -> dict:
  """Final and best-epoch test accuracy, the training accuracy (on the labels given), the flips."""
  path = os.path.join(workdir, "label_noise.json")
  flips = json.load(open(path)) if os.path.exists(path) else {"flipped": 0, "realized_rate": 0.0, "examples": None}
  final = summary["final"]
  return {
    "accuracy": final["eval"]["accuracy"],
    "best_accuracy": summary["best"]["value"],
    "best_epoch": summary["best"]["epoch"],
    "train_accuracy": final["train"].get("accuracy"),
    "flipped": flips["flipped"],
    "realized_rate": flips["realized_rate"],
    "train_examples": flips["examples"],
  }


def budget(n: int, quick: bool) -> tuple[str, ...]:
  """The same optimizer steps at every size: the config's 330 (quick: the shared quick model, 3 steps)."""
  return (
    (*kit.QUICK_MLP_MODEL, *kit.steps_overrides(n, kit.QUICK_STEPS, kit.QUICK_BATCH))
    if quick
    else kit.steps_overrides(n, STEPS, BATCH)
  )


def run_curve(session: study.Session, quick: bool) -> dict[str, study.ArmResult]:
  """Test accuracy against the noise rate on the whole training split (quick: the 30% point, 180 images)."""
  points = (("symmetric", RATE),) if quick else CURVE
  subset = ("data.class_counts=(" + ", ".join([str(kit.QUICK_TRAIN // 10)] * 10) + ")",) if quick else ()
  n = kit.QUICK_TRAIN if quick else DIGITS_TRAIN
  return {
    curve_name(k, r): session.run(
      study.Arm(curve_name(k, r), CONFIG, (*subset, *budget(n, quick), *noise(k, r)), mode="sequential"), extract
    )
    for k, r in points
  }


def run_half(session: study.Session, quick: bool) -> tuple[dict[str, study.ArmResult], dict]:
  """The half's arms (quick: the cleaned one only) and the audit's cleaning of every seed's twice-labelled half."""
  per_class = kit.QUICK_TRAIN // 20 if quick else None
  name, (images, labels), test = data.build_splits(session.root, per_class)
  n = len(labels)
  noisy = noise("symmetric", RATE)

  def arm(label: str, split: str, size: int, extra: tuple = ()) -> study.Arm:
    overrides = (f"data.name={name}", *NPZ, f"data.train_split={split}", *budget(size, quick), *extra)
    return study.Arm(label, CONFIG, overrides, mode="sequential")

  arms: dict[str, study.ArmResult] = {}
  twice = arm(TWICE, "twice", 2 * n, noisy)
  if not quick:
    arms[HALF_CLEAN] = session.run(arm(HALF_CLEAN, "half", n), extract)
    arms[ONCE] = session.run(arm(ONCE, "half", n, noisy), extract)
    arms[TWICE] = session.run(twice, extract)
  cleaning, kept = [], {}
  for i in range(session.seeds):  # seed i's noise stream is seed i's in every arm: audit with seed=i
    config = session.config(dataclasses.replace(twice, overrides=(*twice.overrides, f"seed={i}")))
    result = data.clean_by_audit(config, os.path.join(session.root, f"audit_s{i}"), labels)
    if TWICE in arms and arms[TWICE].per_seed[i] is not None:
      data.check_against_run(result["noisy_labels"], arms[TWICE].workdirs[i])
    kept[i] = (images[result["kept"]], result["labels"])
    cleaning.append({**result["stats"], "kept_index": result["kept"]})
  if quick:  # every seed's cleaned split cut to the smallest: one training-set shape, one compiled program
    least = min(len(y) for _, y in kept.values())
    for i, c in enumerate(cleaning):
      wrong = int((kept[i][1][:least] != labels[c.pop("kept_index")[:least]]).sum())
      c.update(kept_images=least, wrong_labels_kept=wrong, kept_noise_rate=wrong / least)
    kept = {i: (x[:least], y[:least]) for i, (x, y) in kept.items()}
  for c in cleaning:
    c.pop("kept_index", None)
  cleaned = data.build_cleaned(session.root, test, kept)
  sizes = [c["kept_images"] for c in cleaning]
  arms[CLEANED] = kit.per_seed_arm(
    session,
    study.Arm(CLEANED, CONFIG, (f"data.name={cleaned}", *NPZ), mode="sequential"),
    lambda i: (f"data.train_split=clean_s{i}", *budget(sizes[i], quick)),
    extract,
  )
  for i, row in enumerate(arms[CLEANED].per_seed):  # its labels are baked in (noise off): the cleaning knows them
    if row is not None:
      row.update(flipped=cleaning[i]["wrong_labels_kept"], train_examples=cleaning[i]["kept_images"])
  for row in arms[HALF_CLEAN].per_seed if HALF_CLEAN in arms else ():
    if row is not None:
      row["train_examples"] = n
  return arms, {"images_per_half": n, "per_seed": cleaning}


def single_label_conflicts(session: study.Session, more: study.Arm) -> int:
  """What the conflict finder flags on the plain noisy training set (seed 0): the digits have no identical
  images, so however many labels are wrong, it has nothing to compare."""
  config = session.config(more)
  report_ = jaxflow.audit(config, os.path.join(session.root, "audit_single_labels"))
  return int(report_["conflicting_labels"]["within"][config.data.train_split]["num_groups"])


def comparisons(curve: dict, half: dict, resolution: float) -> tuple[list[dict], list[dict]]:
  """(the question's paired differences, the curve's: each noise level - no noise)."""
  more = curve[curve_name("symmetric", RATE)]
  pairs = [(CLEANED, half.get(CLEANED), MORE, more)]
  pairs += [(CLEANED, half.get(CLEANED), ONCE, half.get(ONCE)), (MORE, more, ONCE, half.get(ONCE))]
  pairs += [(TWICE, half.get(TWICE), ONCE, half.get(ONCE)), (CLEANED, half.get(CLEANED), TWICE, half.get(TWICE))]
  pairs += [(TWICE, half.get(TWICE), MORE, more), (CLEANED, half.get(CLEANED), HALF_CLEAN, half.get(HALF_CLEAN))]
  question = [
    stats.compare("test accuracy", a, ra.values("accuracy"), b, rb.values("accuracy"), resolution=resolution)
    for a, ra, b, rb in pairs
    if ra is not None and rb is not None
  ]
  base = curve.get("no noise")
  noise_cost = [
    stats.compare(name, name, r.values("accuracy"), "no noise", base.values("accuracy"), resolution=resolution)
    for name, r in curve.items()
    if base is not None and name != "no noise"
  ]
  return question, noise_cost


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    curve = run_curve(session, args.quick)
    half, cleaning = run_half(session, args.quick)
    more = curve[curve_name("symmetric", RATE)]
    cleaning["conflicts_on_single_labels"] = None if args.quick else single_label_conflicts(session, more.arm)
    resolution = more.resolution
    question, noise_cost = comparisons(curve, half, resolution)
    arms = {MORE if name == curve_name("symmetric", RATE) else name: r for name, r in curve.items()} | half
    findings = {
      "rate": RATE,
      "accuracy": {name: stats.mean_ci(r.values("accuracy")) for name, r in arms.items()},
      "best_accuracy": {name: stats.mean_ci(r.values("best_accuracy")) for name, r in curve.items()},
      "train_accuracy": {name: stats.mean_ci(r.values("train_accuracy")) for name, r in arms.items()},
      "flipped": {name: stats.mean_ci(r.values("flipped")) for name, r in arms.items()},
      "realized_rate": {name: stats.mean_ci(r.values("realized_rate")) for name, r in arms.items()},
      "curve_keys": {name: MORE if name == curve_name("symmetric", RATE) else name for name in curve},
      "cleaning": cleaning,
      "resolution": resolution,
    }
    facts = {
      "title": "Label noise: more noisy data, or the same data cleaned by the audit?",
      "question": QUESTION,
      "answer": meaning.answer(findings, question, names=NAMES),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": setup(args, cleaning),
      "arms": {name: study.arm_facts(r) for name, r in arms.items()},
      "differences": question + noise_cost,
      "plots": figures.draw(args.out, findings, curve, names=NAMES),
      "meaning": meaning.paragraphs(findings, question, noise_cost, names=NAMES),
      "caveats": meaning.caveats(args.seeds, findings),
      "findings": findings,
      "provenance": session.clock.finish(),
    }
  tables = [question_table(findings, arms), cleaning_table(cleaning), curve_table(findings, curve)]
  differences = [
    report.difference_table(f"More data or clean data (symmetric noise {RATE:g})", question),
    report.difference_table("The cost of wrong labels: each noise level - no noise", noise_cost),
  ]
  shown = report.write(args.out, facts, tables, differences)
  print(shown["answer"])
  return shown


NAMES = {"more": MORE, "once": ONCE, "twice": TWICE, "cleaned": CLEANED, "half_clean": HALF_CLEAN, "rate": RATE}


def question_table(findings: dict, arms: dict) -> report.Table:
  rows = []
  for name in (MORE, ONCE, TWICE, CLEANED, HALF_CLEAN):
    if name not in arms:
      continue
    examples = [row["train_examples"] for row in arms[name].per_seed if row and row["train_examples"]]
    size = (
      (f"{min(examples)}-{max(examples)}" if min(examples) != max(examples) else str(examples[0])) if examples else "-"
    )
    rows.append(
      [
        name,
        size,
        report.cell(findings["flipped"][name], 0),
        report.cell(findings["accuracy"][name]),
        report.cell(findings["train_accuracy"][name]),
      ]
    )
  header = ["arm", "training rows", "wrong labels", "test accuracy", "train accuracy (on the labels given)"]
  note = "Mean [95% t-CI] over seeds; every arm trains the same number of optimizer steps."
  return report.Table(f"The labelling budget spent two ways (symmetric noise {RATE:g})", header, rows, note)


def cleaning_table(cleaning: dict) -> report.Table:
  rows = [
    [
      str(i),
      str(c["images"]),
      str(c["wrong_labels_before"]),
      str(c["conflict_groups"]),
      str(c["kept_images"]),
      str(c["wrong_labels_kept"]),
      f"{c['kept_noise_rate']:.3f}",
    ]
    for i, c in enumerate(cleaning["per_seed"])
  ]
  header = ["seed", "images (x2 labels)", "wrong labels", "conflicts flagged", "images kept", "wrong labels kept"]
  note = (
    "The audit (`jaxflow.audit`) of each seed's twice-labelled half: conflicts are pairs of identical images "
    "with different labels; a pair is kept (once) where both labels agree. On the plain noisy training set (one "
    f"label per image) the same finder flags {_count(cleaning['conflicts_on_single_labels'])} conflicts."
  )
  return report.Table("What the conflict finder removes", [*header, "noise kept"], rows, note)


def _count(n: int | None) -> str:
  return "(not run in the quick run)" if n is None else str(n)


def curve_table(findings: dict, curve: dict) -> report.Table:
  rows = []
  for name in curve:
    key = MORE if name == curve_name("symmetric", RATE) else name
    rows.append(
      [
        name,
        report.cell(findings["flipped"][key], 0),
        report.cell(findings["accuracy"][key]),
        report.cell(findings["best_accuracy"][name]),
        report.cell(findings["train_accuracy"][key]),
      ]
    )
  header = ["noise", "labels flipped", "test accuracy (final)", "best epoch's test accuracy", "train accuracy"]
  note = (
    f"All {DIGITS_TRAIN} training images (quick: a subset). Best epoch: the highest of the per-epoch test "
    "accuracies, an optimistic bound (the epoch is picked on the test set). Train accuracy is against the noisy "
    "labels the model was given (dropout on)."
  )
  return report.Table("The cost of wrong labels (whole training split)", header, rows, note)


def setup(args, cleaning: dict) -> list[str]:
  n = cleaning["images_per_half"]
  return [
    f"Model: `{CONFIG}` (MLP 64-256-256-10, dropout 0.1, Adam 3e-3 cosine)"
    + (f", quick overrides {' '.join(f'`{o}`' for o in kit.QUICK_MLP)}" if args.quick else "")
    + f"; every arm trains {3 if args.quick else STEPS} optimizer steps (batch min(128, n // 2)).",
    f"Noise: `data.label_noise.kind=symmetric`, `data.label_noise.rate={RATE}` (a label becomes any other class "
    "with probability 0.3), drawn per row from the `noise` stream, so seed i of every arm draws its own flips.",
    f"{MORE}: the shipped digits (`data.name=digits`), one noisy label per image. The half: {n} images, a "
    "stratified half of the training split drawn once (the same images for every seed and arm, as the whole split "
    "is); labelled once, twice (the half twice over, each row flipped on its own: two annotators), or with its true "
    "labels (the reference).",
    "Cleaning: `jaxflow.audit` of the twice-labelled half with the seed's noise; the audit's conflicting-label "
    "groups (identical images, different labels) are removed and each agreeing pair is kept once. The audit's "
    "noisy labels are checked equal to those the twice-labelled arm's run of the same seed trained on.",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='sequential')`, except the "
    "cleaned half, whose training split is seed i's own: per seed `jaxflow.seeds(config + "
    "data.train_split=clean_s<i> + seed=i, seeds=1)`, which pins every stream to i as seed index i of the others "
    "does (paired). The seeds vary the noise draw, initial parameters, batch order and dropout, not the images.",
    "Test split: the digits test split (360 images, clean labels), final epoch.",
  ]


if __name__ == "__main__":
  main()
