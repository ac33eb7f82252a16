"""The regression dataset: scikit-learn's 8x8 digits with the digit's value as the target, written as an NPZ,
with or without planted outliers among the training targets.

Why a built dataset: the question is what gross target errors do to L2 against L1, so the errors must be known
and confined to training (the test targets stay clean: what is measured is how well each loss recovers the true
value). The split is jaxflow's own digits split (stratified 80/20, random_state 0: 1437 / 360). An outlier is a
training row whose target is replaced by a value drawn uniformly from 30..99 (a gross recording error, far from
every true value 0..9); which rows and which values are fixed (OUTLIER_SEED), the same in every seed. jaxflow's NPZ
reader takes integer (or string) labels only, so the targets are integers; regression reads them as numbers.
"""

from __future__ import annotations

import os

import numpy as np

SPLIT_SEED, OUTLIER_SEED = 0, 1
OUTLIER_LOW, OUTLIER_HIGH = 30, 99


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(train images, train labels, test images, test labels): uint8 [n, 8, 8, 1], as jaxflow ships digits."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  x_tr, x_te, y_tr, y_te = train_test_split(
    images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=SPLIT_SEED
  )
  return x_tr, y_tr, x_te, y_te


def build(path: str, outlier_share: float) -> dict:
  """Writes the NPZ (x, y, split) with `outlier_share` of the training targets replaced; returns its counts."""
  x_tr, y_tr, x_te, y_te = digits()
  rng = np.random.default_rng(OUTLIER_SEED)
  y_tr = y_tr.astype(np.int64).copy()
  chosen = rng.choice(len(y_tr), size=int(round(outlier_share * len(y_tr))), replace=False)
  y_tr[chosen] = rng.integers(OUTLIER_LOW, OUTLIER_HIGH + 1, size=len(chosen))
  x = np.concatenate([x_tr, x_te])
  y = np.concatenate([y_tr, y_te]).astype(np.int64)
  split = np.array(["train"] * len(y_tr) + ["test"] * len(y_te))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x, y=y, split=split)
  return {
    "train_rows": int(len(y_tr)),
    "outliers": int(len(chosen)),
    "train_target_mean": float(y_tr.mean()),
    "train_target_median": float(np.median(y_tr)),
    "test_rows": int(len(y_te)),
  }
