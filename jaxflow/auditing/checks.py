"""`audit`: every check of the dataset audit run on plain numpy splits, collected into one report.

Five checks, each a section of one JSON-serializable report: class balance (`balance`); exact and near
duplicates (within a split, and across splits = leakage) and identical inputs with different labels
(label noise) (`duplicates`); train/eval shift of input statistics and of the label distribution
(measurement bias, `shift`); association of per-example metadata with the label (sample bias: the
tanks that were all photographed by day, `bias`). Every section states its own definition, so a reader
of report.json or report.md never has to read this code to know what a number means. `summary.findings`
holds one sentence per flagged problem (`findings`). `jaxflow.auditing.report.write_report` writes it out.
"""

from __future__ import annotations

import numpy as np

from jaxflow.auditing import splits as splits_lib
from jaxflow.auditing.balance import class_balance
from jaxflow.auditing.bias import attribute_bias
from jaxflow.auditing.duplicates import conflicting_labels, duplicates
from jaxflow.auditing.findings import summary
from jaxflow.auditing.shift import shift
from jaxflow.auditing.splits import AuditSplit, AuditThresholds


def audit(
  splits: dict[str, AuditSplit],
  *,
  num_classes: int,
  class_names: list[str] | None = None,
  train_split: str = "train",
  eval_split: str | None = "test",
  thresholds: AuditThresholds = AuditThresholds(),
) -> dict:
  """The audit report of `splits` (see the module docstring); `eval_split` None skips the shift test.

  Splits are compared pairwise for duplicates and conflicting labels (every pair: a validation split
  can leak as well as a test split); input and label shift compare `train_split` with `eval_split`.
  """
  names = splits_lib.check_inputs(splits, num_classes, class_names, train_split, eval_split)
  order = [train_split] + [s for s in splits if s != train_split]
  splits = {s: splits[s] for s in order}
  flats = {s: splits_lib.flat(sp.inputs) for s, sp in splits.items()}
  splits_lib.check_finite(flats)
  labels = {s: np.asarray(sp.labels).astype(np.int64) for s, sp in splits.items()}
  ids = splits_lib.input_ids(flats)
  t = thresholds
  report = {
    "meta": splits_lib.meta(splits, names, train_split, eval_split, t),
    "class_balance": class_balance(labels, num_classes, t.imbalance_ratio),
    "duplicates": duplicates(flats, labels, ids, t),
    "conflicting_labels": conflicting_labels(labels, ids, t.max_examples),
    "shift": shift(splits, labels, num_classes, train_split, eval_split, t),
    "attribute_bias": attribute_bias(splits, labels, num_classes, t),
  }
  report["summary"] = summary(report, names, t)
  return report
