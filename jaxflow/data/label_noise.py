"""Label noise injected on purpose: how much does a model suffer from wrong labels, and can it be found?

Flips are drawn from the run's `noise` PRNG stream (through an integer seed), so a study can vary the
noise and hold everything else fixed. The clean labels are never lost: the loop writes both label
vectors and the flipped positions to the workdir (`label_noise.npz`, summary in `label_noise.json`).

Kinds:
- symmetric: with probability `rate` a label becomes one of the other C - 1 classes, uniformly.
- pairflip: with probability `rate` class c becomes c + 1 (mod C): the class-dependent "confusable
  neighbour" noise of Han et al. 2018.
- matrix: a C x C transition matrix T, T[i, j] = P(noisy j | clean i), rows summing to 1 (`rate` unused).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np

NOISE_KINDS = ("symmetric", "pairflip", "matrix")


class LabelNoiseError(ValueError):
  """A label-noise setting that cannot be applied; one line naming the field."""


def transition_matrix(
  num_classes: int, *, kind: str, rate: float, matrix: Sequence[Sequence[float]] | None = None
) -> np.ndarray:
  """T[i, j] = P(noisy label j | clean label i), checked."""
  if kind not in NOISE_KINDS:
    raise LabelNoiseError(f"data.label_noise.kind={kind!r} is not known; allowed: {', '.join(NOISE_KINDS)}")
  if kind == "matrix":
    if matrix is None:
      raise LabelNoiseError("data.label_noise.kind='matrix' needs data.label_noise.matrix, a C x C tuple of rows")
    t = np.asarray(matrix, np.float64)
    if t.shape != (num_classes, num_classes) or (t < 0).any() or not np.allclose(t.sum(axis=1), 1.0, atol=1e-6):
      raise LabelNoiseError(
        f"data.label_noise.matrix must be {num_classes} x {num_classes} with non-negative rows summing to 1; got "
        f"shape {t.shape}"
      )
    return t
  if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
    raise LabelNoiseError(f"data.label_noise.rate={rate!r} must be in [0, 1]")
  if num_classes < 2:
    raise LabelNoiseError("data.label_noise needs at least 2 classes")
  t = np.eye(num_classes) * (1.0 - rate)
  if kind == "symmetric":
    t += (1.0 - np.eye(num_classes)) * rate / (num_classes - 1)
  else:
    t[np.arange(num_classes), (np.arange(num_classes) + 1) % num_classes] += rate
  return t


@dataclasses.dataclass(frozen=True)
class NoisyLabels:
  clean: np.ndarray  # int32 [n]
  noisy: np.ndarray  # int32 [n]
  transition: np.ndarray  # [C, C] the matrix drawn from

  @property
  def flipped(self) -> np.ndarray:
    return np.flatnonzero(self.clean != self.noisy)

  def summary(self) -> dict:
    """Realized noise, per class: what a report on this run should state."""
    num_classes = self.transition.shape[0]
    clean_counts = np.bincount(self.clean, minlength=num_classes)
    flipped_counts = np.bincount(self.clean[self.flipped], minlength=num_classes)
    return {
      "examples": int(self.clean.size),
      "flipped": int(self.flipped.size),
      "realized_rate": float(self.flipped.size / max(self.clean.size, 1)),
      "expected_rate": float(np.dot(clean_counts, 1.0 - np.diag(self.transition)) / max(self.clean.size, 1)),
      "flipped_per_class": flipped_counts.tolist(),
      "examples_per_class": clean_counts.tolist(),
      "transition": self.transition.tolist(),
    }


def corrupt(labels: np.ndarray, transition: np.ndarray, seed: int) -> NoisyLabels:
  """Draws each example's noisy label from row `transition[clean]` (inverse-CDF on one uniform each)."""
  rng = np.random.default_rng(seed)
  cdf = np.cumsum(transition, axis=1)
  cdf[:, -1] = 1.0  # rows sum to 1 up to rounding; the last bin must catch u close to 1
  u = rng.random(labels.shape[0])
  noisy = np.argmax(u[:, None] < cdf[labels], axis=1).astype(np.int32)
  return NoisyLabels(clean=labels.astype(np.int32), noisy=noisy, transition=transition)


def save(noisy: NoisyLabels, npz_path: str) -> None:
  """Both label vectors, the flips and the transition matrix, written whole or not at all."""
  tmp = f"{npz_path}.{os.getpid()}.tmp.npz"
  np.savez(tmp, clean_labels=noisy.clean, noisy_labels=noisy.noisy, flipped=noisy.flipped, transition=noisy.transition)
  os.replace(tmp, npz_path)
