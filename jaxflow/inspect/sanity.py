"""Sanity checks for saliency maps, from the literature.

- Model randomization (Adebayo et al. 2018, "Sanity checks for saliency maps"): a method whose map
  hardly changes when the trained weights are replaced by random ones explains the input, not the
  model. Measured as the Spearman rank correlation between the absolute attributions of the trained
  model and of a re-initialized one, per example (1 = same ranking; the trained model's maps should
  be far from that).
- Completeness of integrated gradients (Sundararajan et al. 2017): the attributions of an example sum
  to score(x) - score(baseline). A Riemann sum only approximates the path integral, so the gap
  measures the quadrature error and should fall as the number of steps grows.
"""

from __future__ import annotations

import numpy as np

from jaxflow.inspect import saliency


def rank_correlations(trained, randomized, support=None) -> np.ndarray:
  """[b] Spearman correlation of |trained[i]| and |randomized[i]| over each example's input entries
  (only those where `support[i]` is True, when given). Arrays [b, ...], or sequences of b arrays of
  any sizes (a graph's nodes per example).

  An example whose map is constant on either side (no ranking) gets NaN, left out of the summary.
  """
  out = np.full(len(trained), np.nan)
  for i in range(len(trained)):
    a, b = np.abs(np.asarray(trained[i])).ravel(), np.abs(np.asarray(randomized[i])).ravel()
    if support is not None:
      keep = np.asarray(support[i]).ravel()
      a, b = a[keep], b[keep]
    if a.size > 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
      out[i] = spearman(a, b)
  return out


def average_ranks(values: np.ndarray) -> np.ndarray:
  """1-based ranks of a 1-d array, ties given their mean rank (scipy.stats.rankdata's "average")."""
  order = np.argsort(values, kind="mergesort")
  inverse = np.empty(order.size, np.intp)
  inverse[order] = np.arange(order.size)
  ordered = values[order]
  starts = np.r_[True, ordered[1:] != ordered[:-1]]
  dense = np.cumsum(starts)[inverse]
  bounds = np.r_[np.nonzero(starts)[0], starts.size]
  return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
  """Spearman rank correlation of two 1-d arrays: Pearson's of their average ranks, as
  scipy.stats.spearmanr computes it. In numpy: importing scipy.stats cost explain ~0.7 s of its ~5."""
  ra, rb = average_ranks(a) - (a.size + 1) / 2, average_ranks(b) - (b.size + 1) / 2
  return float(np.dot(ra, rb) / np.sqrt(np.dot(ra, ra) * np.dot(rb, rb)))


def summarize(values: np.ndarray) -> dict:
  finite = np.asarray(values, np.float64)
  finite = finite[np.isfinite(finite)]
  if finite.size == 0:
    return {"mean": None, "median": None, "min": None, "max": None, "count": 0}
  return {
    "mean": float(finite.mean()),
    "median": float(np.median(finite)),
    "min": float(finite.min()),
    "max": float(finite.max()),
    "count": int(finite.size),
  }


def model_randomization(trained: dict, randomized: dict, *, support=None) -> dict[str, dict]:
  """{method: summary of the per-example rank correlations, plus `per_example`}, for each method.

  With `support` (bool, shaped like the maps), each method also gets `support_mean`, the mean
  correlation over those entries only. Images: where the input differs from the baseline. Methods that
  multiply by the input (gradient x input, integrated gradients from a zero baseline) are exactly 0
  off it in both models; those shared zeros are tied ranks that raise the correlation by themselves.
  Graphs: the explained output's receptive field (nodes outside it have zero importance in both).
  """
  report = {}
  for method in trained:
    rho = rank_correlations(trained[method], randomized[method])
    report[method] = {**summarize(rho), "per_example": [None if not np.isfinite(r) else float(r) for r in rho]}
    if support is not None:
      report[method]["support_mean"] = summarize(rank_correlations(trained[method], randomized[method], support))[
        "mean"
      ]
  return report


def completeness_gap(attributions: np.ndarray, score_x: np.ndarray, score_baseline: np.ndarray) -> dict:
  """How far each example's attributions are from summing to score(x) - score(baseline).

  Returns per-example `sum`, `delta` and the absolute `error`, with its max and mean, and the error
  relative to |delta| (max over examples, |delta| floored at 1e-6).
  """
  attributions = np.asarray(attributions, np.float64)
  total = attributions.reshape(attributions.shape[0], -1).sum(axis=1)
  delta = np.asarray(score_x, np.float64) - np.asarray(score_baseline, np.float64)
  error = np.abs(total - delta)
  relative = error / np.maximum(np.abs(delta), 1e-6)
  return {
    "max_abs_error": float(error.max()),
    "mean_abs_error": float(error.mean()),
    "max_rel_error": float(relative.max()),
    "mean_abs_delta": float(np.abs(delta).mean()),
    "sum": total.tolist(),
    "delta": delta.tolist(),
    "error": error.tolist(),
  }


def completeness_by_steps(
  path_grads: np.ndarray, x: np.ndarray, score_x, score_baseline, *, steps: tuple[int, ...], baseline=None
) -> dict[int, dict]:
  """IG completeness at several step counts from ONE set of trapezoid path gradients.

  `path_grads` [N + 1, *x.shape] are the gradients at alphas k/N (N = max(steps)); every count in
  `steps` must divide N, so its trapezoid points are a subset of them (stride N / count): one program
  evaluates the path once, whatever the number of counts compared.
  """
  n = path_grads.shape[0] - 1
  x = np.asarray(x, np.float64)
  base = np.zeros_like(x) if baseline is None else np.broadcast_to(np.asarray(baseline, np.float64), x.shape)
  out = {}
  for count in steps:
    if n % count:
      raise ValueError(f"steps {count} does not divide the path's {n} intervals")
    _, weights = saliency.path_points(count, "trapezoid")
    grads = np.asarray(path_grads, np.float64)[:: n // count]
    attributions = (x - base) * np.tensordot(np.asarray(weights, np.float64), grads, axes=1)
    gap = completeness_gap(attributions, score_x, score_baseline)
    out[count] = {k: gap[k] for k in ("max_abs_error", "mean_abs_error", "max_rel_error", "mean_abs_delta")}
  return out
