"""Means over seeds with a 95% t-interval, paired differences, and the tie rule every study applies.

Why a t-interval and not jaxflow.seeds' bootstrap: a study has 5 seeds, and a percentile bootstrap of 5
values is too narrow (it cannot reach beyond the sample's own min and max); Student's t is the honest
small-sample interval for a mean. Why paired: arms trained through `jaxflow.seeds` with the same
`config.seed` share seed indices (seed i pins every varied stream to seed + i), so arm A's seed i and arm
B's seed i start from the same streams; the spread of their differences is usually smaller than either
arm's spread, and a difference is judged on it.

The tie rule: a difference is a tie when its size is below the metric's resolution (1 / eval examples for
an accuracy: one example more or less) or its 95% interval contains 0 (the seeds cannot tell its sign).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def _t_half_width(std: float, n: int) -> float:
  return float(scipy_stats.t.ppf(1 - (1 - CONFIDENCE) / 2, n - 1) * std / math.sqrt(n))


def mean_ci(values) -> dict:
  """n, mean, std (ddof=1) and the 95% t-interval of the mean over the given values (None values, failed
  seeds, are left out and counted); with one value there is no interval (None)."""
  kept = [float(v) for v in values if v is not None]
  x = np.asarray(kept, np.float64)
  out = {"n": int(x.size), "missing": len(list(values)) - int(x.size), "values": kept}
  if not x.size:
    return {**out, "mean": None, "std": None, "ci95": None}
  std = float(x.std(ddof=1)) if x.size > 1 else 0.0
  half = _t_half_width(std, x.size) if x.size > 1 else None
  ci = [float(x.mean()) - half, float(x.mean()) + half] if half is not None else None
  return {**out, "mean": float(x.mean()), "std": std, "ci95": ci}


def paired(a, b) -> dict:
  """a - b seed by seed (the seeds both arms completed): the mean difference and its 95% t-interval."""
  pairs = [(float(x), float(y)) for x, y in zip(a, b, strict=True) if x is not None and y is not None]
  summary = mean_ci([x - y for x, y in pairs])
  return {k: summary[k] for k in ("n", "mean", "std", "ci95")} | {"diffs": summary["values"]}


def is_tie(difference: dict, resolution: float | None) -> bool:
  """The tie rule: |mean difference| below the metric's resolution, or a 95% interval containing 0 (or none)."""
  mean, ci = difference["mean"], difference["ci95"]
  if mean is None or ci is None:
    return True
  if resolution is not None and abs(mean) < resolution:
    return True
  return ci[0] <= 0 <= ci[1]


def verdict(difference: dict, resolution: float | None, *, a: str, b: str, higher_is_better: bool = True) -> str:
  """'tie' or which arm is better, in words, from a paired difference a - b."""
  if is_tie(difference, resolution):
    return "tie"
  a_better = (difference["mean"] > 0) == higher_is_better
  return f"{a if a_better else b} better"


def compare(
  name: str, a_name: str, a, b_name: str, b, *, resolution: float | None, higher_is_better: bool = True
) -> dict:
  """One row of a study's paired differences: the difference a - b, its interval and the verdict."""
  difference = paired(a, b)
  return {
    "comparison": name,
    "a": a_name,
    "b": b_name,
    **difference,
    "resolution": resolution,
    "higher_is_better": higher_is_better,
    "verdict": verdict(difference, resolution, a=a_name, b=b_name, higher_is_better=higher_is_better),
  }


def accuracy_resolution(eval_size: int | None) -> float | None:
  """One eval example of `eval_size`: the smallest change an accuracy can show."""
  return 1.0 / eval_size if eval_size else None
