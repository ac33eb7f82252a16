"""What the audit is given (`AuditSplit`, `AuditThresholds`) and the views of it every check shares.

The checks all work on the same few derived arrays: each split's inputs flattened to [n, d] float32,
one hashed id per example (equal exactly for identical bytes, across splits too), and the unordered
split pairs. They are built once here, after the inputs are checked for anything no check could use.
"""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class AuditSplit:
  """One split as arrays; `metadata` maps an attribute name to one value per example."""

  inputs: np.ndarray  # float32 [n, ...]: images [n, h, w, c] (or [n, h, w]) or feature vectors [n, d]
  labels: np.ndarray  # int [n]
  metadata: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class AuditThresholds:
  """When a check raises a finding, and the knobs that decide what the checks look at."""

  imbalance_ratio: float = 3.0  # flag max/min nonzero class count above this
  near_duplicate_ratio: float = 0.1  # near duplicate: L2 <= this x median nearest-neighbour distance
  shift_p_value: float = 0.01  # shift flags need p below this ...
  shift_min_ks: float = 0.1  # ... and a KS statistic (max CDF gap) of at least this
  label_shift_min_tvd: float = 0.1  # ... or, for labels, a total variation distance of at least this
  cramers_v: float = 0.3  # flag attributes whose bias-corrected Cramér's V with the label is >= this
  quantile_bins: int = 5  # numeric attributes with more distinct values than max_categories are binned
  max_categories: int = 10
  max_examples: int = 20  # example groups / pairs listed per comparison
  nn_sample: int = 512  # examples whose exact nearest-neighbour distance sets the near-duplicate scale
  projection_dims: int = 32
  seed: int = 0  # of the sample and the projection: the same data always gives the same report


def check_inputs(splits, num_classes, class_names, train_split, eval_split) -> list[str]:
  """Class names to print; raises ValueError on inputs no section could make sense of."""
  if not splits:
    raise ValueError("audit needs at least one split")
  for name in (train_split, eval_split):
    if name is not None and name not in splits:
      raise ValueError(f"split {name!r} is not among the splits given: {sorted(splits)}")
  if class_names is not None and len(class_names) != num_classes:
    raise ValueError(f"class_names has {len(class_names)} names for num_classes={num_classes}")
  shapes = {s: tuple(sp.inputs.shape[1:]) for s, sp in splits.items()}
  if len(set(shapes.values())) > 1:
    raise ValueError(f"splits have different example shapes: {shapes}")
  for s, sp in splits.items():
    n = sp.inputs.shape[0]
    if n == 0 or np.ndim(sp.labels) != 1 or len(sp.labels) != n:
      raise ValueError(
        f"split {s!r}: need n > 0 inputs and labels of shape [n], got {sp.inputs.shape} and {np.shape(sp.labels)}"
      )
    for key, values in sp.metadata.items():
      if np.shape(values) != (n,):
        raise ValueError(
          f"split {s!r}: metadata {key!r} has shape {np.shape(values)}, need one value per example: ({n},)"
        )
  return list(class_names) if class_names is not None else [str(c) for c in range(num_classes)]


def check_finite(flats: dict[str, np.ndarray]) -> None:
  """NaN or inf would poison every statistic (and strict JSON): refuse them, naming the examples."""
  for s, x in flats.items():
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
      raise ValueError(f"split {s!r}: {bad.size} examples have NaN or infinite inputs, e.g. indices {bad[:5].tolist()}")


def flat(inputs: np.ndarray) -> np.ndarray:
  """The inputs as one contiguous float32 row per example."""
  return np.ascontiguousarray(np.asarray(inputs, np.float32).reshape(inputs.shape[0], -1))


def input_ids(flats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
  """One int per example, equal exactly when two examples (of any splits) have the same float32 bytes.

  Bytes are hashed (BLAKE2b, 128 bits: a collision is never going to happen) rather than compared, so
  grouping is one pass whatever n is.
  """
  digests = {s: [hashlib.blake2b(row.tobytes(), digest_size=16).digest() for row in x] for s, x in flats.items()}
  index: dict[bytes, int] = {}
  return {s: np.array([index.setdefault(d, len(index)) for d in ds], np.int64) for s, ds in digests.items()}


def meta(splits, names, train_split, eval_split, t: AuditThresholds) -> dict:
  """The report's `meta` section: classes, which split is which, shapes, metadata keys, thresholds."""
  return {
    "num_classes": len(names),
    "class_names": names,
    "train_split": train_split,
    "eval_split": eval_split,
    "splits": {
      s: {
        "num_examples": int(sp.inputs.shape[0]),
        "example_shape": list(sp.inputs.shape[1:]),
        "metadata": sorted(sp.metadata),
      }
      for s, sp in splits.items()
    },
    "thresholds": dataclasses.asdict(t),
  }


def split_pairs(names: list[str]) -> list[tuple[str, str]]:
  """Every unordered pair, in split order: the train split (first) is always `a` of its pairs."""
  return [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
