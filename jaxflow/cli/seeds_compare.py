"""`jaxflow seeds compare A B [--until-decided ...]`: two studies compared, or two arms trained until decided.

  jaxflow seeds compare runs/a runs/b                        compare two finished studies (fixed seeds)
  jaxflow seeds compare A B --until-decided [--workdir=DIR] [--min_effect=X] [--max_seeds=64] [--first=4]
                                            [--round=4] [--mode=auto|vmap|sequential|devices] [--quiet]

With --until-decided, A and B are config files (trained into DIR/a and DIR/b) or workdirs of single-sweep
studies (extended in place); see jaxflow.seeds.until_decided.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from jaxflow.config import ConfigError

USAGE = __doc__.split("\n\n")[1]
# --flag -> (its type, the keyword of compare_until_decided)
FLAGS = {
  "workdir": (str, "workdir"),
  "min_effect": (float, "min_effect"),
  "max_seeds": (int, "max_seeds"),
  "first": (int, "first"),
  "round": (int, "round_size"),
  "mode": (str, "mode"),
}


def parse(args: Sequence[str]) -> tuple[list[str], bool, dict]:
  """(paths, until_decided, keywords); a one-line ConfigError for anything else."""
  paths, until, kw = [], False, {}
  for arg in args:
    if not arg.startswith("--"):
      paths.append(arg)
      continue
    name, has_value, value = arg[2:].partition("=")
    name = name.replace("-", "_")
    if name in ("until_decided", "quiet") and not has_value:
      until = until or name == "until_decided"
      kw["quiet"] = kw.get("quiet", False) or name == "quiet"
      continue
    if name not in FLAGS or not has_value:
      raise ConfigError(
        f"unknown flag {arg!r} for jaxflow seeds compare; allowed: --until-decided, --quiet, "
        + ", ".join(f"--{f}=..." for f in FLAGS)
      )
    kind, key = FLAGS[name]
    try:
      kw[key] = kind(value)
    except ValueError:
      raise ConfigError(f"--{name}={value!r} must be a {kind.__name__}") from None
  if len(paths) != 2:
    raise ConfigError(
      f"jaxflow seeds compare takes two studies (or configs with --until-decided), got {len(paths)}: "
      "jaxflow seeds compare runs/a runs/b"
    )
  if not until and set(kw) - {"quiet"}:
    raise ConfigError(f"--{sorted(set(kw) - {'quiet'})[0]} applies only with --until-decided")
  return paths, until, kw


def seeds_compare(args: Sequence[str]) -> int:
  paths, until, kw = parse(args)
  if until:
    from jaxflow.seeds.until_decided import compare_until_decided  # deferred: loads jax

    result = compare_until_decided(*paths, **kw)
    print(result["verdict"])
    keys = ("decision", "seeds_per_arm", "fixed_design_seeds_per_arm", "difference", "p_a_beats_b")
    print(json.dumps({k: result[k] for k in keys}))
    return 0
  from jaxflow.seeds.compare import compare_studies  # deferred: loads scipy

  result = compare_studies(*paths)
  diffs = result["config_differences"]
  if diffs is None:
    print("config differences: unknown (a study's seed workdirs have no config.json)")
  else:
    print(f"config differences ({paths[0]} -> {paths[1]}): {'; '.join(diffs) if diffs else 'none'}")
  print(result["verdict"])
  keys = ("difference", "difference_ci95", "welch_t_p", "mann_whitney_p", "a_beats_b", "b_beats_a")
  print(json.dumps({k: result[k] for k in keys}))
  return 0
