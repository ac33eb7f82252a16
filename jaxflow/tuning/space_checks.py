"""A search space checked against the config it tunes, before any trial is run.

Every parameter must be a config field or consumed by the space's `derive`; the overrides of the range's
ends (and of the first points of the 2-level grid) must assign to the config without a type error; and
a value at either end of a range, or a category, that the config refuses by itself is bad input, not a
failed trial (`check_values`, with training's own field rules). Each refusal is a one-line ConfigError
naming the parameter. `space.Space.check` runs these.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np

from jaxflow.config import ConfigError, one_line
from jaxflow.run.fields import check_fields
from jaxflow.run.validate import validate
from jaxflow.tuning.overrides import apply, has_field


def virtual_params(params: Sequence, derive: Callable | None, config: ml_collections.ConfigDict) -> set[str]:
  """The parameters that are not config fields (derive's inputs); an error when there is no derive."""
  virtual = set()
  for p in params:
    if not has_field(config, p.name):
      if derive is None:
        raise ConfigError(f"space parameter {p.name!r} is not a config field (and the space has no derive() to use it)")
      virtual.add(p.name)
  return virtual


def checked_overrides(space, config: ml_collections.ConfigDict) -> set[str]:
  """The config fields `space` (a space.Space whose virtual parameters are known) assigns on its corners,
  its centre and the first 16 points of its 2-level grid; each point's overrides are assigned to a copy
  of `config` on the way."""
  n = len(space.params)
  corners = np.array([[0.0] * n, [1.0] * n, [0.5] * n])
  fields: set[str] = set()
  for point in [*space.assignments(corners), *itertools.islice(space.iter_grid(2), 16)]:
    try:
      overrides = space.overrides(point)
    except ConfigError:
      raise
    except Exception as e:
      raise ConfigError(f"the space's derive() failed on {point!r}: {type(e).__name__}: {one_line(str(e))}") from None
    fields.update(overrides)
    for name in overrides:
      if not has_field(config, name):
        raise ConfigError(
          f"space override {name!r} (from {'a parameter' if name in point else 'derive()'}) is not a config field"
        )
    try:
      apply(config.copy_and_resolve_references(), overrides)
    except ConfigError as e:
      raise ConfigError(f"search space: {e}") from None
  return fields


def check_values(space, virtual: set[str], config: ml_collections.ConfigDict) -> None:
  """Every end of every range (low and high; each category) against the rules training applies, before any
  trial runs: a value the config refuses by itself (`model.dropout_rate` up to 1.5, `train.batch_size` from
  0, `optim.name='lion'`) is bad input, not a failed trial.

  Each end is assigned alone to a copy of the base config: a config field directly, a parameter derive()
  consumes through derive() (the other parameters at the space's centre), and the copy is checked by
  `run.fields.check_fields` (a category of a config field by `run.validate.validate`, which also knows the
  dataset): one copy of the rules. Only an error naming a field that end sets counts; a value invalid only
  with others (data.train_examples below the batch size) is left to fail its trials.
  """
  centre = space.assignments(np.full((1, len(space.params)), 0.5))[0]
  for p in space.params:
    derived = p.name in virtual
    for label, value in _ends(p):
      fields = _fields_of(space, centre, p.name, value) if derived else {p.name: value}
      try:
        candidate = apply(config.copy_and_resolve_references(), fields)
      except ConfigError as e:
        raise ConfigError(f"search space: {e}") from None
      check = validate if p.kind == "categorical" and not derived else check_fields
      try:
        check(candidate)
      except ConfigError as e:
        if any(re.search(rf"config\.{re.escape(f)}(?![\w.])", str(e)) for f in fields):
          raise ConfigError(
            f"space parameter {p.name!r}: {label} is refused by the config: {one_line(str(e))}"
          ) from None


def _ends(p) -> list[tuple[str, object]]:
  """(label, value) of the values a parameter's checks try: its categories, or the two ends of its range."""
  if p.kind == "categorical":
    return [(f"value {v!r}", v) for v in p.values]
  cast = int if p.kind == "int" else float
  return [(f"low={cast(p.low)!r}", cast(p.low)), (f"high={cast(p.high)!r}", cast(p.high))]


def _fields_of(space, centre: dict, name: str, value) -> dict:
  """The config fields derive() sets when parameter `name` takes `value` and the others sit at the centre."""
  point = {**centre, name: value}
  try:
    overrides = space.overrides(point)
  except ConfigError:
    raise
  except Exception as e:
    raise ConfigError(f"the space's derive() failed on {point!r}: {type(e).__name__}: {one_line(str(e))}") from None
  return {k: v for k, v in overrides.items() if k not in point}
