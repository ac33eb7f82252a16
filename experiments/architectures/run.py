"""Architectures: MLP, CNN, RNN (rows as a sequence) and the conv->LSTM hybrid on the digits at matched parameter
budgets, and GCN / GAT / GraphNetwork on the karate club: accuracy, parameters, step time, compile time.

  python experiments/architectures/run.py            # full run: ~10-15 min on 2 shared CPU cores
  python experiments/architectures/run.py --quick    # seconds; the same outputs' structure

Every family is one of jaxflow's registry models chosen by config (`model.name`, and `model.stages` for the
hybrid: a conv stem whose feature maps an LSTM reads row by row, no new class). Widths are chosen so that each
task's parameter counts lie within 10% of each other (digits ~53k: the CNN config's own size; karate ~800: the
GCN config's own size); the counts come from each run's summary.json (`num_params`), not from a formula here.
The digits arms share one training recipe (their configs' Adam 3e-3, cosine, warmup 20, dropout 0.1, with batch
64 for 20 epochs: 440 steps each); the graph arms keep configs/karate_gcn.py's (200 full-graph steps, two
labelled nodes). Step time is summary.json's `train_seconds / steps`; compile time its `compile_seconds` (the
step, epoch and eval programs) and `phases.init` (building and compiling the initializer), of each arm's first
seed, which compiles cold (later seeds reuse the programs, or load them from the study's compilation cache).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.activations import layers  # noqa: E402
from experiments.architectures import figures, meaning  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402

QUESTION = "Which layers? Can we create networks from different types?"
DIGITS, KARATE = "digits", "karate"
KARATE_CONFIG = "configs/karate_gcn.py"
RECIPE = ("train.batch_size=64", "train.epochs=20")  # every digits arm: 440 steps of 64 images
GRAPH_NETWORK = ("model.name=graph_network", "model.gnn_head=node", "train.stop_on_divergence=False")
# Every arm sequential (explicit, never "auto"): the CNN and the hybrid must be (a vmapped conv is a grouped
# convolution, ~5x slower on XLA:CPU; shared/PITFALLS.md), and the others are too, so that every step time is one
# model's step (a vmapped step is the group's) and every arm's first seed compiles its own single-model programs.
MODE = "sequential"
ARMS = {
  DIGITS: (
    study.Arm("MLP", "configs/digits_mlp.py", ("model.widths=(196,196)", *RECIPE), mode=MODE),
    study.Arm("CNN", "configs/digits_cnn.py", RECIPE, mode=MODE),
    study.Arm("RNN (LSTM over rows)", "configs/digits_rnn.py", ("model.rnn_hidden=(110,)", *RECIPE), mode=MODE),
    study.Arm("conv->LSTM", "configs/digits_conv_lstm.py", ("model.rnn_hidden=(44,)", *RECIPE), mode=MODE),
  ),
  KARATE: (
    study.Arm("GCN", KARATE_CONFIG, (), mode=MODE),
    study.Arm("GAT", KARATE_CONFIG, ("model.name=gat", "model.widths=(15,15)"), mode=MODE),
    study.Arm(
      "GraphNetwork", KARATE_CONFIG, (*GRAPH_NETWORK, "model.widths=(4,5)", "model.message_steps=2"), mode=MODE
    ),
    # Not matched on purpose: is a matched GraphNetwork held back by its size? The config's widths, 3 steps.
    study.Arm("GraphNetwork (config size)", KARATE_CONFIG, GRAPH_NETWORK, mode=MODE),
  ),
}
REFERENCE = {DIGITS: "CNN", KARATE: "GCN"}
UNMATCHED = ("GraphNetwork (config size)",)  # left out of the budget check
QUICK_DIGITS = (f"data.train_examples={harness_extras.QUICK_TRAIN}",)
# Quick: the shared tiny models of harness_extras (their programs repeat across the quick studies, so a grouped
# quick run finds them in the compilation cache); the karate arms are left out (each compiles its own programs:
# ~10 CPU-s per arm), so a quick run exercises the digits path and the outputs' structure only.
QUICK_ARMS = {
  DIGITS: (
    study.Arm("MLP", "configs/digits_mlp.py", (*harness_extras.QUICK_MLP, *QUICK_DIGITS), mode=MODE),
    study.Arm("CNN", "configs/digits_cnn.py", (*harness_extras.QUICK_CNN, *QUICK_DIGITS), mode=MODE),
  ),
}
BUDGET_TOLERANCE = 0.10  # matched: the largest count at most 10% above the smallest
SCALARS = ("accuracy", "best_accuracy", "train_accuracy", "params", "steps", "step_ms", "compile_s", "init_s", "wall_s")


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: accuracies, the parameter count, the timing fields of summary.json and the learning curve."""
  row = harness_extras.final_best_and_train(summary, workdir)
  steps = summary["steps"]
  row.update(
    params=summary["num_params"],
    steps=steps,
    step_ms=1000.0 * summary["train_seconds"] / steps if steps else None,
    compile_s=summary["compile_seconds"],
    init_s=summary["phases"]["init"],
    wall_s=summary["wall_seconds"],
    curve=[round(a, 4) for a in layers.eval_curve(workdir)],
  )
  return row


def run_task(session: study.Session, task: str, arms) -> dict[str, study.ArmResult]:
  """The digits arms through Session.run (jaxflow.seeds, 5 seeds in one call). The karate arms one seed per call
  (harness_extras.per_seed_arm: seed i pinned to i, still paired): jaxflow.seeds with >= 2 seeds on the karate club
  fails after training, in its prediction-disagreement pass (see the caveats)."""
  if task == KARATE:
    return {a.name: harness_extras.per_seed_arm(session, a, lambda i: (), extract) for a in arms}
  return {a.name: session.run(a, extract) for a in arms}


def summarize(results: dict[str, study.ArmResult]) -> dict:
  """Per arm: mean/CI of each scalar over seeds, the first (cold) seed's compile and init, the mean curve."""
  out = {}
  for name, r in results.items():
    s = {k: stats.mean_ci(r.values(k)) for k in SCALARS}
    first = r.per_seed[0] or {}
    s["cold_compile_s"], s["cold_init_s"] = first.get("compile_s"), first.get("init_s")
    rows = [row for row in r.per_seed if row]
    params = sorted({row["params"] for row in rows})
    s["num_params"] = params[0] if len(params) == 1 else params
    curves = [row["curve"] for row in rows]
    length = max(map(len, curves), default=0)
    s["curve"] = [stats.mean_ci([c[e] for c in curves if len(c) > e])["mean"] for e in range(length)]
    s["mode"], s["resolution"], s["overrides"] = r.mode, r.resolution, list(r.arm.overrides)
    out[name] = s
  return out


def budget(s: dict, names) -> dict:
  """Whether the arms' parameter counts are matched: the largest at most BUDGET_TOLERANCE above the smallest."""
  counts = {n: s[n]["num_params"] for n in names if n not in UNMATCHED and isinstance(s[n]["num_params"], int)}
  if not counts:
    return {"counts": {}, "spread": None, "matched": False}
  spread = max(counts.values()) / min(counts.values()) - 1
  return {"counts": counts, "spread": spread, "matched": spread <= BUDGET_TOLERANCE}


def differences(task: str, results: dict[str, study.ArmResult]) -> list[dict]:
  """Each arm - the task's reference, seed by seed: test accuracy (by the accuracy's resolution) and step time."""
  ref = REFERENCE[task]
  base = results[ref]
  rows = []
  for name, r in results.items():
    if name == ref:
      continue
    rows.append(
      stats.compare("accuracy", name, r.values("accuracy"), ref, base.values("accuracy"), resolution=base.resolution)
    )
    rows.append(
      stats.compare(
        "step_ms", name, r.values("step_ms"), ref, base.values("step_ms"), resolution=None, higher_is_better=False
      )
    )
  return rows


def task_table(task: str, s: dict, check: dict) -> report.Table:
  rows = []
  for name, v in s.items():
    count = v["num_params"]
    ratio = f"{count / s[REFERENCE[task]]['num_params']:.2f}" if isinstance(count, int) else "-"
    rows.append(
      [
        name,
        f"{count:,}" if isinstance(count, int) else str(count),
        ratio,
        report.cell(v["accuracy"]),
        report.cell(v["best_accuracy"]),
        report.cell(v["train_accuracy"]),
        report.cell(v["step_ms"], 2),
        report.fmt(v["cold_compile_s"], 1),
        report.fmt(v["cold_init_s"], 1),
        harness_extras.overrides_cell(v["overrides"], RECIPE),
      ]
    )
  header = ["arm", "parameters", f"/ {REFERENCE[task]}", "final test accuracy", "best-epoch test accuracy"]
  header += ["final train accuracy", "ms per step", "compile s (first seed)", "init s (first seed)", "overrides"]
  spread = "-" if check["spread"] is None else f"{check['spread']:.1%}"
  note = (
    f"Mean [95% t-CI] over seeds. Parameter budget: largest / smallest - 1 = {spread} over the matched arms "
    f"({'within' if check['matched'] else 'NOT within'} {BUDGET_TOLERANCE:.0%}). ms per step: train_seconds / steps "
    "of summary.json (each epoch's evaluation included). Compile: the first seed's cold compile of the step/epoch and "
    "eval programs (compile_seconds) and of the initializer (phases.init), one value per arm."
  )
  title = "Digits (8x8, 1437 train / 360 test)" if task == DIGITS else "Karate club (2 labelled nodes, 32 evaluated)"
  return report.Table(title, header, rows, note)


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  arms = QUICK_ARMS if args.quick else ARMS
  with study.session(args) as session:
    results = {task: run_task(session, task, task_arms) for task, task_arms in arms.items()}
    s = {task: summarize(r) for task, r in results.items()}
    checks = {task: budget(s[task], s[task]) for task in s}
    diffs = {task: differences(task, r) for task, r in results.items()}
    everything = [row for rows in diffs.values() for row in rows]
    facts = {
      "title": "Architectures: MLP, CNN, RNN, conv->LSTM on digits; GCN, GAT, GraphNetwork on the karate club",
      "question": QUESTION,
      "answer": meaning.answer(s, diffs, checks, REFERENCE),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, arms, RECIPE, MODE),
      "arms": {f"{task}: {n}": study.arm_facts(r) for task, rs in results.items() for n, r in rs.items()},
      "differences": everything,
      "plots": figures.draw(args.out, s, REFERENCE),
      "meaning": meaning.paragraphs(s, diffs, checks, REFERENCE),
      "caveats": meaning.caveats(args),
      "findings": {"summaries": s, "budgets": checks},
      "provenance": session.clock.finish(),
    }
  tables = [task_table(task, s[task], checks[task]) for task in s]
  diff_tables = [
    report.difference_table(
      f"{task}: each arm - {REFERENCE[task]}, seed by seed",
      rows,
      note="step_ms: lower is better, judged by its CI alone (no resolution).",
    )
    for task, rows in diffs.items()
    if rows
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
