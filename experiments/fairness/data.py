"""The study's dataset: scikit-learn's 8x8 digits with a group attribute, written as an NPZ per arm.

Why a built dataset: the digits carry no attribute that marks a group, so one is made. The minority's
images are inverted (255 - x: white digits on black), a shift of the input distribution that keeps every
label recoverable, so what a model loses on the minority comes from seeing too few of its images, not from
a harder task. The split is jaxflow's own digits split (stratified 80/20, random_state 0: 1437 / 360); the
minority is a stratified share of the training split (5% in the baseline) but half of the test split, so
that both groups have 180 test images and their accuracies have the same resolution (1/180).
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

GROUP = "group"
MAJORITY, MINORITY = "majority", "minority"
SPLIT_SEED = 0  # jaxflow/data/digits.py's split, and the fixed choice of which images form the minority


@dataclasses.dataclass(frozen=True)
class Mix:
  """One training set: the minority's share of the distinct training images, and how many times each
  minority row is written (1: once; k: k copies, the uniform sampler then draws it k times as often)."""

  minority_share: float
  copies: int = 1


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(train images, train labels, test images, test labels): uint8 [n, 8, 8, 1], as jaxflow ships digits."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  x_tr, x_te, y_tr, y_te = train_test_split(
    images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=SPLIT_SEED
  )
  return x_tr, y_tr, x_te, y_te


def _stratified_mask(labels: np.ndarray, share: float) -> np.ndarray:
  """A fixed stratified share of the rows (True: minority); 0 and 1 are all-False and all-True."""
  mask = np.zeros(len(labels), bool)
  if share <= 0:
    return mask
  if share >= 1:
    return ~mask
  from sklearn.model_selection import train_test_split

  chosen, _ = train_test_split(np.arange(len(labels)), train_size=share, stratify=labels, random_state=SPLIT_SEED)
  mask[chosen] = True
  return mask


def build(path: str, mix: Mix) -> dict:
  """Writes the NPZ (arrays x, y, split, group) of `mix` to `path`; returns its counts for the report."""
  x_tr, y_tr, x_te, y_te = _digits()
  minority_tr, minority_te = _stratified_mask(y_tr, mix.minority_share), _stratified_mask(y_te, 0.5)
  x_tr, x_te = x_tr.copy(), x_te.copy()
  x_tr[minority_tr], x_te[minority_te] = 255 - x_tr[minority_tr], 255 - x_te[minority_te]
  extra = np.repeat(np.flatnonzero(minority_tr), mix.copies - 1)  # the minority's additional copies
  # One fixed shuffle of the training rows: the sampler permutes them anyway, and a prefix of the file
  # (`data.train_examples`, the quick run) then holds the same mix as the whole.
  order = np.random.default_rng(SPLIT_SEED).permutation(np.concatenate([np.arange(len(y_tr)), extra]))
  x = np.concatenate([x_tr[order], x_te])
  y = np.concatenate([y_tr[order], y_te]).astype(np.int64)
  group = np.where(np.concatenate([minority_tr[order], minority_te]), MINORITY, MAJORITY)
  split = np.array(["train"] * len(order) + ["test"] * len(y_te))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x, y=y, split=split, group=group)
  rows = int(len(order))
  return {
    "train_rows": rows,
    "train_distinct_minority": int(minority_tr.sum()),
    "train_minority_rows": int(minority_tr[order].sum()),
    "train_minority_draw_share": float(minority_tr[order].sum() / rows),
    "test_majority": int((~minority_te).sum()),
    "test_minority": int(minority_te.sum()),
  }
