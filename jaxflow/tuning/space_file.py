"""Loading a search space: a Space as given, a list of parameters, or a file whose `get_space()` returns one.

  --space=configs/spaces/digits_mlp.py          get_space()
  --space=configs/spaces/digits_mlp.py:small    get_space("small"): a name the file's VARIANTS declares

The file is imported like a config file (its directory importable, so it may import its neighbours) and
takes a variant under the same rule (`jaxflow.config.check_variant`: only a name its `VARIANTS` tuple
declares); every failure is a one-line ConfigError naming the file.
"""

from __future__ import annotations

import os

from jaxflow.config import ConfigError, check_variant, import_file, importable_config_dir, one_line
from jaxflow.tuning.space import Space


def load_space(path_or_space) -> Space:
  """A Space, or `FILE[:variant]` whose `get_space([variant])` returns one (a list of parameters is wrapped)."""
  if isinstance(path_or_space, Space):
    return path_or_space
  if isinstance(path_or_space, (list, tuple)):
    return Space(*path_or_space)
  path, _, variant = str(path_or_space or "").partition(":")
  if not path:
    raise ConfigError(
      "--space is required: a search-space file with get_space(), e.g. --space=configs/spaces/digits_mlp.py"
    )
  if not os.path.isfile(path):
    raise ConfigError(f"--space={path!r}: file not found")
  label = f"--space={path!r}"
  with importable_config_dir(path):
    module = import_file(path, label)
    if not callable(getattr(module, "get_space", None)):
      raise ConfigError(f"{label} defines no get_space()")
    check_variant(module, variant, label)
    try:
      result = module.get_space(variant) if variant else module.get_space()
    except ConfigError as e:
      raise ConfigError(f"--space={path!r}: {e}") from None
    except Exception as e:
      raise ConfigError(f"--space={path!r}: get_space() failed: {type(e).__name__}: {one_line(str(e))}") from None
  if isinstance(result, (list, tuple)):
    result = Space(*result)
  if not isinstance(result, Space):
    raise ConfigError(
      f"--space={path!r}: get_space() returned {type(result).__name__}, not a jaxflow.tuning.space.Space"
    )
  return result
