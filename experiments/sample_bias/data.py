"""The study's dataset: scikit-learn's 8x8 digits as a binary "tank" task, photographed by day or by night.

Why built: the tank story needs a nuisance attribute that a photographer could have confounded with the label,
and the digits carry none, so one is planted. "Tank" is a digit 5-9, "no tank" a digit 0-4 (a balanced binary
task whose real cue is the digit's shape). "Day" lifts every pixel towards white (x -> DAY + (1 - DAY) x: a grey
sky behind the strokes; the change is largest where there is no ink), "night" leaves the image as it is (black
background). In training, a share `correlation` of each class is shot in its "own" light (tank by day, no tank
by night, the aligned cells) and the rest in the other light (the conflicting cells); 0.5 is no correlation.

The test split is counterfactual: every one of jaxflow's 360 test images appears twice, once by day and once by
night, adjacent. Its `bias` column says whether the row's light is the one its class had in a shortcut training
set (aligned) or the other (conflicting), so one evaluation gives: aligned accuracy (the tank story's own test
photos), conflicting accuracy (the light reversed, the worst case), their mean (light independent of the label)
and, for a training correlation p, the in-distribution accuracy p x aligned + (1 - p) x conflicting, all on the
same 360 digits (differences come from the light alone). The `daylight` column is what `jaxflow audit` reads.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

DAYLIGHT, BIAS = "daylight", "bias"  # NPZ metadata columns: the attribute, and the evaluation group
DAY, NIGHT = "day", "night"
ALIGNED, CONFLICTING = "aligned", "conflicting"
CLASS_NAMES = ("no tank (digit 0-4)", "tank (digit 5-9)")
DAY_LEVEL = 0.3  # a day image's background brightness (pixels in [0, 1]; night's background is 0)
SPLIT_SEED = 0  # jaxflow/data/digits.py's split, and the fixed choice of which images are shot in which light


@dataclasses.dataclass(frozen=True)
class Lighting:
  """One training set: the share of each class shot in its aligned light, and how many times each
  conflicting row is written (k > 1: the rare light x label cells oversampled by row duplication)."""

  correlation: float
  conflicting_copies: int = 1


def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """(train images, train labels, test images, test labels): float32 [n, 8, 8, 1] in [0, 1], binary labels."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = (bunch.images / 16.0).astype(np.float32)[..., None]
  x_tr, x_te, y_tr, y_te = train_test_split(
    images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=SPLIT_SEED
  )
  return x_tr, (y_tr >= 5).astype(np.int64), x_te, (y_te >= 5).astype(np.int64)


def relight(x: np.ndarray, day: np.ndarray) -> np.ndarray:
  """Day rows lifted towards white (DAY + (1 - DAY) x), night rows as they are."""
  lifted = DAY_LEVEL + (1.0 - DAY_LEVEL) * x
  return np.where(day.reshape(-1, *([1] * (x.ndim - 1))), lifted, x).astype(np.float32)


def aligned_light(labels: np.ndarray) -> np.ndarray:
  """True (day) where the label is tank: the light each class has in a shortcut training set."""
  return labels == 1


def _aligned_mask(labels: np.ndarray, correlation: float) -> np.ndarray:
  """Per class, a fixed round(correlation x n_c) of its images shot in the aligned light."""
  rng = np.random.default_rng(SPLIT_SEED)
  mask = np.zeros(len(labels), bool)
  for c in np.unique(labels):
    rows = rng.permutation(np.flatnonzero(labels == c))
    mask[rows[: int(round(correlation * len(rows)))]] = True
  return mask


def build(path: str, lighting: Lighting) -> dict:
  """Writes the NPZ (x float32 [n, 8, 8, 1], y, split, daylight, bias) of `lighting`; returns its counts."""
  x_tr, y_tr, x_te, y_te = _digits()
  aligned = _aligned_mask(y_tr, lighting.correlation)
  day_tr = np.where(aligned, aligned_light(y_tr), ~aligned_light(y_tr))
  extra = np.repeat(np.flatnonzero(~aligned), lighting.conflicting_copies - 1)
  # One fixed shuffle: the sampler permutes anyway, and a prefix (`data.train_examples`, quick) has the mix.
  order = np.random.default_rng(SPLIT_SEED).permutation(np.concatenate([np.arange(len(y_tr)), extra]))
  day_te = np.tile([True, False], len(y_te))  # each test image by day, then by night
  y_te2 = np.repeat(y_te, 2)
  x = np.concatenate([relight(x_tr[order], day_tr[order]), relight(np.repeat(x_te, 2, axis=0), day_te)])
  y = np.concatenate([y_tr[order], y_te2])
  day = np.concatenate([day_tr[order], day_te])
  bias = np.where(day == aligned_light(y), ALIGNED, CONFLICTING)
  split = np.array(["train"] * len(order) + ["test"] * len(y_te2))
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, x=x, y=y, split=split, **{DAYLIGHT: np.where(day, DAY, NIGHT), BIAS: bias})
  rows = len(order)
  cells = {
    f"{name}/{light}": int(((y_tr[order] == c) & (day_tr[order] == (light == DAY))).sum())
    for c, name in enumerate(("no_tank", "tank"))
    for light in (DAY, NIGHT)
  }
  return {
    "train_rows": int(rows),
    "train_distinct": int(len(y_tr)),
    "train_cells": cells,
    "train_aligned_share": float(aligned[order].mean()),
    "train_conflicting_distinct": int((~aligned).sum()),  # the images behind the conflicting rows
    "test_rows": int(len(y_te2)),
    "test_images": int(len(y_te)),
  }


def test_images() -> tuple[np.ndarray, np.ndarray]:
  """The 360 test images before any lighting, and their labels (for the saliency measure)."""
  _, _, x_te, y_te = _digits()
  return x_te, y_te
