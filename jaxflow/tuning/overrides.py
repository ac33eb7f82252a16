"""A trial's values assigned to a config: `a.b.c -> value` overrides, type-checked by ml_collections.

Used to build every trial's config (`trials.trial_config`), to check a space against its config
(`space_checks`), and by the best_config.py a study writes (`from jaxflow.tuning.overrides import apply`).
"""

from __future__ import annotations

import ml_collections

from jaxflow.config import ConfigError, get_field, one_line


def has_field(config: ml_collections.ConfigDict, name: str) -> bool:
  """Whether `name` (dotted) is a field of `config`."""
  try:
    get_field(config, name)
    return True
  except (KeyError, AttributeError, TypeError):
    return False


def apply(config: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """Assigns `a.b.c -> value` overrides in place (type-checked by ml_collections); returns config."""
  for name, value in overrides.items():
    *parents, leaf = name.split(".")
    node = config
    for part in parents:
      node = node[part]
    current = node[leaf]
    if isinstance(current, tuple) and isinstance(value, list):
      value = tuple(value)
    if isinstance(current, float) and isinstance(value, int) and not isinstance(value, bool):
      value = float(value)
    try:
      node[leaf] = value
    except (TypeError, ValueError) as e:
      raise ConfigError(
        f"config.{name}={value!r} does not fit the field ({type(current).__name__}): {one_line(str(e))}"
      ) from None
  return config
