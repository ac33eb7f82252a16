"""What to try next: grid, random, quasi-random (Sobol, Halton) or Bayesian optimization with a GP.

`Suggester.suggest(start, count, observed, values, pending)` returns `count` assignments (dicts of
parameter values) for trials `start .. start+count-1`, given the finished trials' assignments and
their values to *minimize* (the study negates a maximized metric and imputes failed trials). It knows
nothing about training: the benchmark (benchmarks/tune.py) drives it on Branin and Hartmann-6 exactly
as the study loop drives it on configs.

Reproducible: grid, random and quasi-random points depend only on (seed, trial index), so a resumed
study draws what an uninterrupted one would have; BO depends on (seed, trial index, the observations),
except that its GP fit starts one restart from the previous fit in this process (a warm start).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxflow.config import ConfigError
from jaxflow.tuning import acquisition
from jaxflow.tuning import gp as gp_lib
from jaxflow.tuning.space import Space

METHODS = ("grid", "random", "sobol", "halton", "bo")


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
      init=None if self.last_fit is None else self.last_fit.params,
    )
    self.last_fit = model
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
