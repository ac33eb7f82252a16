"""The study's own datasets, as `npz:` files jaxflow reads like any user's data, and their cleaning by the audit.

Why files of its own: "clean the data" needs a dataset in which the audit's conflict finder can see noise. It
flags identical inputs whose labels disagree; the digits have no such inputs, so on the plain noisy training
set it finds nothing (the study shows that too). A dataset in which every image was labelled twice, each label
noisy on its own (two annotators), is one where it can: the pairs whose labels disagree are flagged. So:

- `splits.npz`: the digits test split (360 images, as jaxflow ships it), `half` (a stratified half of the 1437
  training images, drawn once with numpy's generator seeded 0) and `twice` (that half twice, the copies in the same
  order; jaxflow's `data.label_noise` then flips every row on its own, from the seed's `noise` stream);
- `cleaned.npz`: the test split and, per seed, `clean_s{i}`: the half with every pair the audit flagged as a
  conflict removed and the exact duplicates it lists kept once, with the label both copies agree on.

The digits are rebuilt from scikit-learn exactly as jaxflow/data/digits.py ships them (uint8 pixels 0..255, the
stratified 80/20 split with random_state 0), as experiments/problem_definition does for its test split.
"""

from __future__ import annotations

import os

import numpy as np

import jaxflow

HALF_SEED = 0  # the half is drawn once: every arm trains on the same images, as the whole split is the same too


def digits_splits() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{'train': (uint8 [1437, 8, 8, 1], labels), 'test': (uint8 [360, 8, 8, 1], labels)} as jaxflow ships them."""
  from sklearn.datasets import load_digits  # deferred: only this study needs scikit-learn's copy
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  images = np.round(bunch.images * 255.0 / 16.0).astype(np.uint8)[..., None]
  x_train, x_test, y_train, y_test = train_test_split(
    images, bunch.target, test_size=0.2, stratify=bunch.target, random_state=0
  )
  return {"train": (x_train, y_train), "test": (x_test, y_test)}


def half(labels: np.ndarray, seed: int, per_class: int | None = None) -> np.ndarray:
  """Indices of a stratified half of `labels` (or `per_class` of every class), drawn with seed `seed`."""
  rng = np.random.default_rng(seed)
  picks = []
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    picks.append(rng.permutation(members)[: per_class or len(members) // 2])
  return np.sort(np.concatenate(picks))


def write_npz(path: str, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> str:
  """One npz with arrays x, y and split (one name per row); returns the `data.name` that reads it."""
  x = np.concatenate([v[0] for v in splits.values()])
  y = np.concatenate([v[1] for v in splits.values()]).astype(np.int64)
  split = np.concatenate([np.full(len(v[1]), k) for k, v in splits.items()])
  np.savez(path, x=x, y=y, split=split)
  return f"npz:{path}"


def build_splits(folder: str, per_class: int | None) -> tuple[str, tuple, tuple]:
  """splits.npz (see the module docstring); returns its data.name, the half (images, clean labels) and the test
  split."""
  d = digits_splits()
  x, y = d["train"]
  keep = half(y, HALF_SEED, per_class)
  splits = {
    "half": (x[keep], y[keep]),
    "twice": (np.concatenate([x[keep], x[keep]]), np.concatenate([y[keep], y[keep]])),
    "test": d["test"],
  }
  return write_npz(os.path.join(folder, "splits.npz"), splits), (x[keep], y[keep]), d["test"]


def clean_by_audit(config, workdir: str, clean_labels: np.ndarray) -> dict:
  """Audits the twice-labelled split as training sees it (its label noise drawn from the config's `noise`
  stream) and keeps, of each pair of copies, one image with its label where the audit flags no conflict.
  Returns the kept rows and what the cleaning removed, counted against the clean labels the study knows."""
  config = config.copy_and_resolve_references()
  config.audit.max_examples = 10**6  # list every group, not the first 20: the cleaning needs them all
  audit = jaxflow.audit(config, workdir)
  split = config.data.train_split
  n = len(clean_labels)
  conflicts = audit["conflicting_labels"]["within"][split]
  flagged = {i % n for g in conflicts["groups"] for i in g["indices"]}
  groups = audit["duplicates"]["exact"]["within"][split]["groups"]
  noisy = np.full(2 * n, -1)
  for g in groups:
    noisy[g["indices"]] = g["labels"]
  if (noisy < 0).any() or len(groups) != n:
    raise RuntimeError(f"the audit found {len(groups)} duplicate groups in {split}, expected {n} pairs")
  kept = np.array([j for j in range(n) if j not in flagged], np.int64)
  wrong_before = int((noisy[:n] != clean_labels).sum() + (noisy[n:] != clean_labels).sum())
  wrong_kept = int((noisy[kept] != clean_labels[kept]).sum())
  return {
    "kept": kept,
    "labels": noisy[kept],
    "noisy_labels": noisy,
    "stats": {
      "images": n,
      "conflict_groups": int(conflicts["num_groups"]),
      "kept_images": int(len(kept)),
      "wrong_labels_before": wrong_before,
      "wrong_labels_kept": wrong_kept,
      "kept_noise_rate": wrong_kept / max(len(kept), 1),
    },
  }


def check_against_run(noisy_labels: np.ndarray, workdir: str) -> None:
  """The audit's view of the noisy labels is the training run's own (label_noise.npz of the same seed's run
  on the twice-labelled split): the study cleans exactly the labels that arm trained on."""
  with np.load(os.path.join(workdir, "label_noise.npz")) as z:
    trained = z["noisy_labels"]
  if not np.array_equal(trained, noisy_labels):
    raise RuntimeError(
      f"the audit's noisy labels differ from the run's ({workdir}) in {(trained != noisy_labels).sum()}"
    )


def build_cleaned(folder: str, test: tuple[np.ndarray, np.ndarray], halves: dict[int, tuple]) -> str:
  """cleaned.npz: per seed the kept images and labels (`clean_s{i}`), and the test split."""
  splits = {f"clean_s{i}": v for i, v in halves.items()}
  splits["test"] = test
  return write_npz(os.path.join(folder, "cleaned.npz"), splits)
