"""What kind of problem? The same 8x8 digits framed three ways by the problem card (`config.problem`):
multiclass (which digit), binary (odd or even: `problem.positive_labels=(1, 3, 5, 7, 9)`) and regression
(the digit's value as a number); what the card changes (head, loss, metric), what each framing gets right
when asked the others' questions, and what a card that does not fit the data gets.

  python experiments/problem_definition/run.py            # full run: ~1 min on 2 shared CPU cores (load 6)
  python experiments/problem_definition/run.py --quick    # seconds; the same outputs' structure

Every arm is configs/digits_mlp.py (30 epochs) plus the card's overrides, trained through
`jaxflow.seeds(config, workdir, seeds=5, vary="all")`; seed i of every arm shares its streams (paired).
Writes report.md, results.json and PNG plots into --out (default results/ beside this file).
The regression model's predictions come from `jaxflow.export` + `jaxflow.load_model` on the digits test
split, rebuilt here from scikit-learn exactly as jaxflow ships it (checked against the run's own eval MAE).
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.problem_definition import figures, meaning, refusals  # noqa: E402

QUESTION = "What kind of problem? What are inputs and desired outputs?"
CONFIG = "configs/digits_mlp.py"
ODD = (1, 3, 5, 7, 9)
MULTICLASS, BINARY, REGRESSION = "multiclass", "binary (odd = 1)", "regression (value)"
FRAMINGS = {
  MULTICLASS: (),
  BINARY: ("problem.kind=binary", "problem.positive_labels=(1, 3, 5, 7, 9)"),
  REGRESSION: ("problem.kind=regression", "train.monitor=eval/mae", "train.monitor_mode=min"),
}
TARGETS = {
  MULTICLASS: "the digit, one of 10 classes",
  BINARY: "1 if the digit is odd, else 0",
  REGRESSION: "the digit as a number, 0.0 .. 9.0",
}
CARD_HEADER = ["framing", "card", "target", "head", "loss", "metrics measured", "exported model returns"]
# The loss when config.loss is None, as configs/base.py documents it (the workdir does not record it).
DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "bce", "regression": "mse"}


def digits_test_set() -> tuple[np.ndarray, np.ndarray]:
  """The digits test split as jaxflow ships it (jaxflow/data/digits.py): scikit-learn's digits, pixels
  0..16 spread to uint8 0..255, a stratified 80/20 split with random_state 0; uint8 [360, 8, 8, 1], labels."""
  from sklearn.datasets import load_digits  # deferred: only this study needs scikit-learn's copy
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  _, x_test, _, y_test = train_test_split(images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=0)
  return x_test, y_test


def confusion_metrics(summary: dict) -> dict:
  """A multiclass run's answers to the other questions, from its final confusion matrix (rows: true digit,
  columns: predicted): parity accuracy (the predicted digit's parity) and the mean |predicted - true| value."""
  c = np.asarray(summary["final"]["confusion"], np.float64)
  true, predicted = np.indices(c.shape)
  return {
    "parity_accuracy": float(c[true % 2 == predicted % 2].sum() / c.sum()),
    "value_mae": float((np.abs(true - predicted) * c).sum() / c.sum()),
  }


class Extract:
  """Per seed: the run's metrics and parameter count; the regression model's predictions on the test split
  (exported, then loaded as a deployed model would be); seed 0 of every framing exported for its card."""

  def __init__(self, test: tuple[np.ndarray, np.ndarray]):
    self.x, self.y = test
    self.cards: dict[str, dict] = {}
    self.predictions: dict[str, np.ndarray] = {}  # seed 0's regression predictions, for the scatter plot

  def _export(self, workdir: str) -> tuple[dict, dict]:
    out = workdir.rstrip("/") + "_export"
    card = jaxflow.export(workdir, out, checkpoint="latest")  # latest: the final epoch the summary reports
    return card, jaxflow.load_model(out)(self.x)

  def __call__(self, framing: str):
    def extract(summary: dict, workdir: str) -> dict:
      row = {**summary["final"]["eval"], "num_params": summary["num_params"]}
      first = workdir.rstrip("/").endswith("seed_000")
      if framing == MULTICLASS:
        row.update(confusion_metrics(summary))
      if framing == REGRESSION or first:
        card, outputs = self._export(workdir)
        if first:
          self.cards[framing] = {k: card[k] for k in ("problem", "output", "evaluation")}
      if framing == REGRESSION:
        value = np.asarray(outputs["value"], np.float64).reshape(-1)
        if abs(np.abs(value - self.y).mean() - row["mae"]) > 1e-4:  # the rebuilt test split is jaxflow's
          raise RuntimeError(f"test split mismatch: MAE {np.abs(value - self.y).mean()} vs the run's {row['mae']}")
        rounded = np.clip(np.rint(value), 0, 9).astype(int)
        row["rounded_accuracy"] = float((rounded == self.y).mean())
        row["parity_accuracy"] = float((rounded % 2 == self.y % 2).mean())
        if first:
          self.predictions[framing] = value
      return row

    return extract


def card_rows(results: dict, session: study.Session, cards: dict) -> list[list[str]]:
  """What the card changes, read from each run: targets, head width (from the parameter count: the layers
  below the head are the same in every framing), loss, metrics measured and the exported model's output."""
  width = session.config(results[REGRESSION].arm).model.widths[-1]
  below_head = results[REGRESSION].per_seed[0]["num_params"] - (width + 1)  # regression's head: one unit
  rows = []
  for framing, result in results.items():
    config = session.config(result.arm)
    seed0 = result.per_seed[0]
    head = (seed0["num_params"] - below_head) // (width + 1)
    metrics = [k for k in seed0 if k in ("loss", "accuracy", "balanced_accuracy", "macro_f1", "mae")]
    output = cards[framing]["output"]
    rows.append(
      [
        framing,
        " ".join(f"`{o}`" for o in FRAMINGS[framing]) or "(configs/digits_mlp.py as it is)",
        TARGETS[framing],
        f"{head} unit{'s' if head > 1 else ''}",
        config.loss or f"{DEFAULT_LOSS[config.problem.kind]} (default)",
        f"{', '.join(metrics)} (monitor {config.train.monitor})",
        f"`{output['name']}` [{output['shape'][0]}]: {output['meaning']}",
      ]
    )
  return rows


def score_table(results: dict) -> report.Table:
  def summary(framing, metric):
    return report.cell(stats.mean_ci(results[framing].values(metric)))

  rows = [
    [MULTICLASS, *(summary(MULTICLASS, m) for m in ("accuracy", "parity_accuracy", "value_mae"))],
    [BINARY, "- (cannot name a digit)", summary(BINARY, "accuracy"), "-"],
    [REGRESSION, *(summary(REGRESSION, m) for m in ("rounded_accuracy", "parity_accuracy", "mae"))],
  ]
  note = (
    "Multiclass: parity and value error of its predicted digit (from the final confusion matrix). Regression: its "
    "prediction rounded to the nearest digit (clipped to 0..9) for accuracy and parity. Mean [95% t-CI] over seeds."
  )
  header = ["framing", "digit accuracy", "even/odd accuracy", "mean |error| of the digit's value"]
  return report.Table("What each framing gets right (test split, 360 images)", header, rows, note)


def comparisons(results: dict, resolution: float) -> list[dict]:
  """(question, arm a and its metric, arm b and its metric, resolution, higher is better), a - b paired by seed."""
  rows = (
    ("even/odd", BINARY, "accuracy", "multiclass mapped to parity", MULTICLASS, "parity_accuracy", resolution, True),
    ("even/odd", BINARY, "accuracy", "regression rounded", REGRESSION, "parity_accuracy", resolution, True),
    ("which digit", MULTICLASS, "accuracy", "regression rounded", REGRESSION, "rounded_accuracy", resolution, True),
    ("digit value error", REGRESSION, "mae", "multiclass", MULTICLASS, "value_mae", None, False),
  )
  return [
    stats.compare(q, a, results[a].values(ma), b_name, results[b].values(mb), resolution=res, higher_is_better=hib)
    for q, a, ma, b_name, b, mb, res, hib in rows
  ]


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  quick = (*harness_extras.QUICK_MLP_MODEL, "train.epochs=1") if args.quick else ()  # the other studies' quick MLP
  with study.session(args) as session:
    extract = Extract(digits_test_set())
    results = {
      framing: session.run(study.Arm(framing, CONFIG, (*overrides, *quick), mode="sequential"), extract(framing))
      for framing, overrides in FRAMINGS.items()
    }
    cards = card_rows(results, session, extract.cards)
    refused = refusals.attempt(session, CONFIG)
    resolution = results[MULTICLASS].resolution
    diffs = comparisons(results, resolution)
    plot_files = figures.draw(args.out, results, extract.predictions, extract.y, names=(MULTICLASS, BINARY, REGRESSION))
    facts = build_facts(args, session, results, diffs, refused, extract.cards, plot_files)
  tables = [
    report.Table("What the card changes", CARD_HEADER, cards),
    score_table(results),
    refusals.table(refused),
  ]
  shown = report.write(args.out, facts, tables, [report.difference_table("Paired over seeds", diffs)])
  print(shown["answer"])
  return shown


def build_facts(args, session, results, diffs, refused, cards, plot_files) -> dict:
  epochs = session.config(results[MULTICLASS].arm).train.epochs
  setup = [
    f"Data: scikit-learn's 8x8 digits as jaxflow ships them (1437 training, 360 test images); model: {CONFIG} "
    f"(MLP 64-256-256-head, dropout 0.1, Adam 3e-3 cosine), {epochs} epochs, the same for every framing.",
    f"Each framing: `jaxflow.seeds(config, workdir, seeds={args.seeds}, vary='all', mode='sequential')`; seed i of "
    "every framing pins the same streams, so differences are paired seed by seed.",
    "Binary: `problem.kind=binary`, `problem.positive_labels=(1, 3, 5, 7, 9)` (odd = 1). Regression: "
    "`problem.kind=regression` with `train.monitor=eval/mae` (the default monitor, eval/accuracy, is refused).",
    "Regression predictions: `jaxflow.export(seed workdir, checkpoint='latest')` then `jaxflow.load_model(...)` on "
    "the test images; the MAE they give equals the run's own eval MAE (checked to 1e-4).",
    "Mismatched cards: the same config with one wrong card, handed to `jaxflow.seeds`; the refusal's message captured.",
  ]
  return {
    "title": "Problem definition: one dataset, three framings",
    "question": QUESTION,
    "answer": meaning.answer(results, diffs, refused, names=(MULTICLASS, BINARY, REGRESSION)),
    "command": args.command,
    "quick": args.quick,
    "seeds": args.seeds,
    "setup": setup,
    "arms": {name: study.arm_facts(r) for name, r in results.items()},
    "differences": diffs,
    "plots": plot_files,
    "meaning": meaning.paragraphs(results, diffs, refused, names=(MULTICLASS, BINARY, REGRESSION)),
    "caveats": meaning.caveats(epochs, args.seeds),
    "findings": {"cards": cards, "refusals": refused},
    "provenance": session.clock.finish(),
  }


if __name__ == "__main__":
  main()
