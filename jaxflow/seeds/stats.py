"""Statistics for studies over seeds: summaries, confidence intervals, how many seeds, two-sample tests.

All of it on plain numpy arrays of one number per seed (a final test accuracy, say), with scipy.stats for
the tests. The bootstrap is seeded, so a report recomputed from the same numbers says the same thing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from jaxflow.rng import PERTURBATIONS  # not a source of a plain run's randomness: outside the sum compared with `all`

CONFIDENCE = 0.95


def describe(values) -> dict:
  """n, mean, std (ddof=1), min, max, median and a 95% bootstrap CI of the mean (percentile method)."""
  x = np.asarray(values, np.float64)
  out = {
    "n": int(x.size),
    "mean": float(x.mean()) if x.size else None,
    "std": float(x.std(ddof=1)) if x.size > 1 else 0.0,
    "min": float(x.min()) if x.size else None,
    "max": float(x.max()) if x.size else None,
    "median": float(np.median(x)) if x.size else None,
  }
  out["ci95_mean"] = bootstrap_ci(x) if x.size > 1 else None
  return out


def bootstrap_ci(values, *, resamples: int = 10_000, seed: int = 0, confidence: float = CONFIDENCE) -> list[float]:
  """Percentile bootstrap interval of the mean. With all values equal it is the point itself."""
  x = np.asarray(values, np.float64)
  if np.all(x == x[0]):
    return [float(x[0]), float(x[0])]
  rng = np.random.default_rng(seed)
  means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
  tail = (1 - confidence) / 2
  return [float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))]


def seeds_needed(
  std: float, half_width: float, *, confidence: float = CONFIDENCE, max_seeds: int = 100_000
) -> int | None:
  """The smallest n whose t-interval of the mean, mean +- t(n-1) * std / sqrt(n), is within +-half_width.

  `std` is the per-seed standard deviation measured by the study (itself uncertain with few seeds, which
  the report says). 0 std needs 1 seed (2 to estimate a spread); None past `max_seeds`.
  """
  if std <= 0:
    return 1
  q = 1 - (1 - confidence) / 2
  n = max(2, math.ceil((stats.norm.ppf(q) * std / half_width) ** 2))  # the normal answer is a lower bound
  while n <= max_seeds:
    if stats.t.ppf(q, n - 1) * std / math.sqrt(n) <= half_width:
      return n
    n += 1
  return None


def compare(a, b, *, confidence: float = CONFIDENCE) -> dict:
  """Two samples (one value per seed): difference of means with a Welch t-interval, Welch's t-test and
  the Mann-Whitney U test. `a_beats_b` only when the interval excludes 0 and both tests reject at 5%."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  diff = float(a.mean() - b.mean())
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se = math.sqrt(va + vb)
  if se == 0:
    interval, welch_p, dof = [diff, diff], (0.0 if diff != 0 else 1.0), float("nan")
  else:
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = stats.t.ppf(1 - (1 - confidence) / 2, dof)
    interval = [diff - t * se, diff + t * se]
    welch_p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
  mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
  significant = (interval[0] > 0 or interval[1] < 0) and welch_p < 0.05 and mwu.pvalue < 0.05
  return {
    "n_a": int(a.size),
    "n_b": int(b.size),
    "mean_a": float(a.mean()),
    "mean_b": float(b.mean()),
    "difference": diff,
    "difference_ci95": [float(v) for v in interval],
    "welch_dof": float(dof),
    "welch_t_p": welch_p,
    "mann_whitney_u": float(mwu.statistic),
    "mann_whitney_p": float(mwu.pvalue),
    "a_beats_b": bool(significant and diff > 0),
    "b_beats_a": bool(significant and diff < 0),
  }


def variance_by_source(values_by_source: dict[str, list[float]]) -> dict:
  """Per source (a sweep that varied only that PRNG stream): variance, std, and its share of the sum
  of the single-source variances; with an `all` sweep, how that sum compares with the variance when
  every source varies at once (about 1 if the sources add up independently)."""
  single = {k: v for k, v in values_by_source.items() if k not in ("all", "none", *PERTURBATIONS)}
  # Identical values have variance exactly 0 (np.var's mean of equal floats can be off by an ulp).
  variances = {
    k: float(np.var(v, ddof=1)) if len(v) > 1 and len(set(v)) > 1 else 0.0 for k, v in values_by_source.items()
  }
  total = sum(variances[k] for k in single)
  out = {
    k: {
      "variance": variances[k],
      "std": math.sqrt(variances[k]),
      "share": (variances[k] / total if total > 0 else None) if k in single else None,
    }
    for k in values_by_source
  }
  if "all" in variances and variances["all"] > 0:
    out["sum_of_sources_over_all"] = total / variances["all"]
  return out
