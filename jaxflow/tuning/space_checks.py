"""A search space checked against the config it tunes, before any trial is run.

Every parameter must be a config field or consumed by the space's `derive`; the overrides of the range's
ends (and of the first points of the 2-level grid) must assign to the config without a type error; and
a category the config refuses by itself is bad input, not a failed trial. Each refusal is a one-line
ConfigError naming the parameter. `space.Space.check` runs these.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np

from jaxflow.config import ConfigError, one_line
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


def check_categories(params: Sequence, virtual: set[str], config: ml_collections.ConfigDict) -> None:
  """A category the config refuses by itself (optim.name='lion') is bad input, not a failed trial:
  each categorical config field's values are validated one at a time on the base config, and only an
  error naming that very field counts (a value invalid only with others, e.g. data.train_examples
  below the batch size, is left to fail its trials)."""
  for p in params:
    if p.kind != "categorical" or p.name in virtual:
      continue
    bad = []
    for value in p.values:
      try:
        validate(apply(config.copy_and_resolve_references(), {p.name: value}))
      except ConfigError as e:
        if f"config.{p.name}=" in str(e):
          bad.append((value, e))
    if bad:
      value, e = bad[0]
      raise ConfigError(f"space parameter {p.name!r}: value {value!r} is refused by the config: {one_line(str(e))}")
