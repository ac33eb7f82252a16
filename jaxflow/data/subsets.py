"""Which examples of a split a run uses: a class subset and a size limit (transfer-learning studies)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def select_examples(
  labels: np.ndarray, *, classes: Sequence[int] | None = None, limit: int | None = None
) -> np.ndarray:
  """Indices of the examples whose label is in `classes` (all when None), the first `limit` of them.

  The first, not a random draw: stored order is already shuffled (digits: a stratified split), and a
  subset that does not depend on any seed is what lets a fine-tuned and a from-scratch run see the same data.
  """
  keep = np.arange(labels.shape[0]) if classes is None else np.flatnonzero(np.isin(labels, np.asarray(classes)))
  return keep if limit is None else keep[:limit]
