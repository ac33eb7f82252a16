"""Sequential seeds: train two arms in rounds and stop as soon as the comparison is decided.

A fixed seed count is chosen blind; a sequential design looks at the data after every round. Looking
repeatedly inflates the error rate of a plain t-test (ten looks at 5% each reject a true null ~20% of the
time), so each look gets only part of the error budget:

- Looks at n_1 < n_2 < ... < n_K = max_seeds seeds per arm. Look k tests at level alpha_k, the increment of
  the Pocock-type spending function alpha(t) = alpha * ln(1 + (e - 1) t) at t = n_k / max_seeds (Lan & DeMets
  1983). The increments sum to alpha.
- Difference: Welch's t-test at alpha_k, i.e. the (1 - alpha_k) Welch interval of mean(A) - mean(B) excludes 0.
- Equivalence (only with `min_effect`): both one-sided tests of TOST at alpha_k, i.e. the (1 - 2 alpha_k)
  interval lies inside (-min_effect, +min_effect).
- Validity: by the union bound, P(any look wrongly claims a difference) <= sum_k alpha_k = alpha whatever the
  correlation between looks, and the same for a wrong equivalence claim. That is conservative (group-sequential
  boundaries computed from the looks' joint law would spend the budget more tightly), but it needs no
  known-variance assumption, which a handful of seeds cannot support. tests/seeds/test_sequential.py
  measures the false-positive rate by simulation.
- Pocock-type rather than O'Brien-Fleming-type spending: the latter gives the first looks almost nothing
  (alpha(4/64) ~ 1e-9), so a clear difference could not stop after the first round, which is the point here.

Pure numpy/scipy on arrays of finals: `decide` works on (..., n) arrays, so the simulation test runs
thousands of studies at once.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import stats

DECISIONS = ("a_better", "b_better", "equivalent", "continue", "undecided")


@dataclasses.dataclass(frozen=True)
class Plan:
  """The looks (seeds per arm at each) and the error budget spent at each."""

  looks: tuple[int, ...]
  alphas: tuple[float, ...]
  alpha: float


def plan(first: int, round_size: int, max_seeds: int, alpha: float = 0.05) -> Plan:
  """Looks at first, first + round_size, ... up to max_seeds (always a look at max_seeds)."""
  if first < 2:
    raise ValueError(f"the first look needs >= 2 seeds per arm (a variance), got {first}")
  if round_size < 1 or max_seeds < first:
    raise ValueError(f"round size {round_size} must be >= 1 and max_seeds {max_seeds} >= the first look {first}")
  looks = list(range(first, max_seeds + 1, round_size))
  if looks[-1] != max_seeds:
    looks.append(max_seeds)
  spent = [alpha * math.log(1 + (math.e - 1) * n / max_seeds) for n in looks]
  alphas = [spent[0]] + [b - a for a, b in zip(spent, spent[1:])]
  return Plan(looks=tuple(looks), alphas=tuple(alphas), alpha=alpha)


def welch(a, b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Difference of means, its standard error and Welch's degrees of freedom over the last axis."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  na, nb = a.shape[-1], b.shape[-1]
  va, vb = a.var(axis=-1, ddof=1) / na, b.var(axis=-1, ddof=1) / nb
  se = np.sqrt(va + vb)
  with np.errstate(divide="ignore", invalid="ignore"):
    dof = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
  dof = np.where(np.isfinite(dof), dof, na + nb - 2)  # both variances 0: any dof; the test below is exact
  return a.mean(axis=-1) - b.mean(axis=-1), se, dof


def decide(a, b, level: float, min_effect: float | None = None) -> np.ndarray:
  """One look at level `level`: an array of decisions ('a_better', 'b_better', 'equivalent', 'continue')."""
  diff, se, dof = welch(a, b)
  with np.errstate(divide="ignore", invalid="ignore"):
    t = np.where(se > 0, diff / se, np.sign(diff) * np.inf)
    p_two = np.where(se > 0, 2 * stats.t.sf(np.abs(t), dof), (diff == 0).astype(float))
  out = np.full(np.shape(diff), "continue", dtype=object)
  out[(p_two < level) & (diff > 0)] = "a_better"
  out[(p_two < level) & (diff < 0)] = "b_better"
  if min_effect:
    with np.errstate(divide="ignore", invalid="ignore"):
      p_low = np.where(se > 0, stats.t.sf((diff + min_effect) / se, dof), (diff <= -min_effect).astype(float))
      p_high = np.where(se > 0, stats.t.cdf((diff - min_effect) / se, dof), (diff >= min_effect).astype(float))
    out[(out == "continue") & (np.maximum(p_low, p_high) < level)] = "equivalent"
  return out


def interval(a, b, level: float) -> list[float]:
  """The (1 - level) Welch interval of mean(a) - mean(b): the repeated confidence interval of the look."""
  diff, se, dof = (float(v) for v in welch(a, b))
  half = float(stats.t.ppf(1 - level / 2, dof)) * se if se > 0 else 0.0
  return [diff - half, diff + half]


def fixed_seeds_needed(
  effect: float, std_a: float, std_b: float, *, alpha: float = 0.05, power: float = 0.8
) -> int | None:
  """Seeds per arm a fixed two-sample design needs to detect `effect` with this power at this alpha (Welch's
  test, normal approximation refined with the t quantile); None when the effect is 0."""
  if effect == 0:
    return None
  variance = std_a**2 + std_b**2
  if variance == 0:
    return 2
  z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
  n = max(2, math.ceil(z**2 * variance / effect**2))
  while n < 100_000 and (stats.t.ppf(1 - alpha / 2, 2 * n - 2) + stats.norm.ppf(power)) ** 2 * variance / effect**2 > n:
    n += 1
  return n


def prob_superiority(a, b, *, resamples: int = 4000, seed: int = 0) -> dict:
  """P(a seed of A scores above a seed of B) (ties count half: the Mann-Whitney AUC), with a 95% bootstrap
  interval that resamples each arm's seeds."""
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)

  def auc(x, y):
    return ((x[..., :, None] > y[..., None, :]) + 0.5 * (x[..., :, None] == y[..., None, :])).mean(axis=(-1, -2))

  rng = np.random.default_rng(seed)
  boots = auc(a[rng.integers(0, a.size, (resamples, a.size))], b[rng.integers(0, b.size, (resamples, b.size))])
  return {"p": float(auc(a, b)), "ci95": [float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))]}
