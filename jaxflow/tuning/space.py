"""Search spaces for `jaxflow tune`: a declarative list of parameters, sampled in the unit cube.

A search-space file (`configs/spaces/digits_mlp.py`) defines `get_space()`:

  from jaxflow.tuning import space

  def get_space():
    return space.Space(
        space.log_uniform("optim.lr", 1e-4, 3e-2),
        space.categorical("optim.name", ["adam", "momentum"]),
        space.uniform("optim.momentum", 0.5, 0.99, when={"optim.name": "momentum"}),  # a conditional
        space.integer("train.batch_size", 32, 256, log=True),
        space.integer("layers", 1, 3), space.categorical("width", [64, 128, 256]),  # not config fields ...
        derive=lambda p: {"model.widths": (p["width"],) * p["layers"]},          # ... but derive uses them
    )

A parameter named like a config field is assigned to it; others must be consumed by `derive`, which
maps the sampled values to more overrides (a tuple field such as `model.widths`).

Two views of a point:
- the unit cube `[0, 1]^P`, one coordinate per parameter: what random, quasi-random (Sobol, Halton)
  and grid sampling draw, and what the acquisition optimizer perturbs. `decode` maps it to values:
  log scales, integers by rounding *inside* the transform, categoricals by slicing [0, 1) into k bins.
- GP features `[0, 1]^D`, computed from the decoded values: numeric parameters on their (log) scale,
  categoricals one-hot; an inactive conditional parameter takes the fixed value 0.5. The GP sees the
  rounded integer, never the continuous coordinate behind it.

Checking a space against its config: `space_checks` (run by `Space.check`); loading a space file:
`space_file.load_space`; assigning a point's overrides to a config: `overrides.apply`.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxflow.config import ConfigError
from jaxflow.tuning import space_checks

INACTIVE = 0.5  # the GP feature of a parameter its parent switched off
MAX_GRID = 100_000  # points of a grid built whole (see Space.grid)
_SCALARS = (str, int, float, bool, type(None))


@dataclasses.dataclass(frozen=True)
class Param:
  """One search dimension. `kind`: float | int | categorical; `when`: ((parent, allowed values), ...)."""

  name: str
  kind: str
  low: float | None = None
  high: float | None = None
  log: bool = False
  values: tuple = ()
  when: tuple[tuple[str, tuple], ...] = ()

  @property
  def width(self) -> int:
    """GP feature columns: one, or one per category."""
    return len(self.values) if self.kind == "categorical" else 1

  def _bounds(self, *, extended: bool) -> tuple[float, float]:
    """Sampling bounds on the (log) scale; integers extend by half a step so end values get a full bin."""
    lo, hi = float(self.low), float(self.high)
    if self.kind == "int" and extended:
      lo, hi = lo - 0.5, hi + 0.5
    return (math.log(lo), math.log(hi)) if self.log else (lo, hi)

  def from_unit(self, u: np.ndarray) -> np.ndarray:
    """[n] unit coordinates -> [n] values (float, int64, or object for categoricals)."""
    u = np.clip(np.asarray(u, np.float64), 0.0, 1.0)
    if self.kind == "categorical":
      index = np.minimum((u * len(self.values)).astype(np.int64), len(self.values) - 1)
      return _objects(self.values)[index]
    lo, hi = self._bounds(extended=True)
    x = lo + u * (hi - lo)
    x = np.exp(x) if self.log else x
    if self.kind == "int":
      return np.clip(np.round(x), self.low, self.high).astype(np.int64)
    return np.clip(x, self.low, self.high)

  def to_unit(self, value) -> float:
    """The unit coordinate at the middle of `value`'s bin (the inverse of `from_unit`)."""
    if self.kind == "categorical":
      return (self.values.index(_hashable(value)) + 0.5) / len(self.values)
    lo, hi = self._bounds(extended=True)
    x = math.log(value) if self.log else float(value)
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))

  def features(self, values: np.ndarray, active: np.ndarray) -> np.ndarray:
    """[n] values -> [n, width] GP features in [0, 1]; INACTIVE where not active."""
    n = len(values)
    out = np.full((n, self.width), INACTIVE)
    if not active.any():
      return out
    if self.kind == "categorical":
      index = np.array([self.values.index(_hashable(v)) if a else 0 for v, a in zip(values, active)], np.int64)
      onehot = np.eye(len(self.values))[index]
      out[active] = onehot[active]
      return out
    lo, hi = self._bounds(extended=False)
    x = np.asarray(np.where(active, values, self.low), np.float64)
    x = np.log(x) if self.log else x
    out[:, 0] = np.where(active, (x - lo) / (hi - lo), INACTIVE)
    return out

  def grid(self, levels: int) -> list:
    """Evenly spaced values on the parameter's scale (all categories; distinct integers)."""
    if self.kind == "categorical":
      return list(self.values)
    lo, hi = self._bounds(extended=False)
    points = np.linspace(lo, hi, levels)
    points = np.exp(points) if self.log else points
    if self.kind == "int":
      return sorted({int(round(p)) for p in points})
    return [float(p) for p in points]

  def describe(self) -> dict:
    out = {"name": self.name, "kind": self.kind}
    if self.kind == "categorical":
      out["values"] = list(self.values)
    else:
      out.update(low=self.low, high=self.high, log=self.log)
    if self.when:
      out["when"] = {parent: list(allowed) for parent, allowed in self.when}
    return out


def _when(when: Mapping[str, Any] | None) -> tuple[tuple[str, tuple], ...]:
  if not when:
    return ()
  if not isinstance(when, Mapping):
    raise ConfigError(f"when={when!r} must be a dict {{parent parameter: value or list of values}}")
  return tuple((str(k), tuple(v) if isinstance(v, (list, tuple)) else (v,)) for k, v in when.items())


def _numeric(name, low, high, *, kind: str, log: bool) -> None:
  what = f"space parameter {name!r}"
  for label, v in (("low", low), ("high", high)):
    ok = isinstance(v, int) if kind == "int" else isinstance(v, (int, float))
    if not ok or isinstance(v, bool) or not math.isfinite(v):
      raise ConfigError(f"{what}: {label}={v!r} must be a finite {'integer' if kind == 'int' else 'number'}")
  if not low < high:
    raise ConfigError(f"{what}: low={low!r} must be below high={high!r}")
  if log and low <= 0:
    raise ConfigError(f"{what}: a log scale needs low > 0, got low={low!r}")


def uniform(name: str, low: float, high: float, *, log: bool = False, when: Mapping | None = None) -> Param:
  """A float drawn uniformly on [low, high] (on the log scale with `log=True`)."""
  _numeric(name, low, high, kind="float", log=log)
  return Param(name, "float", float(low), float(high), log, when=_when(when))


def log_uniform(name: str, low: float, high: float, *, when: Mapping | None = None) -> Param:
  """A float whose log is uniform on [log low, log high]: learning rates, weight decays."""
  return uniform(name, low, high, log=True, when=when)


def integer(name: str, low: int, high: int, *, log: bool = False, when: Mapping | None = None) -> Param:
  """An integer in [low, high] inclusive, each value equally likely (on the log scale with `log=True`)."""
  _numeric(name, low, high, kind="int", log=log)
  return Param(name, "int", int(low), int(high), log, when=_when(when))


def categorical(name: str, values: Sequence, *, when: Mapping | None = None) -> Param:
  """One of `values` (strings, numbers, booleans, None or tuples of them), each equally likely."""
  values = tuple(tuple(v) if isinstance(v, list) else v for v in values) if isinstance(values, (list, tuple)) else None
  if not values:
    raise ConfigError(f"space parameter {name!r}: values must be a non-empty list, e.g. ['adam', 'sgd']")
  for v in values:
    if not isinstance(v, _SCALARS) and not (isinstance(v, tuple) and all(isinstance(x, _SCALARS) for x in v)):
      raise ConfigError(
        f"space parameter {name!r}: value {v!r} is not a string, number, boolean, None or tuple of them"
      )
  if len(set(values)) != len(values):
    raise ConfigError(f"space parameter {name!r}: values {list(values)!r} repeat")
  return Param(name, "categorical", values=values, when=_when(when))


def conditional(parent: str, value, *params: Param) -> list[Param]:
  """`params` active only when `parent` takes `value` (or one of a list of values)."""
  extra = _when({parent: value})
  return [dataclasses.replace(p, when=p.when + extra) for p in params]


class Space:
  """An ordered list of parameters (conditionals after their parents), plus an optional `derive`."""

  def __init__(self, *params: Param | Sequence[Param], derive: Callable[[dict], dict] | None = None):
    flat: list[Param] = []
    for p in params:
      flat.extend(p if isinstance(p, (list, tuple)) else [p])
    if not flat:
      raise ConfigError("the search space has no parameters")
    seen: dict[str, Param] = {}
    for p in flat:
      if not isinstance(p, Param):
        raise ConfigError(
          f"search space entry {p!r} is not a parameter; "
          "build one with space.uniform / log_uniform / integer / categorical"
        )
      if p.name in seen:
        raise ConfigError(f"space parameter {p.name!r} is defined twice")
      for parent, allowed in p.when:
        if parent not in seen:
          raise ConfigError(
            f"space parameter {p.name!r}: its condition names {parent!r}, which is not a parameter defined before it"
          )
        if seen[parent].kind != "categorical":
          raise ConfigError(f"space parameter {p.name!r}: its condition's parent {parent!r} must be categorical")
        bad = [v for v in allowed if v not in seen[parent].values]
        if bad:
          raise ConfigError(
            f"space parameter {p.name!r}: condition {parent}={bad[0]!r} is not one of {list(seen[parent].values)!r}"
          )
      seen[p.name] = p
    self.params: tuple[Param, ...] = tuple(flat)
    self.derive = derive
    self._virtual: set[str] = set()  # parameters that are not config fields (derive's inputs), set by check()
    # Every parameter name and every field derive() assigned on check()'s points (corners, centre, the
    # first 16 points of the 2-level grid), set by check(): what the space may override.
    self.override_fields: set[str] = set(self.names)
    self.dims = sum(p.width for p in self.params)  # GP feature columns

  def __len__(self) -> int:
    return len(self.params)

  @property
  def names(self) -> list[str]:
    return [p.name for p in self.params]

  def describe(self) -> list[dict]:
    return [p.describe() for p in self.params]

  # --- unit cube <-> values --------------------------------------------------------------------------

  def decode(self, unit: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """[n, P] unit points -> (values per parameter [n], active mask per parameter [n])."""
    unit = np.atleast_2d(np.asarray(unit, np.float64))
    values, active = {}, {}
    for j, p in enumerate(self.params):
      values[p.name] = p.from_unit(unit[:, j])
      on = np.ones(len(unit), bool)
      for parent, allowed in p.when:
        on &= active[parent] & np.array([v in allowed for v in values[parent]], bool)
      active[p.name] = on
    return values, active

  def assignments(self, unit: np.ndarray) -> list[dict]:
    """[n, P] unit points -> n dicts of the active parameters' values (plain Python types)."""
    values, active = self.decode(unit)
    return [
      {p.name: _plain(values[p.name][i]) for p in self.params if active[p.name][i]}
      for i in range(len(np.atleast_2d(unit)))
    ]

  def to_unit(self, params: dict) -> np.ndarray:
    """[P] unit point of an assignment; an inactive parameter sits mid-range."""
    return np.array([p.to_unit(params[p.name]) if p.name in params else 0.5 for p in self.params])

  def features(self, values: dict[str, np.ndarray], active: dict[str, np.ndarray]) -> np.ndarray:
    """Decoded columns -> [n, D] GP features."""
    return np.concatenate([p.features(values[p.name], active[p.name]) for p in self.params], axis=1)

  def features_of(self, assignments: Sequence[dict]) -> np.ndarray:
    """Assignments (dicts, as trials record them) -> [n, D] GP features."""
    n = len(assignments)
    values = {
      p.name: _objects([_hashable(a.get(p.name, p.values[0])) for a in assignments])
      if p.kind == "categorical"
      else np.array([a.get(p.name, p.low) for a in assignments], np.float64)
      for p in self.params
    }
    active = {p.name: np.array([p.name in a for a in assignments], bool) for p in self.params}
    if n == 0:
      return np.zeros((0, self.dims))
    return self.features(values, active)

  def feature_slices(self) -> dict[str, slice]:
    """Which GP feature columns belong to which parameter."""
    out, start = {}, 0
    for p in self.params:
      out[p.name] = slice(start, start + p.width)
      start += p.width
    return out

  def key(self, params: dict) -> tuple:
    """A hashable identity of an assignment (floats rounded to 12 significant digits; lists, as JSON
    gives back a tuple value, count as tuples)."""
    return tuple((k, float(f"{v:.12g}") if isinstance(v, float) else _hashable(v)) for k, v in sorted(params.items()))

  def normalize(self, params: dict) -> dict:
    """An assignment read back from JSON with its values as the space holds them (lists -> tuples)."""
    return {k: _hashable(v) for k, v in params.items()}

  # --- sampling ----------------------------------------------------------------------------------------

  def sample_unit(self, method: str, start: int, count: int, seed: int) -> np.ndarray:
    """Points `start .. start+count-1` of the method's sequence, [count, P]: the same indices give the
    same points on every call (a resumed study draws what the first one would have)."""
    d = len(self.params)
    if method == "random":
      return (
        np.stack([np.random.default_rng([seed, i]).random(d) for i in range(start, start + count)])
        if count
        else np.zeros((0, d))
      )
    from scipy.stats import qmc  # deferred: scipy.stats is heavy, and random sampling does not need it

    total = start + count
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")  # scipy: Sobol' balance wants powers of two; a prefix is still low-discrepancy
      if method == "sobol":
        points = qmc.Sobol(d, scramble=True, seed=seed).random_base2(max(0, math.ceil(math.log2(max(total, 1)))))
      elif method == "halton":
        points = qmc.Halton(d, scramble=True, seed=seed).random(max(total, 1))
      else:
        raise ValueError(method)
    return points[start:total]

  def grid(self, budget: int, levels: int | None = None) -> tuple[list[dict], int]:
    """A full factorial grid with the most levels per numeric parameter that fits in `budget` points
    (at least 2), deduplicated once conditionals switch parameters off; (points, levels). With `levels`
    given, that grid (a resumed study keeps its first run's). Sizes are counted on a lazy enumeration
    stopped at `budget` + 1 points, so a big space costs O(budget) per level, not the product of its axes;
    a grid that must be built whole (its smallest one exceeds `budget`, and trials take a shuffle of it)
    may have at most MAX_GRID points."""
    if levels is None:
      numeric = [p for p in self.params if p.kind != "categorical"]
      levels = 2
      while numeric and levels < 64:
        bigger = self.grid_size(levels + 1, cap=budget + 1)
        if bigger > budget or bigger == self.grid_size(levels, cap=budget + 1):
          break
        levels += 1
    if self.grid_size(levels, cap=MAX_GRID + 1) > MAX_GRID:
      raise ConfigError(
        f"the search space's grid at {levels} levels per numeric parameter has more than {MAX_GRID:,} points; "
        "use --method=random, sobol, halton or bo for a space this big"
      )
    return list(self.iter_grid(levels)), levels

  def grid_size(self, levels: int, *, cap: int) -> int:
    """The number of points of the `levels` grid, counted up to `cap`."""
    return sum(1 for _ in itertools.islice(self.iter_grid(levels), cap))

  def iter_grid(self, levels: int):
    """The grid's distinct points, lazily, in the order of itertools.product over the axes with the
    first parameter slowest (first occurrences): a parameter switched off by its condition is not
    branched on, so no point repeats and nothing is enumerated only to be dropped."""
    axes = [[_plain(v) for v in p.grid(levels)] for p in self.params]

    def walk(j: int, params: dict):
      if j == len(self.params):
        yield dict(params)
        return
      p = self.params[j]
      if not all(parent in params and params[parent] in allowed for parent, allowed in p.when):
        yield from walk(j + 1, params)
        return
      for v in axes[j]:
        params[p.name] = v
        yield from walk(j + 1, params)
      del params[p.name]

    return walk(0, {})

  # --- configs -----------------------------------------------------------------------------------------

  def overrides(self, params: dict) -> dict:
    """Config field -> value for one assignment: the parameters that are config fields, then `derive`."""
    out = {k: v for k, v in params.items() if k not in self._virtual}
    if self.derive is not None:
      derived = self.derive(dict(params))
      if not isinstance(derived, Mapping):
        raise ConfigError(
          f"the space's derive() returned {type(derived).__name__}; it must return a dict of config overrides"
        )
      out.update(derived)
    return out

  def check(self, config: ml_collections.ConfigDict) -> None:
    """Every parameter is a config field (or consumed by derive); the ends of every range assign to
    the config without a type error; no end of a range and no category is refused by the config's own
    field rules (`space_checks`).
    One-line ConfigErrors naming the parameter."""
    self._virtual = space_checks.virtual_params(self.params, self.derive, config)
    self.override_fields.update(space_checks.checked_overrides(self, config))
    space_checks.check_values(self, self._virtual, config)


def _objects(values) -> np.ndarray:
  """A 1-D object array of `values` (np.array would make equal-length tuples a 2-D array)."""
  out = np.empty(len(values), dtype=object)
  out[:] = list(values)
  return out


def _hashable(v):
  """A value read back from JSON as the space holds it: lists (JSON's tuples) -> tuples."""
  return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def _plain(v):
  """numpy scalars -> Python scalars (JSON, config fields, stable keys)."""
  if isinstance(v, np.integer):
    return int(v)
  if isinstance(v, np.floating):
    return float(v)
  if isinstance(v, np.bool_):
    return bool(v)
  return v
