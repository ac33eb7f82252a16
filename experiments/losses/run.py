"""Losses: L1 against L2 for regression with and without outliers, and BCE against cross-entropy against MSE (and
L1) for classification, each on the same MLP and data; what each optimizes and where each wins.

  python experiments/losses/run.py            # full run: ~4 min on 2 shared CPU cores
  python experiments/losses/run.py --quick    # seconds; the same outputs' structure

Regression: the digit's value as the target (`problem.kind=regression`), from an NPZ built here
(experiments/losses/data.py) clean or with 10% of the training targets replaced by gross errors (30..99); the
test targets stay clean. Each seed's model is exported and loaded (`jaxflow.export`, `jaxflow.load_model`) to
get its test predictions: test MAE and RMSE for both losses, whatever the loss trained. Classification: the
shipped digits as 10 classes (cross-entropy, MSE and L1 on the softmax) and as odd/even (BCE, MSE and L1 on the
sigmoid, and 2-class softmax cross-entropy through `data.adapt.relabel`). Every arm is configs/digits_mlp.py
trained through `jaxflow.seeds(config, workdir, seeds=5, vary="all", mode="vmap")`; seed i of every arm shares
its streams (paired). Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
"""

from __future__ import annotations

import dataclasses
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.losses import data, figures, meaning  # noqa: E402

QUESTION = (
  "L1 vs L2 for regression with and without outliers; BCE vs cross-entropy vs MSE for classification; what each "
  "optimizes and where each wins."
)
CONFIG = "configs/digits_mlp.py"
OUTLIER_SHARE = 0.10
ODD = "(1, 3, 5, 7, 9)"
PARITY = "(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)"
REGRESSION = ("problem.kind=regression", "train.monitor=eval/mae", "train.monitor_mode=min")
BINARY = ("problem.kind=binary", f"problem.positive_labels={ODD}")
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")


@dataclasses.dataclass(frozen=True)
class Condition:
  name: str
  task: str  # regression | multiclass | binary
  overrides: tuple[str, ...]
  outliers: float | None = None  # regression: the share of training targets replaced (the NPZ built for it)


CONDITIONS = (
  Condition("L2 (mse), clean", "regression", ("loss=mse",), 0.0),
  Condition("L1 (mae), clean", "regression", ("loss=mae",), 0.0),
  Condition("L2 (mse), 10% outliers", "regression", ("loss=mse",), OUTLIER_SHARE),
  Condition("L1 (mae), 10% outliers", "regression", ("loss=mae",), OUTLIER_SHARE),
  Condition("10 classes: cross-entropy", "multiclass", ("loss=cross_entropy",)),
  Condition("10 classes: MSE", "multiclass", ("loss=mse",)),
  Condition("10 classes: L1", "multiclass", ("loss=mae",)),
  Condition("odd/even: BCE", "binary", (*BINARY, "loss=bce")),
  Condition("odd/even: 2-class cross-entropy", "binary", (f"data.adapt.relabel={PARITY}", "loss=cross_entropy")),
  Condition("odd/even: MSE", "binary", (*BINARY, "loss=mse")),
  Condition("odd/even: L1", "binary", (*BINARY, "loss=mae")),
)
QUICK_CONDITIONS = ("L2 (mse), 10% outliers", "L1 (mae), 10% outliers", "10 classes: cross-entropy")
# (comparison, a, b, metric, higher is better): a - b paired by seed.
COMPARISONS = (
  ("clean: test MAE", "L1 (mae), clean", "L2 (mse), clean", "test_mae", False),
  ("clean: test RMSE", "L1 (mae), clean", "L2 (mse), clean", "test_rmse", False),
  ("outliers: test MAE", "L1 (mae), 10% outliers", "L2 (mse), 10% outliers", "test_mae", False),
  ("outliers: test RMSE", "L1 (mae), 10% outliers", "L2 (mse), 10% outliers", "test_rmse", False),
  ("L2: what outliers cost (test MAE)", "L2 (mse), 10% outliers", "L2 (mse), clean", "test_mae", False),
  ("L1: what outliers cost (test MAE)", "L1 (mae), 10% outliers", "L1 (mae), clean", "test_mae", False),
  ("10 classes: accuracy", "10 classes: MSE", "10 classes: cross-entropy", "accuracy", True),
  ("10 classes: accuracy", "10 classes: L1", "10 classes: cross-entropy", "accuracy", True),
  ("odd/even: accuracy", "odd/even: 2-class cross-entropy", "odd/even: BCE", "accuracy", True),
  ("odd/even: accuracy", "odd/even: MSE", "odd/even: BCE", "accuracy", True),
  ("odd/even: accuracy", "odd/even: L1", "odd/even: BCE", "accuracy", True),
)


class RegressionExtract:
  """Per seed of a regression arm: the exported model's test predictions (loaded as a deployed model would be)
  give test MAE, RMSE and the mean signed error; the MAE is checked against the run's own eval MAE."""

  def __init__(self):
    _, _, self.x, y = data.digits()
    self.y = y.astype(np.float64)

  def __call__(self, summary: dict, workdir: str) -> dict:
    out = workdir.rstrip("/") + "_export"
    jaxflow.export(workdir, out, checkpoint="latest")  # latest: the final epoch the summary reports
    value = np.asarray(jaxflow.load_model(out)(self.x)["value"], np.float64).reshape(-1)
    error = value - self.y
    if abs(np.abs(error).mean() - summary["final"]["eval"]["mae"]) > 1e-3:  # the rebuilt test split is jaxflow's
      raise RuntimeError(f"test split mismatch: {np.abs(error).mean()} vs the run's {summary['final']['eval']['mae']}")
    return {
      "test_mae": float(np.abs(error).mean()),
      "test_rmse": float(np.sqrt((error**2).mean())),
      "mean_error": float(error.mean()),
      "rounded_accuracy": float((np.clip(np.rint(value), 0, 9) == self.y).mean()),
      "eval_loss": summary["final"]["eval"]["loss"],
    }


def classification_extract(summary: dict, workdir: str) -> dict:
  del workdir
  final = summary["final"]
  return {
    "accuracy": final["eval"]["accuracy"],
    "eval_loss": final["eval"]["loss"],
    "train_accuracy": final["train"].get("accuracy"),
  }


def run_arms(session: study.Session, quick: bool) -> tuple[dict, dict]:
  """Builds the regression NPZs (once per outlier share) and trains every condition; (results, data counts)."""
  results, counts, regression = {}, {}, RegressionExtract()
  for c in CONDITIONS:
    if quick and c.name not in QUICK_CONDITIONS:
      continue
    overrides, extract = c.overrides, classification_extract
    if c.task == "regression":
      npz = os.path.join(session.root, "data", f"outliers_{round(100 * c.outliers)}.npz")
      if c.outliers not in counts:
        counts[c.outliers] = data.build(npz, c.outliers)
      overrides = (f"data.name=npz:{npz}", "data.input_feature=features", *REGRESSION, *overrides)
      extract = regression
    # Quick: sequential, so the tiny programs are those other studies' quick runs compile (a shared cache serves them).
    arm = study.Arm(c.name, CONFIG, (*overrides, *(QUICK if quick else ())), mode="sequential" if quick else "vmap")
    results[c.name] = session.run(arm, extract)
  return results, counts


def metrics_of(task: str) -> tuple[str, ...]:
  return (
    ("test_mae", "test_rmse", "mean_error", "rounded_accuracy") if task == "regression" else ("accuracy", "eval_loss")
  )


def summarize(results: dict) -> dict:
  task = {c.name: c.task for c in CONDITIONS}
  return {name: {m: stats.mean_ci(r.values(m)) for m in metrics_of(task[name])} for name, r in results.items()}


def differences(results: dict) -> list[dict]:
  """COMPARISONS whose arms both ran; accuracy at its resolution (one test image), errors by their CI alone."""
  rows = []
  for name, a, b, metric, higher in COMPARISONS:
    if a in results and b in results:
      res = results[a].resolution if metric == "accuracy" else None
      rows.append(
        stats.compare(
          name, a, results[a].values(metric), b, results[b].values(metric), resolution=res, higher_is_better=higher
        )
      )
  return rows


def tables(summaries: dict) -> list[report.Table]:
  task = {c.name: c.task for c in CONDITIONS}
  reg = [n for n in summaries if task[n] == "regression"]
  cls = [n for n in summaries if task[n] != "regression"]
  out = []
  if reg:
    rows = [[n, *(report.cell(summaries[n][m]) for m in metrics_of("regression"))] for n in reg]
    header = ["arm", "test MAE", "test RMSE", "mean signed error", "rounded value = digit"]
    note = "Test targets are clean (0..9), 360 images; mean [95% t-CI] over seeds. Lower MAE / RMSE is better."
    out.append(report.Table("Regression: the digit's value", header, rows, note))
  if cls:
    rows = [[n, *(report.cell(summaries[n][m]) for m in metrics_of("multiclass"))] for n in cls]
    note = "Test accuracy over 360 images (resolution 1/360); the eval loss is each arm's own loss (not comparable)."
    out.append(report.Table("Classification", ["arm", "test accuracy", "test loss (its own)"], rows, note))
  return out


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  with study.session(args) as session:
    results, counts = run_arms(session, args.quick)
    summaries = summarize(results)
    diffs = differences(results)
    plot_files = figures.draw(args.out, summaries, {c.name: c.task for c in CONDITIONS})
    epochs = session.config(next(iter(results.values())).arm).train.epochs
    facts = {
      "title": "Losses: L1 vs L2 with and without outliers, BCE vs cross-entropy vs MSE",
      "question": QUESTION,
      "answer": meaning.answer(summaries, diffs),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(CONDITIONS, counts, args, epochs, QUICK),
      "arms": {name: study.arm_facts(r) for name, r in results.items()},
      "differences": diffs,
      "plots": plot_files,
      "meaning": meaning.paragraphs(summaries, diffs, counts),
      "caveats": meaning.caveats(args),
      "findings": {"summaries": summaries, "data": {str(k): v for k, v in counts.items()}},
      "provenance": session.clock.finish(),
    }
  shown = report.write(
    args.out, facts, tables(summaries), [report.difference_table("Paired over seeds (a - b)", diffs)]
  )
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
