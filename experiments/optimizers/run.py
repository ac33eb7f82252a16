"""Optimizers: the workflow's five aspects of sgd, momentum, nesterov, adam, adamw, rmsprop and adagrad on the digits
MLP: time per step, convergence time to a target accuracy, final accuracy and its spread over seeds, accuracy
against the learning rate over 3 decades, and the hyperparameters each exposes.

  python experiments/optimizers/run.py            # full run: ~7 min on 2 shared CPU cores
  python experiments/optimizers/run.py --quick    # seconds; the same outputs' structure

Every arm (optimizer x learning rate) is configs/digits_mlp.py with `optim.name`, `optim.lr`, a constant schedule
without warmup (the lr studied is the lr used) and EPOCHS epochs, trained through `jaxflow.seeds(config, workdir,
seeds=5, vary="all", mode="vmap")`: the 5 seeds of an arm train as one vmapped program (the MLP is small enough
for vmap to pay on CPU), and seed i of every arm shares its streams (paired). Per seed: the final test accuracy and
the first epoch whose test accuracy reaches TARGET (metrics.jsonl); per arm: the training phase's seconds per step
(summary.json's `train_seconds` / `steps`). Writes report.md, results.json and PNG plots into --out.
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.optimizers import figures, meaning  # noqa: E402

QUESTION = (
  "the workflow's five aspects: computation time per step, convergence time to a target accuracy, final accuracy "
  "and its spread over seeds (local minima), learning-rate dependency (accuracy against lr over ≥ 3 decades for "
  "sgd, momentum, nesterov, adam, adamw, rmsprop, adagrad), and the number of hyperparameters each exposes."
)
CONFIG = "configs/digits_mlp.py"
EPOCHS, TARGET = 10, 0.95
# One program per step (not a fused epoch): it compiles in ~8 s instead of ~12 s on this loaded machine, which is what
# lets 28 arms fit in 10 minutes; the seconds per step then include one dispatch per step (the same for every arm).
COMMON = ("optim.schedule=constant", "optim.warmup_steps=0", "train.steps_per_dispatch=1")
PLAIN, ADAPTIVE = (1e-3, 1e-2, 1e-1, 1.0), (1e-4, 1e-3, 1e-2, 1e-1)
# Four learning rates (3 decades) per optimizer, placed where each rule's useful range lies: the plain-gradient
# rules (and adagrad, whose steps shrink as squared gradients accumulate) take larger rates than the rules that
# divide by a running RMS of the gradient. Why not 5+ for all: each lr is its own compiled program (~15 s an arm).
LRS = {
  "sgd": PLAIN,
  "momentum": PLAIN,
  "nesterov": PLAIN,
  "adam": ADAPTIVE,
  "adamw": ADAPTIVE,
  "rmsprop": ADAPTIVE,
  "adagrad": PLAIN,
}
QUICK_LRS = {"sgd": (1e-1,), "adam": (1e-3,)}
# adamw with configs/base.py's weight_decay=0 would be adam exactly: it gets PyTorch's AdamW default, decoupled 0.01.
EXTRA = {"adamw": ("optim.weight_decay=0.01",)}
CHANCE = 0.1  # a diverged seed (NaN parameters) in the one-decade comparisons: no better than guessing 1 of 10
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")
REFERENCE = "adam"
# The hyperparameters of each rule: those jaxflow's config sets (`optim.*`; every optimizer also takes the shared
# weight_decay, clip_norm and schedule fields) and the update rule's own numeric ones (optax 0.2.8's signature).
HYPERPARAMETERS = {
  "sgd": (("lr",), ("learning_rate",)),
  "momentum": (("lr", "momentum"), ("learning_rate", "momentum")),
  "nesterov": (("lr", "momentum"), ("learning_rate", "momentum")),
  "adam": (("lr",), ("learning_rate", "b1", "b2", "eps")),
  "adamw": (("lr", "weight_decay"), ("learning_rate", "b1", "b2", "eps", "weight_decay")),
  "rmsprop": (("lr", "momentum"), ("learning_rate", "decay", "eps", "momentum", "initial_scale")),
  "adagrad": (("lr",), ("learning_rate", "initial_accumulator_value", "eps")),
}


def arm_name(name: str, lr: float) -> str:
  return f"{name} lr={lr:g}"


def extract(summary: dict, workdir: str) -> dict:
  """Per seed: final test accuracy, the first epoch (and step) at TARGET test accuracy (None: never within the
  run), the test-accuracy curve per epoch, and the arm's training seconds per step (the vmapped group's)."""
  curve, reached = [], None
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      row = json.loads(line)
      if row.get("split") == "eval" and "accuracy" in row:
        curve.append(row["accuracy"])
        if reached is None and row["accuracy"] >= TARGET:
          reached = (row["epoch"], row["step"])
  final = summary["final"]["eval"].get("accuracy")
  steps = max(1, summary["steps"])
  return {
    "accuracy": final if final == final else None,  # NaN (a diverged run) counts as failed
    "epochs_to_target": reached[0] if reached else None,
    "steps_to_target": reached[1] if reached else None,
    "curve": curve,
    "seconds_per_step": summary["train_seconds"] / steps,
    "stopped_early": summary.get("stopped_early"),
  }


def run_arms(session: study.Session, quick: bool) -> dict:
  """Every optimizer x lr arm: {optimizer: {lr: ArmResult}}."""
  out = {}
  for name, lrs in (QUICK_LRS if quick else LRS).items():
    out[name] = {}
    for lr in lrs:
      overrides = (f"optim.name={name}", f"optim.lr={lr}", *EXTRA.get(name, ()), *COMMON)
      overrides += QUICK if quick else (f"train.epochs={EPOCHS}",)
      # Quick: sequential, so the tiny programs are those other studies' quick runs compile (a shared cache).
      arm = study.Arm(arm_name(name, lr), CONFIG, overrides, mode="sequential" if quick else "vmap")
      out[name][lr] = session.run(arm, extract)
  return out


def summarize(results: dict) -> dict:
  """Per optimizer: accuracy per lr, the best lr (by mean final accuracy), and at it the final accuracy, its spread,
  the steps and seconds to TARGET; seconds per step over all its arms (one value per arm)."""
  out = {}
  for name, by_lr in results.items():
    per_lr = {lr: stats.mean_ci(r.values("accuracy")) for lr, r in by_lr.items()}
    best = max(per_lr, key=lambda lr: per_lr[lr]["mean"] if per_lr[lr]["mean"] is not None else -1.0)
    r = by_lr[best]
    step = stats.mean_ci([row["seconds_per_step"] for a in by_lr.values() for row in a.per_seed[:1] if row])
    steps = r.values("steps_to_target")
    seconds = [None if s is None else s * step["mean"] for s in steps]
    reached = sum(s is not None for s in steps)
    curves = [row["curve"] for row in r.per_seed if row]
    length = min((len(c) for c in curves), default=0)
    out[name] = {
      "accuracy_by_lr": {f"{lr:g}": per_lr[lr] for lr in by_lr},
      "best_lr": best,
      "accuracy": per_lr[best],
      "std": per_lr[best]["std"],
      "range": [min(per_lr[best]["values"], default=None), max(per_lr[best]["values"], default=None)],
      "steps_to_target": stats.mean_ci(steps),
      "seconds_to_target": stats.mean_ci(seconds),
      "reached": f"{reached}/{len(steps)}",
      "seconds_per_step": step,
      "mean_curve": [sum(c[e] for c in curves) / len(curves) for e in range(length)],
      "hyperparameters": {"jaxflow": list(HYPERPARAMETERS[name][0]), "rule": list(HYPERPARAMETERS[name][1])},
      "grid_edge": best in (min(by_lr), max(by_lr)) and len(by_lr) > 1,
    }
  return out


def differences(results: dict, summaries: dict) -> list[dict]:
  """Each optimizer at its best lr against adam at its best lr (paired by seed: same init, order and dropout);
  and each at its best lr against the lr one decade lower or higher (how sharp its optimum is)."""
  rows, ref = [], results.get(REFERENCE, {}).get(summaries.get(REFERENCE, {}).get("best_lr"))
  for name, by_lr in results.items():
    best = summaries[name]["best_lr"]
    r = by_lr[best]
    if ref is not None and name != REFERENCE:
      for metric, higher, res in (("accuracy", True, r.resolution), ("steps_to_target", False, None)):
        rows.append(
          stats.compare(
            f"best lr vs {REFERENCE}'s best: {metric}",
            arm_name(name, best),
            r.values(metric),
            ref.arm.name,
            ref.values(metric),
            resolution=res,
            higher_is_better=higher,
          )
        )
    for other in (best / 10, best * 10):
      near = next((lr for lr in by_lr if abs(lr / other - 1) < 1e-6), None)
      if near is not None:
        rows.append(
          stats.compare(
            "best lr vs one decade away: accuracy",
            arm_name(name, best),
            [CHANCE if v is None else v for v in r.values("accuracy")],
            arm_name(name, near),
            [CHANCE if v is None else v for v in by_lr[near].values("accuracy")],
            resolution=r.resolution,
          )
        )
  return rows


def tables(summaries: dict) -> list[report.Table]:
  lrs = sorted({lr for s in summaries.values() for lr in s["accuracy_by_lr"]}, key=float)
  rows = [
    [n, *(report.cell(s["accuracy_by_lr"][lr]) if lr in s["accuracy_by_lr"] else "-" for lr in lrs)]
    for n, s in summaries.items()
  ]
  lr_table = report.Table(
    f"Final test accuracy against the learning rate ({EPOCHS} epochs, constant lr)",
    ["optimizer", *(f"lr={lr}" for lr in lrs)],
    rows,
    "Mean [95% t-CI] over the seeds that finished; '-': not run; 'failed': seeds stopped as diverged (loss NaN or "
    "above 10x its start, `train.stop_on_divergence`).",
  )
  rows = [
    [
      n,
      f"{s['best_lr']:g}",
      report.cell(s["accuracy"]),
      f"{report.fmt(s['std'], 4)} ({report.fmt(s['range'][0])}-{report.fmt(s['range'][1])})",
      _reached(s["steps_to_target"], 1, s["reached"]),
      _reached(s["seconds_to_target"], 2, s["reached"]),
      report.cell({**s["seconds_per_step"], "mean": _ms(s["seconds_per_step"]["mean"]), "ci95": _ms_ci(s)}, 2),
      f"{len(s['hyperparameters']['jaxflow'])}: {', '.join(s['hyperparameters']['jaxflow'])}",
      f"{len(s['hyperparameters']['rule'])}: {', '.join(s['hyperparameters']['rule'])}",
    ]
    for n, s in summaries.items()
  ]
  header = [
    "optimizer",
    "best lr",
    "final accuracy",
    "std over seeds (min-max)",
    f"steps to {TARGET:.0%} test accuracy",
    f"seconds to {TARGET:.0%}",
    "ms per step (5 seeds vmapped)",
    "hyperparameters jaxflow sets",
    "the rule's own (optax)",
  ]
  note = (
    "At each optimizer's best lr (the highest mean final accuracy of its grid: picked on the test split, so slightly "
    "optimistic). Steps and seconds to target: over the seeds that reached it (evaluated once per epoch of 11 steps); "
    "seconds = steps x the arm's ms per step. ms per step: training phase seconds / steps for the 5 vmapped seeds, "
    "one value per lr arm of the optimizer (mean [95% CI] over its arms)."
  )
  return [lr_table, report.Table("The five aspects at each optimizer's best learning rate", header, rows, note)]


def _reached(summary: dict, digits: int, reached: str) -> str:
  """Mean [CI] over the seeds that reached the target (the others did not within the run: not failures)."""
  if summary["mean"] is None:
    return f"not reached (0/{reached.split('/')[1]} seeds)"
  return report.cell({**summary, "missing": 0}, digits) + f" ({reached} seeds)"


def _ms(v):
  return None if v is None else 1000 * v


def _ms_ci(s: dict):
  ci = s["seconds_per_step"]["ci95"]
  return [1000 * ci[0], 1000 * ci[1]] if ci else None


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results = run_arms(session, args.quick)
    summaries = summarize(results)
    diffs = differences(results, summaries)
    plot_files = figures.draw(args.out, summaries, results, TARGET)
    facts = {
      "title": "Optimizers: time per step, convergence, final accuracy and spread, lr dependency, hyperparameters",
      "question": QUESTION,
      "answer": meaning.answer(summaries, diffs, TARGET),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, EPOCHS, TARGET, QUICK_LRS if args.quick else LRS, COMMON, QUICK),
      "arms": {r.arm.name: study.arm_facts(r) for by_lr in results.values() for r in by_lr.values()},
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, diffs, TARGET),
      "caveats": meaning.caveats(args, EPOCHS),
      "findings": summaries,
      "provenance": session.clock.finish(),
    }
  note = f"In 'one decade away', a diverged seed (failed in the tables) counts as chance, accuracy {CHANCE}."
  paired = [report.difference_table("Paired over seeds (a - b)", diffs, note=note)]
  shown = report.write(args.out, facts, tables(summaries), paired)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
