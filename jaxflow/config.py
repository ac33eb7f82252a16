"""Config loading, checking helpers, canonical JSON and hashing.

Configs are ml_collections ConfigDicts built by a `get_config()` in a Python file (the flax-examples
convention). This module only knows about configs in general; what a *training* config must contain is
checked in `jaxflow.run.validate`, which knows the registries.

Every problem found in a config is a `ConfigError` whose message is one line naming the field, the
value and what is allowed, so the CLI can print it and exit 2 before anything is computed or written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

# Fields that change how a run is carried out but not what it computes: a workdir may be resumed with
# different values of these.
RESUME_NEUTRAL_FIELDS = ("train.overwrite", "audit", "parallel")  # parallel: a checkpoint restores under any layout


class ConfigError(ValueError):
  """A config field holds a value jaxflow cannot use. The message is one line, fit for a terminal."""


@contextlib.contextmanager
def importable_config_dir(config_file: str) -> Iterator[None]:
  """Lets a config file import its siblings as `configs.base` while it is loaded.

  Config files live in a `configs/` folder that is not an installed package; putting the folder that
  holds it on sys.path for the duration of the load makes `from configs import base` work from any
  working directory, without installing the configs.
  """
  root = os.path.dirname(os.path.dirname(os.path.abspath(config_file)))
  sys.path.insert(0, root)
  try:
    yield
  finally:
    with contextlib.suppress(ValueError):
      sys.path.remove(root)


def load_config(config_file: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  """Loads `FILE[:variant]` and applies `a.b=value` overrides, as `--config.a.b=value` would.

  The Python-API twin of the CLI's `--config=FILE --config.a.b=v`: both go through ml_collections'
  config_flags so that parsing (types, tuples, None) is identical.
  """
  argv = ["jaxflow", f"--config={config_file}"] + [f"--config.{o.removeprefix('--config.')}" for o in overrides]
  flag_values = flags.FlagValues()
  # sys_argv: config_flags finds the override flags by scanning argv; by default it scans sys.argv.
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=False, sys_argv=argv)
  parse_config_flags(flag_values, argv)
  return flag_values.config


def parse_config_flags(flag_values, argv: Sequence[str]) -> list[str]:
  """Parses argv into flag_values (which defines a config_flags `config`); returns the unparsed args.

  config_flags reports problems as absl flag errors, but also as KeyError/AttributeError (an override
  of a field the config lacks), OSError (a missing file, deferred to the first attribute access) and
  whatever the config file itself raises; all of them become one-line ConfigErrors here.
  """
  config_file = next((a.split("=", 1)[1] for a in argv if a.startswith("--config=")), None)
  if config_file is None:
    raise ConfigError("--config is required, e.g. --config=configs/digits_cnn.py")
  path = config_file.split(":")[0]
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} not found")
  with importable_config_dir(path), warnings.catch_warnings():
    # ml_collections loads config files with importlib's deprecated load_module(): its deprecation, not
    # ours, and nothing a user can act on; silenced here only.
    warnings.filterwarnings("ignore", message=r"the load_module\(\) method is deprecated", category=DeprecationWarning)
    try:
      unparsed = flag_values(list(argv))
      flag_values["config"].value
      return unparsed
    except flags.Error as e:
      raise ConfigError(one_line(str(e))) from None
    except (KeyError, AttributeError) as e:
      raise ConfigError(f"unknown config field in the overrides: {one_line(str(e))}") from None
    except Exception as e:  # the config file's own code failed (syntax error, bad get_config)
      raise ConfigError(f"config file {path!r} could not be loaded: {type(e).__name__}: {one_line(str(e))}") from None


def one_line(message: str) -> str:
  return " ".join(message.split())


def get_field(config: ml_collections.ConfigDict, path: str) -> Any:
  node: Any = config
  for part in path.split("."):
    node = node[part]
  return node


def to_dict(config: ml_collections.ConfigDict) -> dict:
  """Plain, JSON-ready dict (tuples become lists)."""
  return json.loads(config.to_json_best_effort(sort_keys=True))


def _tuples(value):
  if isinstance(value, dict):
    return {k: _tuples(v) for k, v in value.items()}
  if isinstance(value, list):
    return tuple(_tuples(v) for v in value)
  return value


def from_dict(data: dict) -> ml_collections.ConfigDict:
  """The inverse of `to_dict`: JSON stores tuples as lists, a config holds tuples (`model.widths`)."""
  return ml_collections.ConfigDict(_tuples(data))


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
  """{"a.b": leaf} of a nested dict (a `to_dict` tree)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def differences(old: dict, new: dict) -> list[str]:
  """`field: old -> new` for every leaf that differs between two `to_dict` trees, sorted by field."""
  old_flat, new_flat = flatten(old), flatten(new)
  keys = sorted(set(old_flat) | set(new_flat))
  return [f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in keys if old_flat.get(k) != new_flat.get(k)]


def config_hash(config: ml_collections.ConfigDict) -> str:
  """sha256 of the canonical JSON of the config, without the resume-neutral fields."""
  data = to_dict(config)
  for path in RESUME_NEUTRAL_FIELDS:
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
      node = node.get(part, {})
    node.pop(leaf, None)
  canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(canonical.encode()).hexdigest()


# --- checking helpers: each raises a one-line ConfigError naming `config.<field>` -------------------------


def require_choice(config: ml_collections.ConfigDict, field: str, allowed: Collection[str]) -> str:
  value = get_field(config, field)
  if value not in allowed:
    raise ConfigError(f"config.{field}={value!r} is not known; allowed: {', '.join(sorted(allowed))}")
  return value


def require_type(config: ml_collections.ConfigDict, field: str, kind: type | tuple[type, ...]) -> Any:
  value = get_field(config, field)
  kinds = kind if isinstance(kind, tuple) else (kind,)
  # bool is an int subclass: True is not a batch size.
  wrong = not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds)
  if wrong:
    names = " or ".join(k.__name__ for k in kinds)
    raise ConfigError(f"config.{field}={value!r} has type {type(value).__name__}; expected {names}")
  return value


def require_positive(config: ml_collections.ConfigDict, field: str, kind: type = int, *, allow_zero: bool = False):
  kinds = (int, float) if kind is float else (int,)
  value = require_type(config, field, kinds)
  # Written so that nan fails too (every comparison with nan is False).
  if not (value > 0 or (allow_zero and value == 0)):
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigError(f"config.{field}={value!r} must be {bound}")
  if value == float("inf"):
    raise ConfigError(f"config.{field}={value!r} must be finite")
  return value
