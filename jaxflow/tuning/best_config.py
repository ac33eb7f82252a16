"""best_config.py: a runnable config file for the best trial of a study.

  jaxflow train --config=WORKDIR/best_config.py --workdir=runs/tuned

Given the base config file, its `get_config()` loads that file and applies the study's own overrides
(where the study's config differs from what the file gives: its CLI overrides) plus the best trial's.
Given a config object instead (the Python API), it holds the whole resolved config inline.
"""

from __future__ import annotations

import os

from jaxflow.config import flatten, get_field, load_config, to_dict
from jaxflow.tuning.trials import trial_config
from jaxflow.workdir import write_text


def study_overrides(config, config_file: str) -> dict:
  """The fields where the study's base config differs from what `config_file` gives (its CLI overrides)."""
  fresh = flatten(to_dict(load_config(config_file)))
  given = flatten(to_dict(config))
  return {k: get_field(config, k) for k in sorted(given) if k in fresh and given[k] != fresh[k]}


def write_best_config(path: str, study, best: dict, *, config_file: str | None) -> None:
  """best_config.py: `get_config()` = the base config file + the study's overrides + the best trial's."""
  body = _from_file(path, study, best, config_file) if config_file is not None else _inline(study, best)
  write_text(path, "\n".join(_header(path, study, best) + body) + "\n")


def _header(path: str, study, best: dict) -> list[str]:
  metric, value = study.config.train.monitor, best["value"]
  return [
    f'"""The best trial of a `jaxflow tune` study: trial {best["index"]}, {metric} = {value:.4f} ({study.objective}).',
    "",
    f"  jaxflow train --config={path} --workdir=runs/tuned",
    "",
    "A trial trained alone (--batch=1) is reproduced bitwise by that command (the same params_sha256). One",
    "trained in a vmapped group (--batch>1) matches a run of its config alone to ~1e-7 (float rounding of",
    "the batched program), not bitwise"
    + (
      f"; this one trained in a group of {best['group']}." if best.get("group", 1) > 1 else "; this one trained alone."
    ),
    "",
  ]


def _from_file(path: str, study, best: dict, config_file: str) -> list[str]:
  """The base config file, the study's overrides, the best trial's."""
  file_part, _, variant = config_file.partition(":")
  source, here = os.path.abspath(file_part), os.path.dirname(os.path.abspath(path))
  # Relative when the study sits in the same tree as the config (a repo moves as a whole), else absolute.
  base = (os.path.relpath(source, here) if os.path.commonpath([source, here]) != os.sep else source) + (
    f":{variant}" if variant else ""
  )
  overrides = {**study_overrides(study.config, config_file), **best["overrides"]}
  return [
    "The base config file (a path relative to this file, or absolute), the study's own overrides, "
    "then the best trial's.",
    '"""',
    "",
    "import os",
    "",
    "from jaxflow.config import load_config",
    "from jaxflow.tuning.overrides import apply",
    "",
    f"BASE = {base!r}",
    "OVERRIDES = {",
    *[f"    {k!r}: {v!r}," for k, v in overrides.items()],
    "}",
    "",
    "",
    "def get_config():",
    "  config = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), BASE))",
    "  return apply(config, OVERRIDES)",
  ]


def _inline(study, best: dict) -> list[str]:
  """The Python API without a file: the whole resolved config, inline."""
  full = to_dict(trial_config(study.config, study.space, best["params"]))
  return [
    "The study was given a config object, not a file: this file holds the whole resolved config",
    "(lists become tuples, as jaxflow configs hold them).",
    '"""',
    "",
    "import ml_collections",
    "",
    f"CONFIG = {full!r}",
    "",
    "",
    "def _tuples(value):",
    "  if isinstance(value, dict):",
    "    return {k: _tuples(v) for k, v in value.items()}",
    "  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value",
    "",
    "",
    "def get_config():",
    "  return ml_collections.ConfigDict(_tuples(CONFIG))",
  ]
