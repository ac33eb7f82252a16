"""Association statistics of a contingency table: Cramér's V (bias-corrected), chi-square, mutual information.

Kept apart from the checks that build the tables (`bias`) so the numbers can be tested against
hand-computed and scipy values on their own.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats
from sklearn.metrics import mutual_info_score


def cramers_v(table: np.ndarray, *, corrected: bool = True) -> float | None:
  """Cramér's V of a contingency table; bias-corrected after Bergsma (2013) unless `corrected` is False.

  The plain V of independent data is positive and grows with the table's size relative to n (a
  50-valued attribute on 200 examples looks associated); the correction removes that expected part.
  None when undefined (fewer than two nonzero rows or columns).
  """
  table = _trim(np.asarray(table, np.float64))
  r, k = table.shape
  n = table.sum()
  if min(r, k) < 2 or n < 2:
    return None
  phi2 = _chi2(table) / n
  if not corrected:
    return math.sqrt(phi2 / (min(r, k) - 1))
  phi2 = max(0.0, phi2 - (k - 1) * (r - 1) / (n - 1))
  r_c, k_c = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
  denominator = min(r_c - 1, k_c - 1)
  return math.sqrt(phi2 / denominator) if denominator > 0 else None


def _trim(table: np.ndarray) -> np.ndarray:
  """Drops all-zero rows and columns: an unseen value or class carries no evidence either way."""
  return table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]


def _chi2(table: np.ndarray) -> float:
  """Pearson's chi-square statistic, no continuity correction (Cramér's V is defined on this one)."""
  expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
  return float(np.sum((table - expected) ** 2 / expected))


def association(table: np.ndarray, threshold: float) -> dict:
  """Cramér's V (both variants), chi-square test and mutual information of one attribute x label table."""
  trimmed = _trim(np.asarray(table, np.float64))
  defined = min(trimmed.shape) >= 2
  chi2 = _chi2(trimmed) if defined else 0.0
  dof = (trimmed.shape[0] - 1) * (trimmed.shape[1] - 1) if defined else 0
  mi_bits = mutual_info_score(None, None, contingency=trimmed.astype(np.int64)) / math.log(2) if defined else 0.0
  col = trimmed.sum(axis=0) / max(trimmed.sum(), 1.0)
  label_entropy = float(-(col * np.log2(col, where=col > 0, out=np.zeros_like(col))).sum())
  v = cramers_v(trimmed)
  return {
    "n": int(trimmed.sum()),
    "cramers_v": v,
    "cramers_v_plain": cramers_v(trimmed, corrected=False),
    "chi2": chi2,
    "dof": int(dof),
    "p_value": float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0,
    "mutual_info_bits": float(mi_bits),
    "mutual_info_fraction": float(mi_bits / label_entropy) if label_entropy > 0 else 0.0,
    "flagged": bool(v is not None and v >= threshold),
  }
