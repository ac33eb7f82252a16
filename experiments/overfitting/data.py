"""The study's dataset: scikit-learn's 8x8 digits as one NPZ whose splits are each seed's small training sets.

Why a built dataset: a train/test gap needs the training accuracy of the very images the model was trained on,
measured as the test accuracy is (eval mode: no dropout, no augmentation). jaxflow evaluates one eval split per
run, but reports per-group metrics of it (`data.group_feature`): so seed i's eval split holds its own training
images (group `train`) next to the 360 test images (group `test`), and one evaluation gives both accuracies
every epoch. Each seed draws its own stratified training set from jaxflow's digits training split (1437 images,
`experiments.losses.data.digits`, the split jaxflow ships), so the answer is not one lucky draw of images; seed i
of every arm trains on the same images (paired).

Splits for seed i (n = SMALL per class x 10 unless said):
- `small{i}`: the small training set; `more{i}`: MORE images that contain `small{i}` (the "more data" arm);
- `fit{i}` + `stop{i}`: `small{i}` cut in two for early stopping (the validation images come out of the same
  labelled budget: a small set has no others); `stop{i}` is that arm's eval split (what it monitors);
- `eval_small{i}`, `eval_more{i}`, `eval_fit{i}`: the training images of that arm (group `train`) + the test split.
"""

from __future__ import annotations

import os

import numpy as np

from experiments.losses.data import digits

GROUP, TRAIN, TEST, HELD_OUT = "role", "train", "test", "held_out"
SMALL, MORE, STOP = 15, 60, 3  # per class: 150 training images, 600 for "more data", 30 of the 150 held out
TEST_IMAGES = 360  # jaxflow's digits test split
SIZES = {"small": 10 * SMALL, "more": 10 * MORE, "fit": 10 * (SMALL - STOP), "stop": 10 * STOP, "test": TEST_IMAGES}


def _per_class(labels: np.ndarray, rng: np.random.Generator, k: int, among: np.ndarray) -> np.ndarray:
  """k indices of each class from `among` (an ordered index array), drawn without replacement."""
  return np.concatenate([rng.permutation(among[labels[among] == c])[:k] for c in range(10)])


def draw(labels: np.ndarray, seed: int) -> dict[str, np.ndarray]:
  """Seed `seed`'s nested index sets into the training split: small within more, stop within small."""
  rng = np.random.default_rng(1000 + seed)
  more = _per_class(labels, rng, MORE, np.arange(len(labels)))
  small = _per_class(labels, rng, SMALL, more)
  stop = _per_class(labels, rng, STOP, small)
  return {"small": small, "more": more, "fit": np.setdiff1d(small, stop), "stop": stop}


def build(path: str, seeds: int) -> dict:
  """Writes the NPZ (x, y, split, role) for `seeds` seeds to `path`; returns the sizes of the sets."""
  x_tr, y_tr, x_te, y_te = digits()
  xs, ys, splits, roles = [], [], [], []

  def add(x, y, split: str, role: str) -> None:
    xs.append(x), ys.append(y), splits.extend([split] * len(y)), roles.extend([role] * len(y))

  for i in range(seeds):
    sets = draw(y_tr, i)
    for name, idx in sets.items():
      add(x_tr[idx], y_tr[idx], f"{name}{i}", HELD_OUT if name == "stop" else TRAIN)
    for name in ("small", "more", "fit"):
      add(x_tr[sets[name]], y_tr[sets[name]], f"eval_{name}{i}", TRAIN)
      add(x_te, y_te, f"eval_{name}{i}", TEST)
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  x, y = np.concatenate(xs), np.concatenate(ys).astype(np.int64)
  np.savez(path, x=x, y=y, split=np.array(splits), role=np.array(roles))
  sizes = {name: int(len(idx)) for name, idx in draw(y_tr, 0).items()}
  assert sizes == {k: v for k, v in SIZES.items() if k in sizes} and len(y_te) == TEST_IMAGES
  return {**sizes, "pool": int(len(y_tr)), "test": int(len(y_te))}
