"""How much two hyperparameters interact, measured on a grid of cells x paired seeds.

A surface is an array acc[row, col, seed]: rows the hyperparameter one tunes (lr, dropout), columns the one it
is suspected to depend on (epochs, batch size), seeds paired across every cell (seed i of every cell starts
from the same streams). Why these measures:

- best row per column, with the rows that tie it (paired tie rule): the practical question "does the best lr
  move when the batch size changes?" in the only resolution the seeds allow;
- the two-way additive fit's residual share of the cell means' variance (0: the surface is a row profile plus
  a column profile, tuning one factor at any value of the other finds the same optimum; 1: nothing additive),
  with a jackknife 95% interval over seeds and an F-test of the interaction against the seed-to-seed noise
  (a share computed on noisy means is never 0, so the noise floor is stated next to it);
- the same share on the log-error scale: near 100% accuracy a fixed gain in log error is a shrinking gain in
  accuracy, so part of an "interaction" in accuracy can be the scale alone;
- a collapse test: how much of the surface one combined variable explains (lr x steps: the distance an
  optimizer with a constant lr can travel; at a fixed epoch count lr x steps is proportional to lr / batch, the
  linear scaling rule's variable).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as scipy_stats

from experiments import harness_extras
from experiments.common import stats

FLOOR = 1.0 / 360  # log-error scale: an error below one test image in 360 is counted as one image


def decompose(means: np.ndarray) -> dict | None:
  """Row, column and interaction sums of squares of a [rows, cols] matrix of cell means (None below 2x2)."""
  rows, cols = means.shape
  if rows < 2 or cols < 2:
    return None
  grand = means.mean()
  a, b = means.mean(1) - grand, means.mean(0) - grand
  resid = means - grand - a[:, None] - b[None, :]
  ss = {"row": float(cols * (a**2).sum()), "col": float(rows * (b**2).sum()), "interaction": float((resid**2).sum())}
  total = sum(ss.values())
  return {**ss, "share": ss["interaction"] / total if total > 0 else 0.0, "residual": resid}


def interaction(values: np.ndarray) -> dict | None:
  """The interaction share of a [rows, cols, seeds] surface: on the means, a jackknife 95% interval over seeds,
  the F-test against the seeds' noise and the share that noise alone would give (its expectation)."""
  rows, cols, n = values.shape
  full = decompose(values.mean(2))
  if full is None:
    return None
  out = {"share": full["share"], "ss": {k: full[k] for k in ("row", "col", "interaction")}}
  if n < 3:
    return {**out, "ci95": None, "p_value": None, "noise_share": None}
  leave_one = np.array([decompose(np.delete(values, s, axis=2).mean(2))["share"] for s in range(n)])
  se = math.sqrt((n - 1) / n * ((leave_one - leave_one.mean()) ** 2).sum())
  half = float(scipy_stats.t.ppf(0.975, n - 1) * se)
  # Seeds as blocks: what is left after the cell means and the seeds' own offsets is noise.
  noise = values - values.mean(2, keepdims=True) - values.mean((0, 1), keepdims=True) + values.mean()
  df_noise, df_int = (rows * cols - 1) * (n - 1), (rows - 1) * (cols - 1)
  ms_noise = float((noise**2).sum() / df_noise)
  f = (n * full["interaction"] / df_int) / ms_noise if ms_noise > 0 else math.inf
  total = sum(out["ss"].values())
  noise_ss = df_int * ms_noise / n  # the expected interaction sum of squares of the means if there were none
  return {
    **out,
    "ci95": [max(0.0, full["share"] - half), min(1.0, full["share"] + half)],
    "p_value": float(scipy_stats.f.sf(f, df_int, df_noise)) if math.isfinite(f) else 0.0,
    "noise_share": min(1.0, noise_ss / total) if total > 0 else None,
  }


def log_error(values: np.ndarray) -> np.ndarray:
  return np.log10(np.maximum(1.0 - values, FLOOR))


def best_per_column(values: np.ndarray, resolution: float | None) -> list[dict]:
  """Per column: the row with the best mean, and the rows its paired differences cannot separate from it."""
  out = []
  for j in range(values.shape[1]):
    means = values[:, j].mean(1)
    best = int(np.argmax(means))
    tied = [i for i in range(values.shape[0]) if i == best or not _beats(values[best, j], values[i, j], resolution)]
    out.append({"best": best, "tied": tied, "mean": float(means[best])})
  return out


def _beats(a, b, resolution) -> bool:
  return harness_extras.beats(list(map(float, a)), list(map(float, b)), resolution)


def interpolated_best(accuracy: np.ndarray, log_x: np.ndarray) -> tuple[float, bool]:
  """The row position (log10 of the hyperparameter) of the best accuracy, refined by a parabola through the best
  grid point and its two neighbours; (value, at the grid's edge)."""
  i = int(np.argmax(accuracy))
  if i in (0, len(accuracy) - 1):
    return float(log_x[i]), True
  y0, y1, y2 = accuracy[i - 1 : i + 2]
  curvature = y0 - 2 * y1 + y2
  step = log_x[i + 1] - log_x[i]
  shift = 0.5 * (y0 - y2) / curvature if curvature < 0 else 0.0
  return float(log_x[i] + max(-0.5, min(0.5, shift)) * step), False


def scaling_slope(values: np.ndarray, rows: list[float], cols: list[float]) -> dict | None:
  """d log10(best row value) / d log10(column value): the slope of the interpolated optimum across columns, on
  the means and seed by seed (mean and t-interval of the per-seed slopes). Linear scaling rule (lr ~ batch): 1;
  square-root rule: 0.5; no dependence: 0."""
  if len(cols) < 2 or len(rows) < 3:
    return None
  lx, lc = np.log10(rows), np.log10(cols)
  on_means = [interpolated_best(values[:, j].mean(1), lx) for j in range(len(cols))]
  per_seed = [
    float(np.polyfit(lc, [interpolated_best(values[:, j, s], lx)[0] for j in range(len(cols))], 1)[0])
    for s in range(values.shape[2])
  ]
  return {
    "best_log10": [b for b, _ in on_means],
    "at_edge": [e for _, e in on_means],
    "slope": float(np.polyfit(lc, [b for b, _ in on_means], 1)[0]),
    "per_seed": stats.mean_ci(per_seed),
  }


def collapse(means: np.ndarray, combined: np.ndarray, degree: int = 3) -> dict:
  """R^2 of accuracy as one smooth function (a cubic) of log10(combined) over all cells, next to the additive
  fit's R^2: if the combined variable explains as much as the two factors added, the surface is one curve."""
  x, y = np.log10(combined).ravel(), means.ravel()
  fit = np.polyval(np.polyfit(x, y, min(degree, len(set(x.tolist())) - 1)), x)
  total = float(((y - y.mean()) ** 2).sum())
  parts = decompose(means)
  additive = None if parts is None or total == 0 else 1 - parts["interaction"] / total
  return {"r2": 1 - float(((y - fit) ** 2).sum()) / total if total > 0 else None, "additive_r2": additive}


def analyze(surface: dict, resolution: float | None) -> dict:
  """Everything the report says about one surface."""
  values = np.asarray(surface["values"], np.float64)
  rows, cols = surface["rows"], surface["cols"]
  cells = [[stats.mean_ci(values[i, j].tolist()) for j in range(len(cols))] for i in range(len(rows))]
  out = {
    "name": surface["name"],
    "row_name": surface["row_name"],
    "col_name": surface["col_name"],
    "rows": rows,
    "cols": cols,
    "cells": cells,
    "failed": surface.get("failed", 0),
    "best_per_column": best_per_column(values, resolution),
    "interaction": interaction(values),
    "interaction_log_error": interaction(log_error(values)),
    "slope": scaling_slope(values, rows, cols) if surface.get("log_rows") else None,
  }
  if surface.get("combined") is not None:
    out["collapse"] = collapse(values.mean(2), np.asarray(surface["combined"], np.float64))
  return out


def cost_of_other_best(surface: dict, analyzed: dict, resolution: float | None, a: int, b: int) -> dict | None:
  """At column a: the row best at column a against the row best at column b, paired over seeds (what carrying
  a value tuned at b to a costs; a tie when the optimum does not move far enough to matter)."""
  values = np.asarray(surface["values"], np.float64)
  ra, rb = analyzed["best_per_column"][a]["best"], analyzed["best_per_column"][b]["best"]
  col, name = surface["cols"][a], surface["row_name"]
  return stats.compare(
    f"{surface['name']}: at {surface['col_name']} {col}, the {name} best there vs the one best at "
    f"{surface['col_name']} {surface['cols'][b]}",
    f"{name}={surface['rows'][ra]:g}",
    values[ra, a].tolist(),
    f"{name}={surface['rows'][rb]:g}",
    values[rb, a].tolist(),
    resolution=resolution,
  )


def contrast(surface: dict, resolution: float | None) -> dict | None:
  """The corner difference-in-differences, paired over seeds: (last row - first row) at the last column minus the
  same at the first column. 0 when the factors add; its sign says which way the optimum leans."""
  values = np.asarray(surface["values"], np.float64)
  if values.shape[0] < 2 or values.shape[1] < 2:
    return None
  rows, cols, r, c = surface["rows"], surface["cols"], surface["row_name"], surface["col_name"]
  gain = f"{r}={rows[-1]:g} - {r}={rows[0]:g}"
  return stats.compare(
    f"{surface['name']}: interaction contrast (the gain of the largest {r} over the smallest, by {c})",
    f"{gain} at {c}={cols[-1]:g}",
    (values[-1, -1] - values[0, -1]).tolist(),
    f"at {c}={cols[0]:g}",
    (values[-1, 0] - values[0, 0]).tolist(),
    resolution=resolution,
  )
