"""Train/eval shift: per-split input statistics, a KS test of per-example means, and label shift.

Measurement bias shows as inputs of the eval split that are distributed differently from the
training split's (a darker camera, another scanner); label shift as different class proportions.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from jaxflow.auditing.splits import AuditThresholds

_HIST_BINS = 30
_TOP_SHIFTED = 10


def shift(splits, labels, num_classes: int, train: str, eval_: str | None, t: AuditThresholds) -> dict:
  """The report's `shift` section; `eval_` None (or the train split) leaves out the two tests."""
  example_means = {s: _flat_mean(sp.inputs) for s, sp in splits.items()}
  per_split = {s: _input_stats(sp.inputs, example_means[s]) for s, sp in splits.items()}
  compare = eval_ is not None and eval_ != train
  return {
    "definition": (
      "per-example mean = mean of all values of one example. Input shift: two-sample Kolmogorov-Smirnov "
      f"test of the per-example means of '{train}' vs the eval split, flagged when p < {t.shift_p_value:g} and "
      f"the KS statistic D (largest gap between the two CDFs, the effect size) >= {t.shift_min_ks:g}; Cohen's d "
      "(mean difference / sqrt of the average of the two variances) is shown too. Label shift: chi-square "
      f"test of homogeneity of the class counts, flagged when p < {t.shift_p_value:g} and the total variation "
      f"distance between the label distributions >= {t.label_shift_min_tvd:g}."
    ),
    "splits": per_split,
    "histogram": _histogram(example_means),
    "input_shift": _input_shift(per_split, example_means, train, eval_, t) if compare else None,
    "label_shift": _label_shift(labels, train, eval_, num_classes, t) if compare else None,
  }


def _flat_mean(inputs: np.ndarray) -> np.ndarray:
  return np.asarray(inputs).reshape(inputs.shape[0], -1).mean(axis=1, dtype=np.float64)


def _axis_view(inputs: np.ndarray) -> tuple[str, np.ndarray]:
  """[n, positions, k]: k channels of an image ([n, h, w, c]; [n, h, w] is one channel) or k features."""
  x = np.asarray(inputs)
  n = x.shape[0]
  if x.ndim <= 2:
    return "feature", x.reshape(n, 1, -1)
  channels = x.shape[-1] if x.ndim >= 4 else 1
  return "channel", x.reshape(n, -1, channels)


def _input_stats(inputs: np.ndarray, example_mean: np.ndarray) -> dict:
  """Mean and std overall and per channel/feature, accumulated in float64 over row blocks (no full copy)."""
  axis, x = _axis_view(inputs)
  total, total_sq = np.zeros(x.shape[2]), np.zeros(x.shape[2])
  step = max(1, 2**22 // max(x.shape[1] * x.shape[2], 1))
  for s in range(0, x.shape[0], step):
    block = x[s : s + step].astype(np.float64)
    total += block.sum(axis=(0, 1))
    total_sq += np.square(block).sum(axis=(0, 1))
  count = x.shape[0] * x.shape[1]
  mean = total / count
  var = np.maximum(total_sq / count - mean**2, 0.0)
  overall_mean = float(mean.mean())
  overall_var = max(float(total_sq.sum() / (count * x.shape[2]) - overall_mean**2), 0.0)
  return {
    "mean": overall_mean,
    "std": math.sqrt(overall_var),
    "axis": axis,
    f"{axis}_mean": mean.tolist(),
    f"{axis}_std": np.sqrt(var).tolist(),
    "example_mean": _describe(example_mean),
  }


def _describe(v: np.ndarray) -> dict:
  q = np.quantile(v, [0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0])
  names = ("min", "p05", "p25", "median", "p75", "p95", "max")
  return {"mean": float(v.mean()), "std": float(v.std()), **{k: float(x) for k, x in zip(names, q)}}


def _histogram(example_means: dict[str, np.ndarray]) -> dict:
  """Counts of per-example means on shared bin edges, so report readers (and the plot) can overlay splits."""
  every = np.concatenate(list(example_means.values()))
  lo, hi = float(every.min()), float(every.max())
  edges = np.linspace(lo, hi if hi > lo else lo + 1.0, _HIST_BINS + 1)
  return {"edges": edges.tolist(), "counts": {s: np.histogram(v, edges)[0].tolist() for s, v in example_means.items()}}


def _input_shift(per_split, example_means, train: str, eval_: str, t: AuditThresholds) -> dict:
  a, b = example_means[train], example_means[eval_]
  ks = stats.ks_2samp(a, b)
  spread = math.sqrt((a.var() + b.var()) / 2)
  d = float((b.mean() - a.mean()) / spread) if spread > 0 else 0.0
  sa, sb = per_split[train], per_split[eval_]
  axis = sa["axis"]
  return {
    "split_a": train,
    "split_b": eval_,
    "ks_statistic": float(ks.statistic),
    "ks_p_value": float(ks.pvalue),
    "cohens_d": d,
    "mean_difference": float(b.mean() - a.mean()),
    "axis": axis,
    "top_shifted": _top_shifted(sa, sb, axis),
    "flagged": bool(ks.pvalue < t.shift_p_value and ks.statistic >= t.shift_min_ks),
  }


def _top_shifted(sa: dict, sb: dict, axis: str) -> list[dict]:
  """Channels/features with the largest standardized mean difference (eval - train) / pooled std."""
  ma, mb = np.array(sa[f"{axis}_mean"]), np.array(sb[f"{axis}_mean"])
  pooled = np.sqrt((np.square(sa[f"{axis}_std"]) + np.square(sb[f"{axis}_std"])) / 2)
  smd = np.divide(mb - ma, pooled, out=np.zeros_like(ma), where=pooled > 0)
  top = np.argsort(-np.abs(smd), kind="stable")[:_TOP_SHIFTED]
  return [{"index": int(k), "mean_a": float(ma[k]), "mean_b": float(mb[k]), "smd": float(smd[k])} for k in top]


def _label_shift(labels, train: str, eval_: str, num_classes: int, t: AuditThresholds) -> dict:
  ys = (labels[train], labels[eval_])
  counts = np.stack([np.bincount(y[(y >= 0) & (y < num_classes)], minlength=num_classes) for y in ys])
  p = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
  tvd = float(0.5 * np.abs(p[0] - p[1]).sum())
  table = counts[:, counts.sum(axis=0) > 0]
  if table.shape[1] > 1:
    chi2, pvalue, dof, _ = stats.chi2_contingency(table, correction=False)
  else:
    chi2, pvalue, dof = 0.0, 1.0, 0
  return {
    "split_a": train,
    "split_b": eval_,
    "chi2": float(chi2),
    "dof": int(dof),
    "p_value": float(pvalue),
    "total_variation": tvd,
    "flagged": bool(pvalue < t.shift_p_value and tvd >= t.label_shift_min_tvd),
  }
