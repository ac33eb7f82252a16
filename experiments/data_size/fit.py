"""A learning curve's summary numbers: the power law error(n) = a * n^-b + c, where it flattens, and the
training size at which a model reaches 95% of its full-data accuracy.

Why a power law with a floor: test error falls as a power of the training size over a wide range (Hestness
et al. 2017, "Deep learning scaling is predictable, empirically") and levels off at an irreducible error c
(label noise, ambiguous images, the model's own limit). "Where it flattens" is stated in the units the
study can resolve: the size beyond which doubling the data is predicted to gain less than one eval example
(the accuracy's resolution), n_flat = (a * (1 - 2^-b) / resolution)^(1/b).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

MIN_POINTS = 3  # three parameters: with exactly three sizes the fit has no residual (said so)


def power_law(n, a, b, c):
  return a * np.power(n, -b) + c


def fit_power_law(sizes: list[float], errors: list[float], resolution: float | None) -> dict:
  """Least squares of the mean error per size (scipy.optimize.curve_fit, a >= 0, 0 <= b <= 3, 0 <= c <= 1)."""
  from scipy.optimize import OptimizeWarning, curve_fit  # deferred: scipy.optimize is only needed here

  points = [(float(n), float(e)) for n, e in zip(sizes, errors, strict=True) if e is not None]
  if len(points) < MIN_POINTS:
    return {"fitted": False, "why": f"{len(points)} sizes; a, b and c need at least {MIN_POINTS}"}
  n, e = np.array([p[0] for p in points]), np.array([p[1] for p in points])
  try:
    with warnings.catch_warnings():  # an exact fit (3 sizes) has no covariance; the fit itself is what is used
      warnings.simplefilter("ignore", OptimizeWarning)
      (a, b, c), _ = curve_fit(
        power_law,
        n,
        e,
        p0=(max(e[0] - e[-1], 1e-3) * n[0] ** 0.5, 0.5, max(e[-1] / 2, 0.0)),
        bounds=([0.0, 0.0, 0.0], [np.inf, 3.0, 1.0]),
        maxfev=20_000,
      )
  except (RuntimeError, ValueError) as err:
    return {"fitted": False, "why": f"curve_fit did not converge: {err}"}
  residual = e - power_law(n, a, b, c)
  out = {
    "fitted": True,
    "a": float(a),
    "b": float(b),
    "c": float(c),
    "rms_residual": float(np.sqrt(np.mean(residual**2))),
    "points": len(points),
    "exact": len(points) == MIN_POINTS,
  }
  out["flattens_at"] = flattening_size(a, b, resolution)
  return out


def flattening_size(a: float, b: float, resolution: float | None) -> float | None:
  """The n beyond which doubling n gains less than `resolution` of accuracy: a n^-b (1 - 2^-b) = resolution."""
  gain = a * (1 - 2.0**-b)
  if not resolution or b <= 0 or gain <= 0:
    return None
  return float((gain / resolution) ** (1 / b))


def size_for_fraction(fit: dict, full_accuracy: float, fraction: float = 0.95) -> float | None:
  """From the fit: the n whose predicted accuracy 1 - error(n) reaches `fraction` of the full-data accuracy."""
  if not fit.get("fitted"):
    return None
  room = 1 - fit["c"] - fraction * full_accuracy  # a n^-b must fall to this
  if room <= 0 or fit["b"] <= 0:
    return None  # the floor alone keeps it below the target
  if fit["a"] == 0:
    return 1.0
  return float((fit["a"] / room) ** (1 / fit["b"]))


def first_size_reaching(sizes: list[int], means: list[float | None], target: float) -> int | None:
  """The smallest measured size whose mean accuracy reaches `target` (None: none does)."""
  return next((n for n, m in zip(sizes, means, strict=True) if m is not None and m >= target), None)


def describe_size(n: float | None, smallest: int | None = None) -> str:
  """A size for the report; below the smallest measured size it says so (the fit has no data there)."""
  if n is None or not math.isfinite(n):
    return "-"
  if smallest is not None and n < smallest:
    return f"< {smallest}"
  return f"{n:,.0f}"
