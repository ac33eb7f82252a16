"""Acquisition functions and their optimization over a search space, for minimization.

`expected_improvement` and `upper_confidence_bound` take the GP's posterior mean and std (standardized
units) and return a score to *maximize*. `propose` picks a batch of points:

- candidates: a dense scrambled Sobol set in the unit cube (2048 points) plus perturbations of the best
  observed points, decoded by the space (integers rounded, categoricals binned) into GP features, scored
  in one vectorized call;
- a few local refinements: Gaussian perturbations (shrinking scale) around the top candidates, gradient
  free, so rounding and categories need no relaxation;
- a batch by the kriging believer (`liar="mean"`: each chosen point is added to the data with the GP mean
  as its value, same hyperparameters, and the acquisition is recomputed) or a constant liar
  (`liar="min"` / `"max"`: the best / worst observed value), so a batch spreads out.

A point equal (after rounding) to an observed or already chosen one is skipped for the next best.
"""

from __future__ import annotations

import math
import warnings

import jax
import numpy as np
from jax.scipy.stats import norm

from jaxflow.tuning import gp as gp_lib
from jaxflow.tuning.space import Space

KINDS = ("ei", "ucb")
LIARS = ("mean", "min", "max")


@jax.jit
def expected_improvement(mean, std, best, xi=0.0):
  """E[max(best - xi - f, 0)] for f ~ N(mean, std^2): (best - xi - mean) Phi(z) + std phi(z)."""
  improvement = best - xi - mean
  z = improvement / std
  return improvement * norm.cdf(z) + std * norm.pdf(z)


@jax.jit
def upper_confidence_bound(mean, std, beta=2.0):
  """Optimism for minimization: -(mean - beta std), so larger is better like EI."""
  return -(mean - beta * std)


def score(kind: str, mean, std, *, best: float, xi: float = 0.01, beta: float = 2.0) -> np.ndarray:
  with jax.enable_x64(True):
    if kind == "ei":
      return np.asarray(expected_improvement(mean, std, best, xi))
    return np.asarray(upper_confidence_bound(mean, std, beta))


def _sobol(dims: int, count: int, seed: int) -> np.ndarray:
  from scipy.stats import qmc  # deferred: scipy.stats is heavy

  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    return qmc.Sobol(dims, scramble=True, seed=seed).random_base2(int(math.log2(count)))


def _refine(pool: np.ndarray, evaluate, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """The pool and its scores, grown by Gaussian perturbations (shrinking scale) around the current top 8."""
  scores = evaluate(pool)
  d = pool.shape[1]
  for scale in (0.1, 0.03, 0.01):
    top = pool[np.argsort(-scores)[:8]]
    moved = np.clip(np.repeat(top, 64, axis=0) + rng.normal(0, scale, (len(top) * 64, d)), 0, 1)
    pool, scores = np.concatenate([pool, moved]), np.concatenate([scores, evaluate(moved)])
  return pool, scores


def _best_unseen(space: Space, pool: np.ndarray, scores: np.ndarray, seen: set, rng: np.random.Generator) -> dict:
  """The best-scoring point of the pool whose assignment is not in `seen` (after rounding)."""
  for i in np.argsort(-scores, kind="stable"):
    params = space.assignments(pool[i : i + 1])[0]
    if space.key(params) not in seen:
      return params
  # every candidate was seen before (a tiny discrete space): a fresh random point
  return space.assignments(rng.random((1, pool.shape[1])))[0]


def propose(
  model: gp_lib.GP,
  space: Space,
  *,
  count: int,
  observed: list[dict],
  pending: list[dict] = (),
  kind: str = "ei",
  liar: str = "mean",
  seed: int = 0,
  candidates: int = 2048,
  xi: float = 0.0,
  beta: float = 2.0,
) -> list[dict]:
  """`count` new assignments maximizing the acquisition under `model` (fit on `observed`, whose values
  are model.y). `pending`: points already running (no value yet): fantasies, like a batch's own."""
  rng = np.random.default_rng(seed)
  d = len(space)
  seen = {space.key(p) for p in [*observed, *pending]}
  fantasy_x: list[np.ndarray] = []
  fantasy_y: list[float] = []
  observed_y = np.asarray(model.y, np.float64)

  def add_fantasy(params: dict) -> None:
    f = space.features_of([params])
    if liar == "mean":
      value = float(
        model.predict(f, extra_x=np.array(fantasy_x).reshape(-1, space.dims), extra_y=np.array(fantasy_y))[0][0]
      )
    else:
      value = float(observed_y.min() if liar == "min" else observed_y.max())
    fantasy_x.append(f[0])
    fantasy_y.append(value)

  for params in pending:
    add_fantasy(params)
  # Starting points: global Sobol candidates plus the best observed points jittered.
  order = np.argsort(observed_y)[:5]
  anchors = np.array([space.to_unit(observed[i]) for i in order]).reshape(-1, d)
  base = _sobol(d, candidates, seed)
  local = np.clip(np.repeat(anchors, 32, axis=0) + rng.normal(0, 0.05, (len(anchors) * 32, d)), 0, 1)
  chosen: list[dict] = []
  for _ in range(count):
    extra_x = np.array(fantasy_x).reshape(-1, space.dims)
    extra_y = np.array(fantasy_y)
    best = float(model.standardize(np.concatenate([observed_y, extra_y])).min())

    def evaluate(unit):
      values, active = space.decode(unit)
      mean, std = model.predict(space.features(values, active), extra_x=extra_x, extra_y=extra_y, standardized=True)
      return score(kind, mean, std, best=best, xi=xi, beta=beta)

    pool, scores = _refine(np.concatenate([base, local]), evaluate, rng)
    pick = _best_unseen(space, pool, scores, seen, rng)
    seen.add(space.key(pick))
    chosen.append(pick)
    add_fantasy(pick)
  return chosen
