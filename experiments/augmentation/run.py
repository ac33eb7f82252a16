"""Does augmentation help when data is scarce? The digits MLP trained on 100, 300 or all 1437 training images with
each augmentation op alone (small rotations, one-pixel shifts, +-10% zooms, pixel noise), all four together, a
left-right flip (wrong for digits: a control), or none; the gain measured against the workflow's "around 10
percent": in points of test accuracy and as a share of the errors left without augmentation.

  python experiments/augmentation/run.py            # full run: 4.0 min on 2 shared CPU cores (load 2.5-3.1; 5.8 at 5-6)
  python experiments/augmentation/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py with the same 200 optimizer steps at every size (the config's 30 epochs of 1437
are 330; at 330 the 19 arms took 10.4 min on 2 cores at load 8, over the 10 a study may; batch min(128, n // 2)),
the subsets stratified (`data.class_counts`, n / 10 per class) and drawn per seed from the `data` stream, trained
through `jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="vmap")`. Seed i of every arm at one size trains
on the same images from the same initial parameters in the same order (only the `augment` stream is added), so an
op's gain is a paired difference. The MLP, not the CNN of the earlier version of this study (commit 39229ed): 19
arms x 5 seeds of the CNN take ~15 min on 2 cores.
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras as kit  # noqa: E402
from experiments.augmentation import figures, meaning  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402

QUESTION = "Does augmentation help when data is scarce?"
CLAIM = "around 10 percent"
CONFIG = "configs/digits_mlp.py"
DIGITS_TRAIN, STEPS, BATCH = 1437, 200, 128  # 200 steps, not the config's 330: 19 arms x 5 seeds in < 10 min
SIZES = (100, 300, DIGITS_TRAIN)
OPS = {
  "rotate": "rotate(degrees=12, p=0.5)",
  "translate": "translate(max_dx=1, max_dy=1, p=0.5)",
  "zoom": "zoom(0.9, 1.1, p=0.5)",
  "noise": "noise(std=0.03, p=0.5)",
}
ALL, OFF, HFLIP = "all four", "off", "hflip"  # hflip: the wrong op for digits, a control
ARMS = {OFF: (), **{k: (v,) for k, v in OPS.items()}, ALL: tuple(OPS.values()), HFLIP: ("hflip(p=0.5)",)}
QUICK_ARMS = (OFF, "translate")  # translate: the cheapest op to compile (whole-pixel shifts)
CONTROL_SIZES = (100,)  # the wrong op is a control: measured at the smallest size only


def augment_override(ops: tuple[str, ...]) -> tuple[str, ...]:
  if not ops:
    return ()
  return ("data.augment=(" + ", ".join(f'"{op}"' for op in ops) + ("," if len(ops) == 1 else "") + ")",)


def size_overrides(n: int, quick: bool) -> tuple[str, ...]:
  subset = () if n == DIGITS_TRAIN else ("data.class_counts=(" + ", ".join([str(n // 10)] * 10) + ")",)
  if quick:
    return (*kit.QUICK_MLP_MODEL, *subset, *kit.steps_overrides(n, kit.QUICK_STEPS, kit.QUICK_BATCH))
  return (*subset, *kit.steps_overrides(n, STEPS, BATCH))


def run_arms(session: study.Session, quick: bool) -> dict[int, dict[str, study.ArmResult]]:
  sizes = (kit.QUICK_TRAIN,) if quick else SIZES
  mode = "sequential" if quick else "vmap"  # quick: the mode every quick run shares; full: vmap is faster here
  results = {}
  for n in sizes:
    names = QUICK_ARMS if quick else [k for k in ARMS if k != HFLIP or n in CONTROL_SIZES]
    results[n] = {
      name: session.run(
        study.Arm(f"{name} n={n}", CONFIG, (*size_overrides(n, quick), *augment_override(ARMS[name])), mode=mode),
        kit.final_best_and_train,
      )
      for name in names
    }
  return results


def error_share(op: list, off: list) -> list[float | None]:
  """Per seed, the share of the errors left without augmentation that the op removes: (acc - off) / (1 - off)."""
  return [None if a is None or b is None or b >= 1 else (a - b) / (1 - b) for a, b in zip(op, off, strict=True)]


def summarize(results: dict[int, dict[str, study.ArmResult]]) -> dict:
  """Per size: every arm's accuracy; per op, the paired gain over off in points, as a share of off's errors and
  relative to off's accuracy; the ops ranked."""
  findings = {}
  for n, arms in results.items():
    off = arms[OFF].values("accuracy")
    resolution = arms[OFF].resolution
    gains = {}
    for name, r in arms.items():
      if name == OFF:
        continue
      acc = r.values("accuracy")
      gains[name] = {
        "points": stats.compare(f"n={n}", name, acc, OFF, off, resolution=resolution),
        "error_share": stats.mean_ci(error_share(acc, off)),
        "relative": stats.mean_ci([None if a is None or b is None else (a - b) / b for a, b in zip(acc, off)]),
      }
    findings[str(n)] = {
      "accuracy": {name: stats.mean_ci(r.values("accuracy")) for name, r in arms.items()},
      "best_accuracy": {name: stats.mean_ci(r.values("best_accuracy")) for name, r in arms.items()},
      "train_accuracy": {name: stats.mean_ci(r.values("train_accuracy")) for name, r in arms.items()},
      "gains": gains,
      "ranking": kit.rank({name: r.values("accuracy") for name, r in arms.items()}, resolution),
      "resolution": resolution,
      "epochs": int(next(o for o in arms[OFF].arm.overrides if o.startswith("train.epochs=")).split("=")[1]),
      "batch": int(next(o for o in arms[OFF].arm.overrides if o.startswith("train.batch_size=")).split("=")[1]),
    }
  return findings


def accuracy_table(findings: dict) -> report.Table:
  names = list(dict.fromkeys(name for f in findings.values() for name in f["accuracy"]))
  rows = [
    [n, *(report.cell(f["accuracy"][k]) if k in f["accuracy"] else "-" for k in names)] for n, f in findings.items()
  ]
  note = "Final-epoch test accuracy (360 test images), mean [95% t-CI] over seeds."
  return report.Table("Test accuracy per arm and training-set size", ["n", *names], rows, note)


def gain_table(findings: dict) -> report.Table:
  rows = []
  for n, f in findings.items():
    for name, g in f["gains"].items():
      p = g["points"]
      rows.append(
        [
          n,
          name,
          f"{100 * p['mean']:+.1f}" if p["mean"] is not None else "-",
          p["verdict"],
          _pct(g["error_share"]),
          _pct(g["relative"]),
        ]
      )
  header = [
    "n",
    "augmentation",
    "gain (points)",
    "verdict",
    "share of off's errors removed",
    "relative to off's accuracy",
  ]
  note = (
    f"Paired with `off` at the same seed; the shares are per seed, mean [95% t-CI]. The workflow's '{CLAIM}' could "
    "mean any of the three: 10 points, 10% of the errors, or 10% more accuracy."
  )
  return report.Table("The gain, three ways", header, rows, note)


def _pct(s: dict) -> str:
  if s["mean"] is None:
    return "-"
  ci = s["ci95"]
  return f"{100 * s['mean']:+.0f}%" + (f" [{100 * ci[0]:+.0f}, {100 * ci[1]:+.0f}]" if ci else "")


def ranking_table(findings: dict) -> report.Table:
  rows = [[n, kit.ranking_text(f["ranking"])] for n, f in findings.items()]
  note = "Best mean first; in brackets, the arms each is resolved better than (paired difference not a tie)."
  return report.Table("Arms ranked per size", ["n", "ranking"], rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results = run_arms(session, args.quick)
    findings = summarize(results)
    differences = [g["points"] for f in findings.values() for g in f["gains"].values()]
    facts = {
      "title": "Augmentation: each op alone and together, at three training-set sizes",
      "question": QUESTION,
      "answer": meaning.answer(findings, ALL, CLAIM),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": setup(args, findings),
      "arms": {r.arm.name: study.arm_facts(r) for arms in results.values() for r in arms.values()},
      "differences": differences,
      "plots": figures.draw(args.out, findings, OFF, ALL),
      "meaning": meaning.paragraphs(findings, ALL, HFLIP, CLAIM),
      "caveats": meaning.caveats(args.seeds, findings),
      "findings": findings,
      "provenance": session.clock.finish(),
    }
  tables = [accuracy_table(findings), gain_table(findings), ranking_table(findings)]
  paired = [report.difference_table("Each augmentation - off, at the same seed", differences)]
  shown = report.write(args.out, facts, tables, paired)
  print(shown["answer"])
  return shown


def setup(args, findings: dict) -> list[str]:
  mode = "sequential" if args.quick else "vmap"
  schedule = ", ".join(f"n={n}: batch {f['batch']}, {f['epochs']} epochs" for n, f in findings.items())
  return [
    f"Model: `{CONFIG}` (MLP 64-256-256-10, dropout 0.1, Adam 3e-3 cosine)"
    + (f", quick overrides {kit.overrides_cell(kit.QUICK_MLP_MODEL)}" if args.quick else "")
    + f"; {kit.QUICK_STEPS if args.quick else STEPS} optimizer steps at every size ({schedule}).",
    "Training sets: `data.class_counts=(n/10, ...)`, n/10 images of each class drawn per seed from the `data` "
    f"stream (the largest, {DIGITS_TRAIN}, is the whole split); test: the 360-image test split, never augmented.",
    "Ops (jaxflow's `data.augment`, applied on the device per example from the `augment` stream, each with "
    "probability 0.5): " + "; ".join(f"{k}: `{v}`" for k, v in OPS.items()) + f"; {ALL}: the four in that order; "
    f"{HFLIP}: `hflip(p=0.5)`, a mirror image, which no digit in the test set is (a control, at n = "
    f"{', '.join(map(str, CONTROL_SIZES))} only).",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='{mode}')`; seed i of every "
    "arm at one size shares the subset, initial parameters, order and dropout: gains are paired seed by seed.",
    f"The claim: augmentation gains '{CLAIM}'. Measured three ways: points of accuracy, the share of the errors "
    "left without augmentation that it removes, and the gain relative to the accuracy without it.",
  ]


if __name__ == "__main__":
  main()
