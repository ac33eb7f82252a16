"""Class balance: per-split class counts, the imbalance ratio, empty classes and out-of-range labels."""

from __future__ import annotations

import numpy as np


def class_balance(labels: dict[str, np.ndarray], num_classes: int, max_ratio: float) -> dict:
  """The report's `class_balance` section."""
  return {
    "definition": (
      f"imbalance ratio = largest class count / smallest nonzero class count; flagged above {max_ratio:g}. "
      "Classes with no examples are listed separately (they do not enter the ratio)."
    ),
    "splits": {s: _balance(y, num_classes, max_ratio) for s, y in labels.items()},
  }


def _balance(y: np.ndarray, num_classes: int, max_ratio: float) -> dict:
  valid = (y >= 0) & (y < num_classes)
  counts = np.bincount(y[valid], minlength=num_classes)
  nonzero = counts[counts > 0]
  ratio = float(nonzero.max() / nonzero.min()) if nonzero.size else None
  return {
    "counts": counts.tolist(),
    "fractions": (counts / max(int(counts.sum()), 1)).tolist(),
    "imbalance_ratio": ratio,
    "largest_class": int(np.argmax(counts)),
    "smallest_nonzero_class": int(np.flatnonzero(counts == nonzero.min())[0]) if nonzero.size else None,
    "empty_classes": np.flatnonzero(counts == 0).tolist(),
    "num_out_of_range_labels": int((~valid).sum()),
    "flagged": bool(ratio is not None and ratio > max_ratio),
  }
