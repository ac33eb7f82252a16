"""How much the seeds of a sweep agree, example by example: disagreement, correlation, the ensemble.

Everything is numpy on the per-seed class probabilities of the eval split ([seeds, examples, classes]):

- pairwise disagreement: the share of eval examples on which two seeds' argmax differ, averaged over every
  pair of seeds (Summers & Dinneen 2021's measure of instability);
- correlation of correctness: Pearson's r between two seeds' 0/1 "example classified right" vectors, averaged
  over pairs (undefined for a seed that gets every example right or every one wrong: left out);
- the ensemble: the mean of the seeds' probabilities, its accuracy beside the mean single-seed accuracy;
- per example: the share of seed pairs that disagree on it (its mean over examples is the pairwise
  disagreement), and the examples with the most disagreement.

Confidence intervals are percentile bootstraps **over seeds**, never over pairs: the seeds are the
independent draws (each one's randomness is its own), while the S(S-1)/2 pairs are not (every seed is in
S-1 of them), so resampling pairs would treat dependent numbers as independent and give too narrow an
interval. A pairwise mean is recomputed on each resample of seeds over the pairs of distinct original seeds
(a seed drawn twice is not paired with its copy, which would count a disagreement of 0). With few seeds
the interval is rough, and a bootstrap of a std is biased low: read them as the spread's order of magnitude.
"""

from __future__ import annotations

import numpy as np

from jaxflow.seeds.stats import CONFIDENCE

RESAMPLES = 2000
CI_METHOD = (
  "95% percentile bootstrap over seeds (2000 resamples, seeded): seeds are the independent units; pairs share "
  "seeds, so a bootstrap over pairs would be too narrow. Pairwise means use distinct original seeds only."
)


def predictions(probabilities: np.ndarray) -> np.ndarray:
  """[S, N, C] -> [S, N] argmax class per seed and example."""
  return np.argmax(probabilities, axis=-1)


def pairwise_disagreement(preds: np.ndarray) -> np.ndarray:
  """[S, N] predictions -> [S, S]: the share of examples on which seeds a and b predict different classes."""
  return (preds[:, None, :] != preds[None, :, :]).mean(axis=-1)


def correctness_correlation(preds: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """[S, S] Pearson correlation of the seeds' per-example correctness; NaN where a seed's correctness is
  constant (every example right, or every one wrong)."""
  correct = (preds == labels[None, :]).astype(np.float64)
  centered = correct - correct.mean(axis=1, keepdims=True)
  norms = np.sqrt((centered**2).sum(axis=1))
  with np.errstate(invalid="ignore", divide="ignore"):
    r = (centered @ centered.T) / np.outer(norms, norms)
  r[np.outer(norms, norms) == 0] = np.nan
  return np.clip(r, -1.0, 1.0)  # rounding may put r a hair past 1


def mean_pairwise(matrix: np.ndarray) -> float | None:
  """The mean over pairs of distinct seeds (the upper triangle), NaN pairs left out; None without a pair."""
  values = matrix[np.triu_indices(matrix.shape[0], k=1)]
  values = values[~np.isnan(values)]
  return float(values.mean()) if values.size else None


def _interval(samples: np.ndarray) -> list[float] | None:
  samples = samples[~np.isnan(samples)]
  if samples.size == 0:
    return None
  tail = (1 - CONFIDENCE) / 2
  return [float(np.quantile(samples, tail)), float(np.quantile(samples, 1 - tail))]


def _resamples(seeds: int, seed: int) -> np.ndarray:
  return np.random.default_rng(seed).integers(0, seeds, size=(RESAMPLES, seeds))


def bootstrap_pairwise_ci(matrix: np.ndarray, *, seed: int = 0) -> list[float] | None:
  """95% interval of `mean_pairwise(matrix)` by resampling seeds (see the module docstring)."""
  s = matrix.shape[0]
  if s < 2:
    return None
  idx = _resamples(s, seed)
  sub = matrix[idx[:, :, None], idx[:, None, :]]  # [R, S, S]
  keep = (idx[:, :, None] != idx[:, None, :]) & ~np.isnan(sub)
  counts = keep.sum(axis=(1, 2))
  with np.errstate(invalid="ignore", divide="ignore"):
    means = np.where(keep, sub, 0.0).sum(axis=(1, 2)) / counts
  return _interval(means[counts > 0])


def std_with_ci(values, *, seed: int = 0) -> dict:
  """The std (ddof=1) of one number per seed, with a 95% bootstrap-over-seeds interval."""
  x = np.asarray([v for v in values if v is not None], np.float64)
  if x.size < 2:
    return {"n": int(x.size), "std": None, "ci95": None}
  samples = x[_resamples(x.size, seed)].std(axis=1, ddof=1)
  return {"n": int(x.size), "std": float(x.std(ddof=1)), "ci95": _interval(samples)}


def per_example_disagreement(preds: np.ndarray) -> np.ndarray:
  """[S, N] -> [N]: the share of seed pairs that predict different classes on each example. With c_k seeds
  predicting class k: (S^2 - sum_k c_k^2) / (S (S - 1)). Its mean over examples is the pairwise disagreement."""
  s = preds.shape[0]
  if s < 2:
    return np.zeros(preds.shape[1])
  counts = np.stack([(preds == k).sum(axis=0) for k in np.unique(preds)])
  return (s * s - (counts**2).sum(axis=0)) / (s * (s - 1))


def ensemble(probabilities: np.ndarray, labels: np.ndarray) -> dict:
  """The ensemble (mean probabilities over seeds) against the seeds one by one."""
  single = (predictions(probabilities) == labels[None, :]).mean(axis=1)
  ensembled = np.argmax(probabilities.mean(axis=0), axis=-1)
  accuracy = float((ensembled == labels).mean())
  return {
    "accuracy": accuracy,
    "mean_single_accuracy": float(single.mean()),
    "gain": accuracy - float(single.mean()),
    "single_accuracies": [float(a) for a in single],
    "predictions": ensembled,
  }


def most_disputed(per_example: np.ndarray, k: int) -> np.ndarray:
  """The indices of the `k` examples with the highest disagreement (ties: lower index first), disagreement > 0."""
  order = np.lexsort((np.arange(per_example.size), -per_example))
  return order[per_example[order] > 0][:k]


def summarize(probabilities: np.ndarray, labels: np.ndarray, *, top: int = 16) -> dict:
  """Everything above for one sweep: the numbers the report shows, and the per-example arrays it saves."""
  preds = predictions(probabilities)
  disagreement = pairwise_disagreement(preds)
  correlation = correctness_correlation(preds, labels)
  per_example = per_example_disagreement(preds)
  ens = ensemble(probabilities, labels)
  return {
    "disagreement": {"mean": mean_pairwise(disagreement), "ci95": bootstrap_pairwise_ci(disagreement)},
    "correctness_correlation": {"mean": mean_pairwise(correlation), "ci95": bootstrap_pairwise_ci(correlation)},
    "ensemble": {k: v for k, v in ens.items() if k != "predictions"},
    "examples": int(labels.size),
    "examples_any_disagreement": float((per_example > 0).mean()),
    "arrays": {  # saved to disputed.npz / predictions.npz by the report, not put in report.json
      "predictions": preds,
      "ensemble_predictions": ens["predictions"],
      "per_example_disagreement": per_example,
      "disputed": most_disputed(per_example, top),
    },
  }
