"""The verbs that answer questions instead of running anything: --version, list, config, and --help text.

`jaxflow list [KIND]` and `jaxflow config --config=FILE [--config.a.b=v ...]` read the registries and the
config file (jaxflow.run.catalog), so what they print is what a config accepts; they load the model stack
(jax, flax) when they run, each import saying so.
"""

from __future__ import annotations

import importlib.metadata
import sys
from collections.abc import Sequence

from absl import flags
from ml_collections import config_flags

from jaxflow.cli.seeds_compare import USAGE as SEEDS_COMPARE_USAGE
from jaxflow.config import ConfigError, parse_config_flags

HIDDEN = ("help", "helpshort", "helpfull", "helpxml", "flagfile", "undefok")


def version_text() -> str:
  try:
    version = importlib.metadata.version("jaxflow")
  except importlib.metadata.PackageNotFoundError:
    version = "unknown (not installed)"
  return f"jaxflow {version}"


def flag_lines(fv: flags.FlagValues, names: Sequence[str] | None = None) -> list[str]:
  """`  --name: help (default: value)` for each flag (all but absl's own when `names` is None)."""
  names = [n for n in fv if n not in HIDDEN and not n.startswith("config.")] if names is None else names
  lines = []
  for name in names:
    default = fv[name].default
    shown = "" if default is None or name == "config" else f" (default: {default!r})"
    lines.append(f"  --{name}: {fv[name].help}{shown}")
  return lines


def list_main(args: Sequence[str]) -> int:
  from jaxflow.run.catalog import KINDS, catalog  # deferred: loads jax, flax (the registries)

  if any(a in ("-h", "--help") for a in args):
    print(f"usage: jaxflow list [{'|'.join(KINDS)}]\n\nthe names a config accepts, from jaxflow's own registries")
    return 0
  if len(args) > 1 or (args and args[0] not in KINDS):
    raise ConfigError(f"jaxflow list takes one of {', '.join(KINDS)} (or nothing, for all); got {' '.join(args)!r}")
  names = catalog()
  for kind in args or KINDS:
    print(f"{kind}: {', '.join(names[kind])}")
  return 0


def config_main(args: Sequence[str]) -> int:
  """`jaxflow config --config=FILE [--config.a.b=v ...]`: the resolved config, a field per line with its comment."""
  from jaxflow.run.catalog import base_comments, describe  # deferred: loads jax, flax (the registries)

  if any(a in ("-h", "--help") for a in args):
    print(
      "usage: jaxflow config --config=FILE [--config.FIELD=VALUE ...]\n\n"
      "print the resolved config: every field, its value and what it means (configs/base.py's comments)"
    )
    return 0
  fv = flags.FlagValues()
  argv = ["jaxflow config", *args]
  config_flags.DEFINE_config_file("config", None, "config file", flag_values=fv, lock_config=True, sys_argv=argv)
  unparsed = parse_config_flags(fv, argv)
  if len(unparsed) > 1:
    raise ConfigError(f"unexpected arguments {unparsed[1:]}; usage: jaxflow config --config=FILE [--config.a.b=v]")
  path = next(a for a in args if a.startswith("--config=")).split("=", 1)[1].split(":", 1)[0]
  print(describe(fv.config, base_comments(path)))
  return 0


def compare_help(verb: str, args: Sequence[str]) -> bool:
  """`jaxflow seeds|profile compare --help`: prints the usage (True) instead of comparing."""
  if not any(a in ("-h", "--help") for a in args):
    return False
  if verb == "seeds":
    print(f"usage: jaxflow seeds compare A B [--until-decided ...]\n\n{SEEDS_COMPARE_USAGE}", file=sys.stdout)
    return True
  print("usage: jaxflow profile compare A B\n\ncompare two profile reports (their workdirs A and B) side by side")
  return True
