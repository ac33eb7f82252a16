"""best_config.py: a runnable config file for the best trial of a study.

  jaxflow train --config=WORKDIR/best_config.py --workdir=runs/tuned

Given the base config file, its `get_config()` loads that file and applies the study's own overrides
(where the study's config differs from what the file gives: its CLI overrides) plus the best trial's.
Given a config object instead (the Python API), it holds the whole resolved config inline.
"""

from __future__ import annotations

import math
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
  """best_config.py: `get_config()` = the base config file + the study's overrides + the best trial's.

  Every value the file embeds is written as a Python literal (`literal`) and every text in its docstring
  is escaped (`_docstring`), so any string or path (quotes, backslashes, newlines) loads back as it was."""
  if config_file is not None:
    doc, code = _from_file(path, study, best, config_file)
  else:
    doc, code = _inline(study, best)
  write_text(path, "\n".join([_docstring(_header(path, study, best) + doc), *code]) + "\n")


def literal(value) -> str:
  """Python source that evaluates to `value` (str, int, float, bool, None, and tuples, lists and dicts
  of them): repr(), except non-finite floats, whose repr (`nan`, `inf`) is no literal."""
  if isinstance(value, float) and not math.isfinite(value):
    return f"float({str(value)!r})"
  if isinstance(value, tuple):
    return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  if isinstance(value, list):
    return "[" + ", ".join(literal(v) for v in value) + "]"
  if isinstance(value, dict):
    return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
  if value is None or isinstance(value, (str, int, float, bool)):
    return repr(value)
  raise TypeError(f"best_config.py cannot embed a {type(value).__name__}: {value!r}")


def _docstring(lines: list[str]) -> str:
  """A module docstring of `lines`: backslashes and double quotes escaped, so no text can end it early."""
  text = "\n".join(lines).replace("\\", "\\\\").replace('"', '\\"')
  return f'"""{text}\n"""'


def _header(path: str, study, best: dict) -> list[str]:
  metric, value = study.config.train.monitor, best["value"]
  return [
    f"The best trial of a `jaxflow tune` study: trial {best['index']}, {metric} = {value:.4f} ({study.objective}).",
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


def _from_file(path: str, study, best: dict, config_file: str) -> tuple[list[str], list[str]]:
  """(docstring lines, code lines): the base config file, the study's overrides, the best trial's."""
  file_part, _, variant = config_file.partition(":")
  source, here = os.path.abspath(file_part), os.path.dirname(os.path.abspath(path))
  # Relative when the study sits in the same tree as the config (a repo moves as a whole), else absolute.
  base = (os.path.relpath(source, here) if os.path.commonpath([source, here]) != os.sep else source) + (
    f":{variant}" if variant else ""
  )
  overrides = {**study_overrides(study.config, config_file), **best["overrides"]}
  doc = [
    "The base config file (a path relative to this file, or absolute), the study's own overrides, "
    "then the best trial's."
  ]
  return doc, [
    "",
    "import os",
    "",
    "from jaxflow.config import load_config",
    "from jaxflow.tuning.overrides import apply",
    "",
    f"BASE = {literal(base)}",
    "OVERRIDES = {",
    *[f"    {literal(k)}: {literal(v)}," for k, v in overrides.items()],
    "}",
    "",
    "",
    "def get_config():",
    "  config = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), BASE))",
    "  return apply(config, OVERRIDES)",
  ]


def _inline(study, best: dict) -> tuple[list[str], list[str]]:
  """(docstring lines, code lines): the Python API without a file, the whole resolved config inline."""
  full = to_dict(trial_config(study.config, study.space, best["params"]))
  doc = [
    "The study was given a config object, not a file: this file holds the whole resolved config",
    "(lists become tuples, as jaxflow configs hold them).",
  ]
  return doc, [
    "",
    "import ml_collections",
    "",
    f"CONFIG = {literal(full)}",
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
