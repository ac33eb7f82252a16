"""What to try next: grid, random, quasi-random (Sobol, Halton) or Bayesian optimization with a GP.

`Suggester.suggest(start, count, observed, values, pending)` returns `count` assignments (dicts of
parameter values) for trials `start .. start+count-1`, given the finished trials' assignments and
their values to *minimize* (the study negates a maximized metric and imputes failed trials). It knows
nothing about training: the benchmark (benchmarks/tune.py) drives it on Branin and Hartmann-6 exactly
as the study loop drives it on configs.

Reproducible: grid, random and quasi-random points depend only on (seed, trial index), so a resumed
study draws what an uninterrupted one would have; BO depends on (seed, trial index, the observations),
and on the GP hyperparameters its previous fit ended at (one restart starts there: a warm start). `state()`
and `restore()` carry that warm start and the grid's size across processes: `jaxflow.optimize` keeps them in
its history file, so a resumed search suggests exactly what an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from jaxflow.config import ConfigError
from jaxflow.tuning import acquisition
from jaxflow.tuning import gp as gp_lib
from jaxflow.tuning.space import Space

METHODS = ("grid", "random", "sobol", "halton", "bo")


def impute_failed(values) -> list[float]:
  """Values to minimize with each non-finite one (a failed trial or evaluation) replaced by the worst finite
  value: the region failed, so BO should not return to it, and a GP needs finite targets. All non-finite
  stay NaN (BO then samples its Sobol design until two values are finite)."""
  values = [float(v) for v in values]
  finite = [v for v in values if math.isfinite(v)]
  worst = max(finite) if finite else math.nan
  return [v if math.isfinite(v) else worst for v in values]


@dataclasses.dataclass
class Suggester:
  space: Space
  method: str = "bo"
  seed: int = 0
  kind: str = "ei"  # bo: ei | ucb
  liar: str = "mean"  # bo batches: mean (kriging believer) | min | max (constant liar)
  # bo: quasi-random (Sobol) trials before the GP; default 2 per parameter, at least 5, at most 10. Measured
  # (median of 4-5 seeds): Branin after 15 evaluations regret 1.55 with 3 initial points, 0.67 with 5;
  # Hartmann-6 after 15: 1.93 with 7, 1.40 with 10.
  init_trials: int | None = None
  budget: int = 30  # grid: the largest grid with at most this many points
  last_fit: gp_lib.GP | None = None
  # bo: the hyperparameters the next GP fit starts one restart from (the last fit's; `restore` sets them).
  warm_start: dict | None = None
  # grid: the levels and the budget the grid was first built for; a resumed study passes its first run's
  # (study.json), so a larger --trials continues the same grid in the same order instead of a finer one.
  grid_levels: int | None = None
  grid_budget: int | None = None

  def __post_init__(self):
    if self.method not in METHODS:
      raise ConfigError(f"--method={self.method!r} is not known; allowed: {', '.join(METHODS)}")
    if self.kind not in acquisition.KINDS:
      raise ConfigError(f"--acquisition={self.kind!r} is not known; allowed: {', '.join(acquisition.KINDS)}")
    if self.liar not in acquisition.LIARS:
      raise ConfigError(f"liar={self.liar!r} is not known; allowed: {', '.join(acquisition.LIARS)}")
    if self.init_trials is None:
      self.init_trials = max(5, min(2 * len(self.space), 10))
    self._grid: list[dict] | None = None

  def grid_points(self) -> list[dict]:
    """The grid in the order trials take it (a seeded shuffle when the smallest grid exceeds the budget)."""
    if self._grid is None:
      if self.grid_budget is None:
        self.grid_budget = self.budget
      points, self.grid_levels = self.space.grid(self.grid_budget, levels=self.grid_levels)
      if len(points) > self.grid_budget:
        order = np.random.default_rng(self.seed).permutation(len(points))
        points = [points[i] for i in order]
      self._grid = points
    return self._grid

  def state(self) -> dict:
    """What a resumed search needs to suggest what this one would next (plain JSON types: float64 values
    round-trip exactly): the grid's levels and budget, and the GP warm start."""
    warm = None if self.warm_start is None else {k: np.asarray(v).tolist() for k, v in self.warm_start.items()}
    return {"grid_levels": self.grid_levels, "grid_budget": self.grid_budget, "warm_start": warm}

  def restore(self, state: dict) -> None:
    """Takes back what `state()` returned (before the first suggestion)."""
    self.grid_levels, self.grid_budget = state.get("grid_levels"), state.get("grid_budget")
    warm = state.get("warm_start")
    self.warm_start = None if warm is None else {k: np.asarray(v, np.float64) for k, v in warm.items()}

  def suggest(
    self, start: int, count: int, observed: list[dict] = (), values=(), pending: list[dict] = ()
  ) -> list[dict]:
    if self.method == "grid":  # from point `start` on, skipping any already tried (e.g. by another method)
      tried = {self.space.key(p) for p in [*observed, *pending]}
      return [p for p in self.grid_points()[start:] if self.space.key(p) not in tried][:count]
    if self.method in ("random", "sobol", "halton"):
      return self.space.assignments(self.space.sample_unit(self.method, start, count, self.seed))
    # bo: Sobol points until init_trials are in (or while fewer than 2 trials have a value).
    values = np.asarray(values, np.float64)
    ok = np.isfinite(values)
    observed = [p for p, good in zip(observed, ok) if good]
    values = values[ok]
    n_init = max(0, min(count, self.init_trials - start)) if len(values) >= 2 else count
    out = self.space.assignments(self.space.sample_unit("sobol", start, n_init, self.seed)) if n_init else []
    if n_init == count:
      return out
    model = gp_lib.fit(
      self.space.features_of(observed),
      values,
      seed=self.seed * 100_003 + start,
      init=self.warm_start,
    )
    self.last_fit, self.warm_start = model, model.params
    out += acquisition.propose(
      model,
      self.space,
      count=count - n_init,
      observed=observed,
      pending=[*pending, *out],
      kind=self.kind,
      liar=self.liar,
      seed=self.seed * 100_003 + start,
    )
    return out
