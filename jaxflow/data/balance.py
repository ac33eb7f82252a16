"""Class imbalance: drawing a skewed training set from a balanced one, and the remedies' ingredients.

A study of imbalance needs the imbalance under control: `skewed_subset` keeps a chosen number of examples
per class (`data.class_counts`) or a long-tailed profile (`data.imbalance_ratio`), drawn with a seed from
the run's `data` stream, so the same config always trains on the same skewed set. The remedies are
then the config's choice: oversampling (`oversample_probabilities`, drawn on the device from the
`sampler` stream) or a class-weighted loss (`class_weights`); focal loss lives with the losses.
All functions here are host-side numpy on the training labels, run once per run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WEIGHTINGS = ("none", "inverse_frequency", "effective_number")
SAMPLERS = ("uniform", "oversample")


class ImbalanceError(ValueError):
  """A class-count request the split cannot satisfy; one line naming the field."""


def long_tail_counts(available: np.ndarray, ratio: float) -> np.ndarray:
  """Per-class counts falling exponentially from n_max to n_max / ratio (class 0 the head, the last the tail).

  The long-tailed CIFAR recipe (Cui et al. 2019): n_c = n_max * ratio^(-c / (C - 1)), with n_max the
  smallest class's size, so every class can supply its count.
  """
  num_classes = available.shape[0]
  n_max = int(available.min())
  exponents = np.arange(num_classes) / max(num_classes - 1, 1)
  return np.maximum(np.floor(n_max * ratio ** (-exponents)).astype(np.int64), 1)


def requested_counts(
  labels: np.ndarray, num_classes: int, *, class_counts: Sequence[int] | None, imbalance_ratio: float | None
) -> np.ndarray | None:
  """The per-class counts a config asks for, checked against what the split has; None: no skew asked."""
  available = np.bincount(labels, minlength=num_classes)
  if class_counts is not None and imbalance_ratio is not None:
    raise ImbalanceError("data.class_counts and data.imbalance_ratio are both set; set one of them")
  if class_counts is not None:
    counts = np.asarray(class_counts)
    if counts.shape != (num_classes,) or not all(
      isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in class_counts
    ):
      raise ImbalanceError(
        f"data.class_counts={tuple(class_counts)} must be {num_classes} non-negative ints, one per class"
      )
    short = [(c, int(counts[c]), int(available[c])) for c in range(num_classes) if counts[c] > available[c]]
    if short:
      c, asked, have = short[0]
      raise ImbalanceError(
        f"data.class_counts asks {asked} examples of class {c}, the split has {have}; allowed: 0..{have}"
      )
    if counts.sum() == 0:
      raise ImbalanceError("data.class_counts keeps no example at all")
    return counts
  if imbalance_ratio is not None:
    if isinstance(imbalance_ratio, bool) or not isinstance(imbalance_ratio, (int, float)) or not imbalance_ratio >= 1:
      raise ImbalanceError(
        f"data.imbalance_ratio={imbalance_ratio!r} must be a number >= 1 (largest class / smallest class)"
      )
    if available.min() == 0:
      raise ImbalanceError("data.imbalance_ratio needs every class present in the training split")
    return long_tail_counts(available, float(imbalance_ratio))
  return None


def skewed_subset(labels: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
  """Sorted indices keeping `counts[c]` examples of each class c, chosen at random with `seed`.

  Sorted so the kept examples stay in stored order (shuffling is the training loop's job).
  """
  rng = np.random.default_rng(seed)
  keep = [rng.choice(np.flatnonzero(labels == c), size=int(n), replace=False) for c, n in enumerate(counts) if n > 0]
  return np.sort(np.concatenate(keep))


def class_weights(labels: np.ndarray, num_classes: int, method: str, *, beta: float = 0.999) -> np.ndarray:
  """Per-class loss weights [C], normalized so the average weight over the training examples is 1.

  - inverse_frequency: w_c proportional to 1 / n_c.
  - effective_number (Cui et al. 2019): w_c proportional to (1 - beta) / (1 - beta^n_c), the inverse of
    the "effective number" of examples; between no weighting (beta -> 0) and inverse frequency (beta -> 1).
  Normalized to a mean of 1 over the examples, so the weighted loss keeps the scale of the plain one
  and the learning rate means the same. Classes absent from training get weight 0 (nothing to weigh).
  """
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  present = counts > 0
  raw = np.zeros(num_classes)
  if method == "none":
    raw[present] = 1.0
  elif method == "inverse_frequency":
    raw[present] = 1.0 / counts[present]
  elif method == "effective_number":
    raw[present] = (1.0 - beta) / (1.0 - np.power(beta, counts[present]))
  else:
    raise ValueError(f"unknown class weighting {method!r}; allowed: {', '.join(WEIGHTINGS)}")
  return (raw * counts.sum() / np.dot(raw, counts)).astype(np.float32)


def oversample_probabilities(labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Per-example sampling probabilities [n] that make every present class equally likely per draw."""
  counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
  per_example = 1.0 / counts[labels]
  return (per_example / per_example.sum()).astype(np.float32)
