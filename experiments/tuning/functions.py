"""Standard test functions with known minima, and one search on one of them through `jaxflow.optimize`.

Why these two: Ackley is multimodal (a regular grid of local minima on a funnel: what a GP's smooth model can
exploit only once it has seen the funnel), Rosenbrock is a narrow curved valley (unimodal for d <= 3, ill-conditioned:
what a model of the function helps with most). Both are defined for every dimension d, so the same function is
searched at d = 2, 4, 8, 16, 30. Written in numpy from their textbook definitions (Surjanovic & Bingham's Virtual
Library of Simulation Experiments), not taken from jaxflow.

Ackley's minimum sits at the centre of its usual box, and a method that samples the centre first (a Sobol design
starts at 0.5 in every coordinate after scrambling only by chance, BO's candidates cluster there) would be favoured
by the box, not by its model: each repetition moves the minimum to a point drawn uniformly in the inner half of the
box (the same point for every method at that repetition, so methods are paired). Rosenbrock's minimum (1, ..., 1)
is off-centre in [-5, 10]^d already.

Simple regret after n evaluations = the best value among the first n - the known minimum (0 for both).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import numpy as np

import jaxflow

REGRET_FLOOR = 1e-12  # log10 of a regret of exactly 0 (not reached here): the floor of the plots and differences


@dataclasses.dataclass(frozen=True)
class Function:
  name: str
  low: float
  high: float
  minimum: float
  value: Callable[[np.ndarray], float]
  shifted: bool  # the minimum is moved to a per-repetition point (see the module's docstring)


def ackley(x: np.ndarray) -> float:
  """-20 exp(-0.2 sqrt(mean x^2)) - exp(mean cos(2 pi x)) + 20 + e; minimum 0 at x = 0."""
  return float(-20 * np.exp(-0.2 * np.sqrt(np.mean(x**2))) - np.exp(np.mean(np.cos(2 * np.pi * x))) + 20 + math.e)


def rosenbrock(x: np.ndarray) -> float:
  """sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2; minimum 0 at x = 1."""
  return float(np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2))


FUNCTIONS = {
  "ackley": Function("ackley", -32.768, 32.768, 0.0, ackley, shifted=True),
  "rosenbrock": Function("rosenbrock", -5.0, 10.0, 0.0, rosenbrock, shifted=False),
}


def shift(f: Function, d: int, seed: int) -> np.ndarray:
  """Where repetition `seed` puts the minimum: uniform in the inner half of the box for a shifted function."""
  if not f.shifted:
    return np.zeros(d)
  centre, half = (f.low + f.high) / 2, (f.high - f.low) / 4
  return np.random.default_rng([d, seed]).uniform(centre - half, centre + half, d)


def budget(d: int, per_dim: int, cap: int) -> int:
  """Evaluations of every method at dimension d: per_dim * d, capped (BO's cost grows with the evaluations)."""
  return min(per_dim * d, cap)


def search(name: str, d: int, method: str, seed: int, evaluations: int) -> dict:
  """One repetition: `method` minimizes function `name` in d dimensions with `evaluations` calls, study seed
  `seed`. Returns the regret curve (best so far - minimum after each evaluation) and the seconds each suggestion
  took (the time between the end of one evaluation and the start of the next: the suggester's, since the function
  itself costs microseconds)."""
  f = FUNCTIONS[name]
  offset = shift(f, d, seed)
  names = [f"x{i:02d}" for i in range(d)]
  stamps: list[float] = []

  def fn(point: dict) -> float:
    stamps.append(time.perf_counter())
    x = np.array([point[k] for k in names], np.float64)
    return f.value(x - offset)

  start = time.perf_counter()
  result = jaxflow.optimize(fn, {k: (f.low, f.high) for k in names}, method=method, budget=evaluations, seed=seed)
  values = [h["value"] for h in result["history"]]
  best = np.minimum.accumulate(np.asarray(values, np.float64)) - f.minimum
  waits = np.diff([start, *stamps]).tolist()
  return {"regret": best.tolist(), "suggest_seconds": waits, "seconds": time.perf_counter() - start}


def log_regret(regret: float) -> float:
  return float(math.log10(max(regret, REGRET_FLOOR)))
