"""Config loading, checking helpers, canonical JSON and hashing.

Configs are ml_collections ConfigDicts built by a `get_config()` in a Python file (the flax-examples
convention). This module only knows about configs in general; what a *training* config must contain is
checked in `jaxflow.run.validate`, which knows the registries.

Every problem found in a config is a `ConfigError` whose message is one line naming the field, the
value and what is allowed, so the CLI can print it and exit 2 before anything is computed or written.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import importlib.util
import json
import os
import re
import sys
import types
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

# Fields that change how a run is carried out but not what it computes: a workdir may be resumed with
# different values of these.
# parallel: a checkpoint restores under any layout; stop_on_divergence only decides whether to stop;
# dispatch_ahead only decides when the next epoch is dispatched (the same bits); the
# compilation cache only decides where compiled programs are kept; checkpoint only decides when and how many
# checkpoints are written (a run resumes bitwise from any of them, and the epochs between two are fused the same).
RESUME_NEUTRAL_FIELDS = (
  "train.overwrite",
  "train.stop_on_divergence",
  "train.dispatch_ahead",
  "audit",
  "parallel",
  "compilation_cache",
  "checkpoint",
)
# Resume-neutral fields that config_hash still covered when earlier jaxflow versions wrote their records
# (config.json, a study's base config, a trial): `config_hashes` gives that hash too, so those records match.
HASHED_BEFORE = ("checkpoint",)


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
  config_flags so that parsing (types, tuples, None) is identical, and through `parse_config_flags`'
  checks (the file, its variant, each field given once and known).
  """
  argv = ["jaxflow", f"--config={config_file}"] + [f"--config.{o.removeprefix('--config.')}" for o in overrides]
  flag_values = flags.FlagValues()
  # sys_argv: config_flags finds the override flags by scanning argv; by default it scans sys.argv.
  config_flags.DEFINE_config_file("config", flag_values=flag_values, lock_config=False, sys_argv=argv)
  parse_config_flags(flag_values, argv)
  return flag_values.config


def parse_config_flags(flag_values, argv: Sequence[str]) -> list[str]:
  """Parses argv into flag_values (which defines a config_flags `config`); returns the unparsed args.

  Before config_flags runs, the config file is loaded here once on its own (`read_config_file`: it has a
  `get_config()`, takes the variant asked for, returns a ConfigDict) and the overrides are checked against
  what it returns (`check_overrides`: each field given once, and a field of the config). config_flags then
  loads it again and applies the overrides; what it still reports (absl flag errors for a value of the
  wrong type, KeyError/AttributeError, the file's own exceptions) becomes a one-line ConfigError too.
  """
  config_args = [a for a in argv if re.match(r"-{1,2}config(=|$)", a)]
  if len(config_args) > 1:
    raise ConfigError(f"--config is given {len(config_args)} times ({' '.join(config_args)}); give one config file")
  config_file = config_args[0].split("=", 1)[1] if config_args and "=" in config_args[0] else None
  if config_file is None:
    raise ConfigError("--config is required, e.g. --config=configs/digits_cnn.py")
  path, _, variant = config_file.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} not found")
  label = f"config file {path!r}"
  with importable_config_dir(path), warnings.catch_warnings():
    # ml_collections loads config files with importlib's deprecated load_module(): its deprecation, not
    # ours, and nothing a user can act on; silenced here only.
    warnings.filterwarnings("ignore", message=r"the load_module\(\) method is deprecated", category=DeprecationWarning)
    defaults = read_config_file(path, variant)
    check_overrides(defaults, argv)
    argv, nulled = split_none_overrides(defaults, argv)
    try:
      unparsed = flag_values(list(argv))
      config = flag_values["config"].value
      for field in nulled:
        section, name = _section_of(config, field)
        section[name] = None
      return unparsed
    except flags.Error as e:
      raise ConfigError(one_line(str(e))) from None
    except (KeyError, AttributeError) as e:
      raise ConfigError(f"unknown config field in the overrides: {one_line(_error_text(e))}") from None
    except Exception as e:  # the config file's own code failed on its second load
      raise ConfigError(f"{label} could not be loaded: {type(e).__name__}: {one_line(_error_text(e))}") from None


def _error_text(error: BaseException) -> str:
  """An exception's message; a KeyError's own str() is the repr of its key (quotes, a literal \\n)."""
  if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
    return error.args[0]
  return str(error)


# --- config and space files: Python that runs when loaded ----------------------------------------------


def import_file(path: str, label: str) -> types.ModuleType:
  """`path` run as a module of its own (a name unique to its absolute path, in sys.modules as importlib's
  recipe has it, so that e.g. a dataclass in the file works); its folder's parent importable
  (`importable_config_dir`) is the caller's job. A failure is a one-line ConfigError starting with `label`."""
  name = "jaxflow_file_" + hashlib.sha256(os.path.abspath(path).encode()).hexdigest()[:16]
  try:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
  except Exception as e:
    sys.modules.pop(name, None)
    if isinstance(e, ConfigError):
      raise ConfigError(f"{label}: {e}") from None
    raise ConfigError(f"{label} could not be loaded: {type(e).__name__}: {one_line(_error_text(e))}") from None
  return module


def check_variant(module: types.ModuleType, variant: str, label: str) -> None:
  """The variant rule of config and space files: `FILE:NAME` is allowed only for a NAME the file declares
  in its module-level `VARIANTS` tuple; a file without `VARIANTS` takes no variant. No `:NAME` (or an
  empty one) always means the file's default."""
  declared = getattr(module, "VARIANTS", ())
  if not isinstance(declared, (tuple, list)) or not all(isinstance(v, str) and v for v in declared):
    raise ConfigError(f"{label}: VARIANTS={declared!r} must be a tuple of non-empty strings, e.g. ('test',)")
  if not variant or variant in declared:
    return
  if not declared:
    raise ConfigError(f"{label} takes no variant (it declares no VARIANTS); drop ':{variant}'")
  allowed = ", ".join(repr(v) for v in declared)
  raise ConfigError(f"{label} has no variant {variant!r}; allowed: {allowed} (or none, for the file's default)")


def read_config_file(path: str, variant: str = "") -> ml_collections.ConfigDict:
  """What `path`'s `get_config([variant])` returns, checked: the file defines get_config(), declares the
  variant (`check_variant`) and returns an ml_collections.ConfigDict. One-line ConfigErrors naming the file.
  The caller makes the file's folder importable (`importable_config_dir`)."""
  label = f"config file {path!r}"
  module = import_file(path, label)
  if not callable(getattr(module, "get_config", None)):
    raise ConfigError(f"{label} has no get_config(); define one that returns an ml_collections.ConfigDict")
  check_variant(module, variant, label)
  try:
    config = module.get_config(variant) if variant else module.get_config()
  except ConfigError as e:
    raise ConfigError(f"{label}: {e}") from None
  except Exception as e:
    raise ConfigError(f"{label}: get_config() raised {type(e).__name__}: {one_line(_error_text(e))}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    what = "None (a missing return statement?)" if config is None else f"a {type(config).__name__}"
    raise ConfigError(f"{label}: get_config() returned {what}, not an ml_collections.ConfigDict")
  return config


# --- overrides: each field once, and a field of the config ---------------------------------------------


def override_fields(argv: Sequence[str]) -> list[str]:
  """The field of each `--config.a.b=v` / `--config.a.b` / `--noconfig.a.b` in argv, in order."""
  fields = []
  for arg in argv:
    if not arg.startswith("-"):
      continue
    name = arg.split("=", 1)[0].lstrip("-")
    for prefix in ("config.", "noconfig."):
      if name.startswith(prefix):
        fields.append(name.removeprefix(prefix))
        break
  return fields


def check_overrides(config: ml_collections.ConfigDict, argv: Sequence[str]) -> None:
  """Each overridden field is given once (config_flags would join a tuple field's values and keep the last
  of any other) and is a field of `config`, else a one-line ConfigError naming it (with close matches)."""
  fields = override_fields(argv)
  for field in dict.fromkeys(fields):
    names = (f"config.{field}", f"noconfig.{field}")
    given = [a for a in argv if a.startswith("-") and a.lstrip("-").split("=", 1)[0] in names]
    if len(given) > 1:
      times = "twice" if len(given) == 2 else f"{len(given)} times"
      raise ConfigError(f"config.{field} is given {times} ({' '.join(given)}); give each field once")
    missing = _unknown_field_message(config, field)
    if missing:
      raise ConfigError(missing)


def split_none_overrides(config: ml_collections.ConfigDict, argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(argv without them, their fields) for each `--config.a.b=None` of a field the config file declares
  nullable (`config_dict.placeholder(type)`, e.g. checkpoint.every_seconds: None is no time cadence), which
  parse_config_flags then sets to None. config_flags parses "None" with the field's type: a float or int
  placeholder refused it, and a str one (init_from, loss) silently became the string 'None'."""
  kept, nulled, args = [], [], list(argv)
  while args:
    arg = args.pop(0)
    name, equals, value = arg.lstrip("-").partition("=")
    if not equals and args and args[0] == "None":  # absl's space-separated form: --config.a.b None
      value = args[0]
    field = name.removeprefix("config.")
    if arg.startswith("-") and name.startswith("config.") and value == "None" and _nullable(config, field):
      nulled.append(field)
      if not equals:
        args.pop(0)
    else:
      kept.append(arg)
  return kept, nulled


def _nullable(config: ml_collections.ConfigDict, field: str) -> bool:
  section, name = _section_of(config, field)
  return isinstance(dict(section.items(preserve_field_references=True)).get(name), ml_collections.FieldReference)


def _section_of(config: ml_collections.ConfigDict, field: str) -> tuple[ml_collections.ConfigDict, str]:
  """(the section holding `a.b.c`, "c"); a top-level field's section is the config itself."""
  parent, _, name = field.rpartition(".")
  return (get_field(config, parent) if parent else config), name


_SECTIONS = (Mapping, ml_collections.ConfigDict)  # a ConfigDict is no collections.abc.Mapping


def field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every dotted field of a config, its sections included ("optim", "optim.lr", ...)."""
  paths = []
  for key, value in config.items():
    paths.append(f"{prefix}{key}")
    if isinstance(value, _SECTIONS):
      paths.extend(field_paths(value, f"{prefix}{key}."))
  return paths


def _unknown_field_message(config: ml_collections.ConfigDict, field: str) -> str | None:
  """None when `field` is a field of `config`; else one line naming it and what is there."""
  node: Any = config
  parts = field.split(".")
  for depth, part in enumerate(parts):
    if not isinstance(node, _SECTIONS) or part not in node:
      break
    node = node[part]
  else:
    return None
  section = ".".join(parts[:depth])
  close = difflib.get_close_matches(field, field_paths(config), n=3, cutoff=0.75)
  if close:
    return f"config.{field} is not a config field; did you mean {' or '.join(close)}?"
  if not isinstance(node, _SECTIONS):
    return f"config.{field} is not a config field: config.{section} is a value, not a section"
  where = f"config.{section}" if section else "the config"
  return f"config.{field} is not a config field; {where} has: {', '.join(sorted(node.keys()))}"


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


def counted_differences(old: dict, new: dict, *, ignore: tuple[str, ...] = ()) -> list[str]:
  """`differences` without the resume-neutral fields (and the fields or prefixes in `ignore`): what makes two
  configs train differently."""
  skipped = (*RESUME_NEUTRAL_FIELDS, *ignore)
  prefixes = tuple(f"{f}." for f in skipped) + tuple(f"{f}:" for f in skipped)
  return [d for d in differences(old, new) if not d.startswith(prefixes)]


# Schedules whose learning rate at a step does not depend on how many epochs the run has: raising
# train.epochs leaves every step already trained exactly as it was, so a finished run may be extended.
LENGTH_INDEPENDENT_SCHEDULES = ("constant", "exponential")


def extension_refusal(previous: dict, config: ml_collections.ConfigDict) -> str | None:
  """None when `config` continues the run whose config.json config is `previous` by raising train.epochs and
  nothing else that counts (resume-neutral fields aside); else why it cannot, in words for one line. Also
  None when nothing but resume-neutral fields differ (that is a plain resume)."""
  changed = counted_differences(previous, to_dict(config))
  if not changed:
    return None
  if any(not d.startswith("train.epochs:") for d in changed):
    return "differs in " + "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
  before, after = previous.get("train", {}).get("epochs"), config.train.epochs
  if not (isinstance(before, int) and after > before):
    return f"train.epochs {before!r} -> {after!r}: a run is extended with more epochs, never fewer"
  schedule = config.optim.schedule
  if schedule not in LENGTH_INDEPENDENT_SCHEDULES:
    return (
      f"train.epochs {before} -> {after} would change what optim.schedule={schedule!r} already did (it decays over "
      f"all epochs); only {' and '.join(LENGTH_INDEPENDENT_SCHEDULES)} schedules can be extended"
    )
  return None


def _hash_without(config: ml_collections.ConfigDict, fields: tuple[str, ...]) -> str:
  data = to_dict(config)
  for path in fields:
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
      node = node.get(part, {})
    node.pop(leaf, None)
  canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(canonical.encode()).hexdigest()


def config_hash(config: ml_collections.ConfigDict) -> str:
  """sha256 of the canonical JSON of the config, without the resume-neutral fields."""
  return _hash_without(config, RESUME_NEUTRAL_FIELDS)


def config_hashes(config: ml_collections.ConfigDict) -> tuple[str, str]:
  """(config_hash, the hash earlier jaxflow versions gave the same config: with the HASHED_BEFORE fields): what a
  record written before those fields became resume-neutral is compared with, so it is not taken for another
  config's (a finished seed trained again, a study refused)."""
  earlier = tuple(f for f in RESUME_NEUTRAL_FIELDS if f not in HASHED_BEFORE)
  return config_hash(config), _hash_without(config, earlier)


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
