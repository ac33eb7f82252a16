"""A user's source parsed and checked (`Table`), and the rules every reader of one shares.

The folder, CSV and NPZ readers each turn a file into a `Table` that `builder` hands to tfds; what they
have in common lives here: the stored feature names, split names and the stored order of each split,
integer or string labels as classes, and the description tfds keeps with the dataset.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxflow.data.store import DatasetError

SHUFFLE_SEED = 0  # The fixed order of unsplit sources and of folder splits; part of the dataset's definition.
SPLIT_COLUMN = "split"
MAX_INT_CLASSES = 100_000
INPUT_FEATURE = "features"  # csv and npz; folders keep tfds' usual "image"
PROVENANCE_FEATURE = {"folder": "filename", "csv": "csv_line", "npz": "npz_index"}

_SPLIT_NAME_RE = re.compile(r"[A-Za-z0-9_]+")


@dataclasses.dataclass(frozen=True)
class Table:
  """A source parsed and checked, ready for tfds.

  `features` maps a feature name to ('image', shape) | ('class', names) | ('array', dtype, shape) |
  ('text',); `splits` maps a split name to {feature: values in stored order}.
  """

  features: dict[str, tuple]
  splits: dict[str, dict[str, Any]]
  description: str


def ordered_splits(names: Sequence[str]) -> list[str]:
  """'train' first, then the others sorted: the order `dataset_spec` reports them in."""
  return sorted(set(names), key=lambda s: (s != "train", s))


def check_split_name(value: str, where: str) -> None:
  if not _SPLIT_NAME_RE.fullmatch(value) or value == "all":
    raise DatasetError(
      f"{where}: split name {value!r} must be letters, digits and underscores, and not 'all' "
      "(tfds reads 'all' as every split)."
    )


def split_order(split_of_row: Sequence[str] | None, n: int) -> dict[str, np.ndarray]:
  """Row indices of each split in stored order: file order for named splits, else all shuffled 'train'."""
  if split_of_row is None:
    return {"train": np.random.default_rng(SHUFFLE_SEED).permutation(n)}
  split_of_row = np.asarray(split_of_row)
  return {s: np.flatnonzero(split_of_row == s) for s in ordered_splits(split_of_row.tolist())}


def select(columns: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
  return {f: (v[rows] if isinstance(v, np.ndarray) else [v[i] for i in rows]) for f, v in columns.items()}


def class_spec(names: Sequence[str]) -> tuple:
  return ("class", tuple(names))


def describe(kind: str, path: str, extra: str) -> str:
  return f"jaxflow {kind} source {path}; {extra}"


def split_description(split_of_row: Sequence[str] | None, what: str, where: str) -> str:
  """How a CSV's or NPZ's rows were assigned to splits, for the dataset's description."""
  if split_of_row:
    return f"splits from the 'split' {what}, in {where} order."
  return f"all rows 'train' in the order np.random.default_rng({SHUFFLE_SEED}).permutation(n)."


# --- Labels shared by CSV and NPZ ----------------------------------------------------------------------


def _int_class_names(labels: np.ndarray) -> tuple[str, ...]:
  return tuple(str(c) for c in range(int(labels.max()) + 1))


def int_labels_checked(labels: np.ndarray, where: Callable[[int], str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """Integer labels are classes 0..max: negative ones are refused, and so is a max that would make a
  ClassLabel of absurdly many names (sparse ids such as 1000003 are names, not class numbers)."""
  negative = np.flatnonzero(labels < 0)
  if negative.size:
    i = int(negative[0])
    raise DatasetError(f"{where(i)}: label {int(labels[i])} is not a class (integer labels are classes 0..max).")
  if labels.max() >= MAX_INT_CLASSES:
    i = int(np.argmax(labels))
    raise DatasetError(
      f"{where(i)}: label {int(labels[i])} would make {int(labels[i]) + 1} classes (integer labels are "
      f"classes 0..max, at most {MAX_INT_CLASSES}); renumber them 0..k-1."
    )
  labels = labels.astype(np.int64)
  return labels, _int_class_names(labels)


def string_labels(labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
  names = tuple(sorted(set(labels)))
  index = {c: i for i, c in enumerate(names)}
  return np.asarray([index[v] for v in labels], np.int64), names
