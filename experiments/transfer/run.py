"""Does transfer learning help? Keep the early layers, retrain the later ones: the digits CNN pretrained on digits
0-4, then trained on few examples of 5-9 with a new head and none, one or both of its conv layers frozen (or
everything but the head), against the same model trained on the same examples from scratch, as a function of the
target-set size.

  python experiments/transfer/run.py            # full run: 4.7 min on 2 shared CPU cores (load 0.8-6.0; 5.6 at ~7)
  python experiments/transfer/run.py --quick    # seconds; the same outputs' structure

Pretraining: one run of configs/digits_cnn_pretrain.py (digits 0-4, 20 epochs, seed 0). Target:
configs/digits_cnn_finetune.py (digits 5-9, the head re-initialized, `init_from` the pretrained run) with `freeze`
set per arm, and configs/digits_cnn_scratch.py (the same without init_from or freezing); n/5 images of each of 5-9
drawn per seed (`data.class_counts`), 200 optimizer steps at every size. Each arm: `jaxflow.seeds(config, workdir,
seeds=5, vary="all", mode="sequential")`; seed i of every arm at one size trains on the same images in the same
order with the same dropout masks: differences are paired.
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras as kit  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.transfer import figures, meaning  # noqa: E402

QUESTION = "Does transfer learning help?"
CLAIM = "keep the early layers, retrain the later ones"
PRETRAIN, FINETUNE, SCRATCH = (
  "configs/digits_cnn_pretrain.py",
  "configs/digits_cnn_finetune.py",
  "configs/digits_cnn_scratch.py",
)
SIZES, STEPS, BATCH = (20, 50, 200), 200, 25
FROZEN = {  # arm -> config.freeze (the head is always new: reinit=("head",), as the fine-tune config has it)
  "fine-tune all": (),
  "freeze conv_0": ("conv_0",),
  "freeze both conv": ("conv",),
  "freeze all but head": ("conv", "dense_0"),
}
SCRATCH_ARM = "scratch"
QUICK_ARMS = (SCRATCH_ARM, "fine-tune all")  # no freeze mask: the same compiled programs as scratch and pretrain


def freeze_override(layers: tuple[str, ...]) -> str:
  return "freeze=(" + ", ".join(f'"{x}"' for x in layers) + ("," if len(layers) == 1 else "") + ")"


def target_overrides(n: int, quick: bool) -> tuple[str, ...]:
  """n/5 images of each of 5-9 (per seed, from the `data` stream) and the step budget. The fine-tune config keeps
  the first 50 images (`data.train_examples`); 1437, the whole training split, lifts that limit."""
  counts = "data.class_counts=(" + ", ".join(["0"] * 5 + [str(n // 5)] * 5) + ")"
  steps = kit.steps_overrides(n, kit.QUICK_STEPS, kit.QUICK_BATCH) if quick else kit.steps_overrides(n, STEPS, BATCH)
  return (*(kit.QUICK_CNN_MODEL if quick else ()), "data.train_examples=1437", counts, *steps)


def pretrain(session: study.Session, quick: bool) -> dict:
  """One network on digits 0-4, the config's 20 epochs (quick: the shared quick model on 180 images), seed 0:
  every target arm starts from it (a pretrained network per seed would make every arm's config per seed)."""
  quick_overrides = (*kit.QUICK_CNN, "data.class_counts=(36, 36, 36, 36, 36, 0, 0, 0, 0, 0)") if quick else ()
  arm = study.Arm("pretrain on 0-4", PRETRAIN, quick_overrides, mode="sequential")
  where = os.path.join(session.root, "pretrain")
  report_ = jaxflow.seeds(session.config(arm), where, seeds=1, mode=arm.mode, plots=False)
  row = report_["sweeps"][0]["seeds"][0]
  if row["status"] != "completed":
    raise RuntimeError(f"pretraining failed: {row}")
  with open(os.path.join(row["workdir"], "summary.json")) as f:
    summary = json.load(f)
  print(f"[{session.args.name}] {arm.name}: 1 run in {report_['sweeps'][0]['seconds']:.1f} s", flush=True)
  return {
    "workdir": row["workdir"],
    "accuracy": summary["final"]["eval"]["accuracy"],
    "overrides": list(arm.overrides),
    "seconds": round(report_["sweeps"][0]["seconds"], 1),
  }


def run_targets(session: study.Session, source: dict, quick: bool) -> dict[int, dict[str, study.ArmResult]]:
  sizes = (kit.QUICK_TRAIN,) if quick else SIZES
  names = QUICK_ARMS if quick else (SCRATCH_ARM, *FROZEN)
  results = {}
  for n in sizes:
    results[n] = {}
    for name in names:
      if name == SCRATCH_ARM:
        results[n][name] = session.run(
          study.Arm(f"{name} n={n}", SCRATCH, target_overrides(n, quick), mode="sequential"), kit.final_best_and_train
        )
        continue
      overrides = (*target_overrides(n, quick), f"init_from={source['workdir']}", freeze_override(FROZEN[name]))
      results[n][name] = session.run(
        study.Arm(f"{name} n={n}", FINETUNE, overrides, mode="sequential"), kit.final_best_and_train
      )
  return results


def summarize(results: dict[int, dict[str, study.ArmResult]]) -> dict:
  findings = {}
  for n, arms in results.items():
    scratch = arms[SCRATCH_ARM]
    resolution = scratch.resolution
    findings[str(n)] = {
      "accuracy": {k: stats.mean_ci(r.values("accuracy")) for k, r in arms.items()},
      "train_accuracy": {k: stats.mean_ci(r.values("train_accuracy")) for k, r in arms.items()},
      "versus_scratch": [
        stats.compare(f"n={n}", k, r.values("accuracy"), SCRATCH_ARM, scratch.values("accuracy"), resolution=resolution)
        for k, r in arms.items()
        if k != SCRATCH_ARM
      ],
      "ranking": kit.rank({k: r.values("accuracy") for k, r in arms.items()}, resolution),
      "resolution": resolution,
    }
  return findings


def accuracy_table(findings: dict, source: dict) -> report.Table:
  names = list(next(iter(findings.values()))["accuracy"])
  rows = [[n, *(report.cell(f["accuracy"][k]) for k in names)] for n, f in findings.items()]
  note = (
    f"Test accuracy on the digits 5-9 test images, final epoch, mean [95% t-CI] over seeds. The pretrained CNN's own "
    f"test accuracy on 0-4: {source:.3f} (one run)."
  )
  return report.Table("Target accuracy per arm and target-set size", ["n (5-9)", *names], rows, note)


def ranking_table(findings: dict) -> report.Table:
  rows = [[n, kit.ranking_text(f["ranking"])] for n, f in findings.items()]
  note = "Best mean first; in brackets, the arms each is resolved better than (paired difference not a tie)."
  return report.Table("Arms ranked per size", ["n (5-9)", "ranking"], rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    source = pretrain(session, args.quick)
    results = run_targets(session, source, args.quick)
    findings = summarize(results)
    source_accuracy = source["accuracy"]
    differences = [d for f in findings.values() for d in f["versus_scratch"]]
    facts = {
      "title": "Transfer learning: which layers to keep, as a function of the target-set size",
      "question": QUESTION,
      "answer": meaning.answer(findings, SCRATCH_ARM),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": setup(args, findings),
      "arms": {r.arm.name: study.arm_facts(r) for a in results.values() for r in a.values()},
      "differences": differences,
      "plots": figures.draw(args.out, findings, SCRATCH_ARM),
      "meaning": meaning.paragraphs(findings, SCRATCH_ARM, CLAIM, source_accuracy),
      "caveats": meaning.caveats(args.seeds, findings),
      "findings": {"pretrain": {k: v for k, v in source.items() if k != "workdir"}, "sizes": findings},
      "provenance": session.clock.finish(),
    }
  tables = [accuracy_table(findings, source_accuracy), ranking_table(findings)]
  paired = [report.difference_table("Each transfer arm - scratch, at the same seed", differences)]
  shown = report.write(args.out, facts, tables, paired)
  print(shown["answer"])
  return shown


def setup(args, findings: dict) -> list[str]:
  return [
    "Model: the digits CNN (conv_0: 32 3x3 filters, conv_1: 64, each with a 2x2 max-pool; dense_0: 128; head), "
    "dropout 0.1, Adam 3e-3 cosine"
    + (f"; quick overrides {kit.overrides_cell(kit.QUICK_CNN_MODEL)}" if args.quick else "")
    + ". It has two conv layers, so 'all conv layers' is both of them; 'all but head' also freezes dense_0.",
    f"Pretraining: `{PRETRAIN}` (digits 0-4, 20 epochs), `jaxflow.seeds(config, workdir, seeds=1, "
    "mode='sequential')`: one pretrained network (seed 0), the start of every transfer arm and seed.",
    f"Target: digits 5-9, n/5 images of each drawn per seed (`data.class_counts`), n = {', '.join(findings)}; "
    f"{kit.QUICK_STEPS if args.quick else STEPS} optimizer steps at every size (batch min({BATCH}, n // 2)); the "
    "test images of 5-9 (~180) as eval.",
    f"Arms: `{SCRATCH}` (scratch); `{FINETUNE}` with `init_from=<pretrained seed i>`, `reinit=('head',)` and "
    + "; ".join(f"{k}: `{freeze_override(v)}`" for k, v in FROZEN.items())
    + ". Frozen layers get a zero update; the others train from the pretrained values.",
    f"Each arm: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='sequential')`. Seed i of every "
    "arm at one size pins every stream to i: the same subset, batch order, dropout masks and init stream (paired).",
  ]


if __name__ == "__main__":
  main()
