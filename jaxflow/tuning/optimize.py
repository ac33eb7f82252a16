"""`jaxflow.optimize`: minimize (or maximize) a plain Python function over a search space.

  result = jaxflow.optimize(fn, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, method="bo", budget=30)
  result["best"]     # {"point": {"x1": ..., "x2": ...}, "value": ..., "index": ...}
  result["history"]  # [{"point": {...}, "value": ...}, ...] in evaluation order

The same search as `jaxflow tune` with no training behind it: the same `Space`, the same `Suggester`
(grid, random, Sobol, Halton, or BO with the same GP and acquisition), the same treatment of failures
(a non-finite value enters the search at the worst value seen). Only the loop is this module's: ask the
suggester, call `fn`, record.

Why a history file: an evaluation may be expensive (a simulation, a training run) and a process may die.
With `history_file=` every suggestion and every evaluation is written at once (atomically, one JSON file);
rerunning the same call reads it back and goes on to `budget` evaluations in all. What is needed to
suggest exactly what an uninterrupted run would is in the file too: the points suggested but not yet
evaluated (the rest of a batch, the point `fn` was evaluating), the grid's size and the GP's warm start.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Mapping
from typing import Any

from jaxflow.config import ConfigError, one_line
from jaxflow.tuning import acquisition, suggest
from jaxflow.tuning import space as S
from jaxflow.tuning.space_file import load_space
from jaxflow.workdir import read_json, to_jsonable, write_json

FORMAT = "jaxflow.optimize/1"  # the history file's "format": what reads it back checks it
# What a resumed run must share with the file's run (budget and batch may change).
SETTINGS = ("space", "method", "seed", "maximize", "acquisition", "init_trials")
DICT_FORMS = "(low, high), ('log', low, high), or a list of choices"


def space_from(spec) -> S.Space:
  """A Space from what `jaxflow tune --space` takes (a Space, a list of parameters, a space file) or a dict
  {name: form}. Forms: `(low, high)`: uniform, an integer range when both ends are ints; `('log', low,
  high)`: the same on a log scale; a list: categorical choices."""
  if isinstance(spec, Mapping):
    if not spec:
      raise ConfigError(
        f"space={{}} is empty: give at least one parameter, e.g. {{'x': (-5.0, 10.0)}}; forms: {DICT_FORMS}"
      )
    return S.Space(*[_param(str(name), form) for name, form in spec.items()])
  if spec is None or (isinstance(spec, (list, tuple, str)) and not spec):
    raise ConfigError(
      f"space={spec!r} is empty: give a dict {{name: {DICT_FORMS}}}, a jaxflow.tuning.space.Space or a space file"
    )
  try:
    return load_space(spec)
  except ConfigError as e:
    raise ConfigError(f"space: {e}") from None


def _param(name: str, form) -> S.Param:
  """One dict entry as a parameter (a Param given as the value keeps its own settings under this name)."""
  if isinstance(form, S.Param):
    return S.Param(name, form.kind, form.low, form.high, form.log, form.values, form.when)
  if isinstance(form, list):
    return S.categorical(name, form)
  if isinstance(form, tuple):
    log = len(form) == 3 and form[0] == "log"
    ends = form[1:] if log else form
    if len(ends) == 2 and all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in ends):
      if all(isinstance(v, numbers.Integral) for v in ends):
        return S.integer(name, int(ends[0]), int(ends[1]), log=log)
      return S.uniform(name, float(ends[0]), float(ends[1]), log=log)
  raise ConfigError(f"space[{name!r}]={form!r} is not a parameter; allowed forms: {DICT_FORMS}")


def _check_arguments(fn, method, budget, batch, seed, maximize, kind, init_trials, history_file) -> None:
  """One-line errors naming the argument and what it may be, before anything is evaluated or written."""
  if not callable(fn):
    raise ConfigError(f"fn={fn!r} is not callable; give a function of a point (a dict) returning a number")
  if method not in suggest.METHODS:
    raise ConfigError(f"method={method!r} is not known; allowed: {', '.join(suggest.METHODS)}")
  if kind not in acquisition.KINDS:
    raise ConfigError(f"acquisition={kind!r} is not known; allowed: {', '.join(acquisition.KINDS)}")
  for name, value in (("budget", budget), ("batch", batch)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"{name}={value!r} must be a positive integer")
  if init_trials is not None and (not isinstance(init_trials, int) or isinstance(init_trials, bool) or init_trials < 1):
    raise ConfigError(f"init_trials={init_trials!r} must be a positive integer or None (2 per parameter, 5-10)")
  if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
    raise ConfigError(f"seed={seed!r} must be a non-negative integer")
  if not isinstance(maximize, bool):
    raise ConfigError(f"maximize={maximize!r} must be True or False")
  if history_file is not None and (not isinstance(history_file, (str, os.PathLike)) or not str(history_file)):
    raise ConfigError(f"history_file={history_file!r} must be a path (a JSON file) or None")


def _number(value, point: dict) -> float:
  """`fn`'s return value as a float: a real number or a one-element numpy/jax array, not a bool or a string."""
  if isinstance(value, numbers.Real) and not isinstance(value, bool):
    return float(value)
  dtype = getattr(value, "dtype", None)
  if dtype is not None and getattr(value, "size", None) == 1 and getattr(dtype, "kind", "") in "fiu":
    return float(value.reshape(()))
  raise ConfigError(
    one_line(
      f"fn returned {type(value).__name__} {value!r:.60} at {point}; it must return a number (float, int, "
      "or a one-element array)"
    )
  )


def _load(path, settings: dict) -> dict:
  """The history file's state ({} when there is none); refused when it holds another optimization."""
  if path is None or not os.path.exists(path):
    return {}
  try:
    state = read_json(path)
  except (OSError, ValueError) as e:
    raise ConfigError(one_line(f"history_file={str(path)!r} cannot be read: {type(e).__name__}: {e}")) from None
  if not isinstance(state, dict) or state.get("format") != FORMAT:
    raise ConfigError(f"history_file={str(path)!r} is not a jaxflow.optimize history (no format={FORMAT!r})")
  for key in SETTINGS:
    if state.get("settings", {}).get(key) != settings[key]:
      ours = "another search space" if key == "space" else f"{key}={state.get('settings', {}).get(key)!r}"
      raise ConfigError(
        f"history_file={str(path)!r} holds an optimization with {ours}; "
        f"use another history_file, or call again with the arguments it was written with"
      )
  return state


def _to_minimize(history: list[dict], maximize: bool) -> list[float]:
  """The recorded values as the suggester wants them: minimized, failed evaluations imputed."""
  sign = -1.0 if maximize else 1.0
  return suggest.impute_failed([math.nan if h["value"] is None else sign * h["value"] for h in history])


def _best(history: list[dict], maximize: bool) -> dict | None:
  """The first evaluation with the best finite value ({"point", "value", "index"}), None when all failed."""
  done = [(i, h) for i, h in enumerate(history) if h["value"] is not None]
  if not done:
    return None
  i, h = (max if maximize else min)(done, key=lambda ih: ih[1]["value"])
  return {"point": h["point"], "value": h["value"], "index": i}


def _evaluate(fn: Callable[[dict], Any], point: dict) -> dict:
  """One history entry: the point and fn's value; a non-finite value is recorded as a failed evaluation."""
  value = _number(fn(dict(point)), point)
  if not math.isfinite(value):
    return {"point": point, "value": None, "error": f"fn returned {value}"}
  return {"point": point, "value": value}


def optimize(
  fn: Callable[[dict], float],
  space,
  *,
  method: str = "bo",
  budget: int = 30,
  maximize: bool = False,
  seed: int = 0,
  history_file: str | None = None,
  batch: int = 1,
  acquisition: str = "ei",
  init_trials: int | None = None,
) -> dict:
  """Minimizes `fn(point) -> float` (maximizes with `maximize=True`) over `space` in `budget` evaluations.

  `space`: a dict {name: (low, high) | ('log', low, high) | [choices]} (both ends ints: an integer range),
  a `jaxflow.tuning.space.Space`, a list of its parameters, or a space file (`FILE[:variant]`, as
  `jaxflow tune --space`). `fn` gets a point, a dict {name: value} of the active parameters.
  `method`: grid | random | sobol | halton | bo (`jaxflow tune --method`); `batch`: points suggested per
  round (BO: kriging believer); `acquisition`: ei | ucb; `init_trials`: BO's Sobol points before the GP.
  A value that is NaN or infinite is recorded as a failed evaluation (value None, and an error) and the
  search goes on (BO sees it at the worst value seen); an exception from `fn` propagates (with
  `history_file`, the evaluations so far are kept, and a rerun retries that point).
  `history_file`: a JSON file written after every suggestion and evaluation; a rerun with the same
  arguments continues it up to `budget` evaluations in all (a larger `budget` extends it), suggesting what
  an uninterrupted run would have.

  Returns {"best": {"point", "value", "index"} or None if every evaluation failed, "history": [{"point",
  "value"}, ...] in evaluation order, "evaluations", "resumed" (read back from the file), "method",
  "maximize"}. Values are reported as `fn` returned them.

  >>> import jaxflow
  >>> result = jaxflow.optimize(lambda p: (p["x"] - 2.0) ** 2, {"x": (-5.0, 5.0)}, method="grid", budget=11)
  >>> result["best"]
  {'point': {'x': 2.0}, 'value': 0.0, 'index': 7}
  """
  _check_arguments(fn, method, budget, batch, seed, maximize, acquisition, init_trials, history_file)
  space = space_from(space)
  settings = to_jsonable(
    {"space": space.describe(), "method": method, "seed": seed, "maximize": maximize}
    | {"acquisition": acquisition, "init_trials": init_trials}
  )
  state = _load(history_file, settings)
  suggester = suggest.Suggester(
    space, method=method, seed=seed, kind=acquisition, init_trials=init_trials, budget=budget
  )
  suggester.restore(state.get("suggester", {}))
  history = [{**h, "point": space.normalize(h["point"])} for h in state.get("history", [])]
  pending = [space.normalize(p) for p in state.get("pending", [])]
  resumed = len(history)

  def save() -> None:
    if history_file is not None:
      payload = {"format": FORMAT, "settings": settings, "budget": budget, "suggester": suggester.state()}
      write_json(str(history_file), payload | {"pending": pending, "history": history}, indent=1)

  while len(history) < budget:
    if not pending:
      count = min(batch, budget - len(history))
      observed = [h["point"] for h in history]
      pending = suggester.suggest(len(history), count, observed, _to_minimize(history, maximize))
      if not pending:  # the grid is exhausted
        break
      save()
    history.append(_evaluate(fn, pending[0]))
    pending = pending[1:]
    save()
  return {
    "best": _best(history, maximize),
    "history": history,
    "evaluations": len(history),
    "resumed": resumed,
    "method": method,
    "maximize": maximize,
  }
