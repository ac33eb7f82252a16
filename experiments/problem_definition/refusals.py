"""Problem cards that do not fit the digits, handed to `jaxflow.seeds` as a study would: is each refused
before anything trains (and before anything is written), and in what words?"""

from __future__ import annotations

import os
import time

import jaxflow
from experiments.common import report, study

# (card, overrides, why it does not fit)
MISMATCHES = (
  (
    "regression, nothing else changed",
    ("problem.kind=regression",),
    "the kind flipped alone keeps train.monitor=eval/accuracy, which a regression does not measure",
  ),
  ("multiclass with 2 classes", ("problem.num_classes=2",), "the digits label has 10 classes"),
  ("binary, no positive labels", ("problem.kind=binary",), "10 labels: which of them count as 1?"),
  (
    "binary with label 10 positive",
    ("problem.kind=binary", "problem.positive_labels=(2, 10)"),
    "there is no digit 10",
  ),
  (
    "regression trained with cross-entropy",
    ("problem.kind=regression", "train.monitor=eval/mae", "train.monitor_mode=min", "loss=cross_entropy"),
    "cross-entropy needs classes",
  ),
  ("28x28 inputs", ("problem.input_shape=(28, 28, 1)",), "the digits images are 8x8x1"),
)


def attempt(session: study.Session, config_file: str) -> list[dict]:
  """Each mismatched card through jaxflow.seeds: refused or not, the message, the seconds it took, and
  whether its workdir was left behind."""
  out = []
  for name, overrides, why in MISMATCHES:
    arm = study.Arm(f"mismatch {name}", config_file, overrides)
    workdir = os.path.join(session.root, "mismatch_" + "".join(c if c.isalnum() else "_" for c in name))
    start = time.perf_counter()
    try:
      config = session.config(arm)
      jaxflow.seeds(config, workdir, seeds=1, mode="sequential")
      message, refused = "(not refused: it trained)", False
    except jaxflow.ConfigError as e:
      message, refused = str(e), True
    out.append(
      {
        "card": name,
        "overrides": list(overrides),
        "why": why,
        "refused": refused,
        "message": message,
        "seconds": round(time.perf_counter() - start, 2),
        "workdir_written": os.path.exists(workdir),
      }
    )
  return out


def table(refused: list[dict]) -> report.Table:
  rows = [
    [
      r["card"],
      " ".join(f"`{o}`" for o in r["overrides"]),
      r["why"],
      ("refused" if r["refused"] else "**trained**") + f" in {r['seconds']:.2f} s",
      "yes" if r["workdir_written"] else "no",
      r["message"].replace("|", "\\|"),
    ]
    for r in refused
  ]
  header = ["mismatched card", "overrides", "why it does not fit", "outcome", "workdir written", "message"]
  return report.Table("Cards that do not fit the data", header, rows)
