"""Attribute bias (sample bias): how well each per-example metadata attribute predicts the label.

Each attribute becomes an attribute x label contingency table per split (and pooled), numeric
attributes with many values cut into quantile bins first; `statistics.association` scores each table.
"""

from __future__ import annotations

import numpy as np

from jaxflow.auditing.splits import AuditThresholds
from jaxflow.auditing.statistics import association


def attribute_bias(splits, labels, num_classes: int, t: AuditThresholds) -> dict:
  """The report's `attribute_bias` section: one entry per metadata attribute of any split."""
  keys = sorted({k for sp in splits.values() for k in sp.metadata})
  return {
    "definition": (
      "attribute x label contingency table per split and for all splits pooled ('all'). Cramér's V is "
      f"bias-corrected (Bergsma 2013), flagged when >= {t.cramers_v:g}; plain V shown too. Mutual "
      "information in bits (sklearn mutual_info_score / ln 2), and as a fraction of the label's entropy. "
      "Chi-square test of independence, no continuity correction. Numeric attributes with more than "
      f"{t.max_categories} distinct values are cut into {t.quantile_bins} quantile bins (edges from all "
      "splits pooled; non-finite values get their own row)."
    ),
    "attributes": {k: _attribute(k, splits, labels, num_classes, t) for k in keys},
  }


def _attribute(key: str, splits, labels, num_classes: int, t: AuditThresholds) -> dict:
  having = [s for s, sp in splits.items() if key in sp.metadata]
  values = {s: np.asarray(splits[s].metadata[key]) for s in having}
  kind, rows, codes, edges = _encode(values, t)
  tables = {s: _table(codes[s], labels[s], len(rows), num_classes) for s in having}
  if len(having) > 1:
    tables["all"] = sum(tables.values())
  per = {s: {**association(tab, t.cramers_v), "table": tab.tolist()} for s, tab in tables.items()}
  return {
    "kind": kind,
    "values": rows,
    "bin_edges": edges,
    "splits": per,
    "flagged": any(p["flagged"] for p in per.values()),
  }


def _encode(
  values: dict[str, np.ndarray], t: AuditThresholds
) -> tuple[str, list[str], dict[str, np.ndarray], list[float] | None]:
  """(kind, row labels, per-split row codes, bin edges or None), with rows shared by all splits."""
  pooled = np.concatenate(list(values.values()))
  numeric = np.issubdtype(pooled.dtype, np.number) and not np.issubdtype(pooled.dtype, np.bool_)
  if numeric and len(np.unique(pooled)) > t.max_categories:
    return _encode_bins(values, pooled.astype(np.float64), t.quantile_bins)
  rows, inverse = np.unique(pooled.astype(str), return_inverse=True)
  return "categorical", rows.tolist(), _unpool(values, inverse.reshape(-1)), None


def _encode_bins(values, pooled: np.ndarray, bins: int):
  finite = np.isfinite(pooled)
  edges = np.unique(np.quantile(pooled[finite], np.linspace(0, 1, bins + 1)))
  codes = np.searchsorted(edges[1:-1], pooled, side="right")
  rows = [
    f"[{lo:.3g}, {hi:.3g}{']' if k == len(edges) - 2 else ')'}" for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))
  ]
  if not finite.all():
    codes[~finite] = len(rows)
    rows.append("non-finite")
  return "binned", rows, _unpool(values, codes), edges.tolist()


def _unpool(values: dict[str, np.ndarray], codes: np.ndarray) -> dict[str, np.ndarray]:
  cuts = np.cumsum([len(v) for v in values.values()])[:-1]
  return dict(zip(values, np.split(codes, cuts)))


def _table(codes: np.ndarray, y: np.ndarray, num_rows: int, num_classes: int) -> np.ndarray:
  valid = (y >= 0) & (y < num_classes)
  flat = codes[valid] * num_classes + y[valid]
  return np.bincount(flat, minlength=num_rows * num_classes).reshape(num_rows, num_classes)
