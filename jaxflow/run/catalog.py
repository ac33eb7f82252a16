"""What a user can choose, read from the registries themselves, and a config's fields with their meaning.

`jaxflow list [KIND]` prints `catalog()`: every name comes from the table the code dispatches on (the
models' registry, the optimizers' and losses' name tuples, the activations, initializers and augmentation
ops), so the list can never drift from what a config accepts. `jaxflow config --config=FILE` prints
`describe(config, comments)`: each resolved field, its value, and the comment written beside it in
configs/base.py (the file every shipped config extends, which documents every field).
"""

from __future__ import annotations

import io
import os
import tokenize

import ml_collections

from jaxflow import models
from jaxflow.data import augment, loading, registry
from jaxflow.models import activations, initializers
from jaxflow.training import losses, optimizers

KINDS = (
  "models",
  "optimizers",
  "schedules",
  "losses",
  "activations",
  "initializers",
  "augmentations",
  "datasets",
)
OWN_DATA = (
  "folder:PATH (one sub-folder of images per class)",
  "csv:PATH (a label column and feature columns)",
  "npz:PATH (inputs and labels arrays)",
  "any tensorflow-datasets name prepared in the data dir (e.g. mnist)",
)


def catalog() -> dict[str, list[str]]:
  """{kind: the names a config accepts}, from the registries."""
  return {
    "models": sorted(models.MODELS),
    "optimizers": list(optimizers.OPTIMIZER_NAMES),
    "schedules": list(optimizers.SCHEDULE_NAMES),
    "losses": list(losses.LOSS_NAMES),
    "activations": sorted(activations.ACTIVATIONS),
    "initializers": list(initializers.INITIALIZER_NAMES),
    "augmentations": sorted(augment.OPS),
    "datasets": sorted({*loading.SHIPPED_DATASETS, *registry.NAMED_KINDS}) + list(OWN_DATA),
  }


def field_comments(path: str) -> dict[str, str]:
  """{"train.log_every": comment} from `config.a.b = value  # comment` lines of a config file; a comment on
  the lines right above a field (and no comment on its own line) is that field's."""
  with open(path) as f:
    source = f.read()
  comments: dict[str, str] = {}
  lines = source.splitlines()
  statement, depth = None, 0  # the field the current statement assigns; bracket depth within it
  for token in tokenize.generate_tokens(io.StringIO(source).readline):
    if token.type == tokenize.OP and token.string in "([{":
      depth += 1
    elif token.type == tokenize.OP and token.string in ")]}":
      depth -= 1
    elif token.type == tokenize.NAME and depth == 0 and not lines[token.start[0] - 1][: token.start[1]].strip():
      statement = _assigned_field(lines[token.start[0] - 1].strip().split("#", 1)[0])
    if token.type != tokenize.COMMENT:
      continue
    code = lines[token.start[0] - 1][: token.start[1]].strip()
    field = _assigned_field(code) or (statement if code else None)
    if field and field not in comments:
      comments[field] = token.string.lstrip("#").strip()
  _comments_above(lines, comments)
  return comments


def _assigned_field(code: str) -> str | None:
  target = code.split("=", 1)[0].strip() if "=" in code else ""
  return target.removeprefix("config.") if target.startswith("config.") else None


def _comments_above(lines: list[str], comments: dict[str, str]) -> None:
  """Fields without a comment of their own take the comment block right above them."""
  block: list[str] = []
  for line in lines:
    stripped = line.strip()
    if stripped.startswith("#"):
      block.append(stripped.lstrip("#").strip())
      continue
    field = _assigned_field(stripped.split("#", 1)[0]) if stripped else None
    if field and field not in comments and block:
      comments[field] = " ".join(block)
    block = []


def base_comments(config_module_file: str | None) -> dict[str, str]:
  """The comments of configs/base.py beside a config file (the shipped configs' own base), else none."""
  if not config_module_file:
    return {}
  candidate = os.path.join(os.path.dirname(os.path.abspath(config_module_file)), "base.py")
  comments = field_comments(candidate) if os.path.exists(candidate) else {}
  if os.path.exists(config_module_file):
    comments |= field_comments(config_module_file)
  return comments


def _flat(config, prefix: str = "") -> list[tuple[str, object]]:
  out = []
  for key in sorted(config.keys()):
    value = config[key]
    name = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict):
      out += _flat(value, f"{name}.")
    else:
      out.append((name, value))
  return out


def describe(config: ml_collections.ConfigDict, comments: dict[str, str]) -> str:
  """One line per resolved field: `name = value  # its comment`."""
  rows = _flat(config)
  width = max(len(f"{n} = {v!r}") for n, v in rows)
  lines = []
  for name, value in rows:
    text = f"{name} = {value!r}"
    parts = name.split(".")  # a field without its own comment takes its nearest documented parent's
    comment = next(
      (comments[".".join(parts[:i])] for i in range(len(parts), 0, -1) if ".".join(parts[:i]) in comments), None
    )
    lines.append(f"{text:<{width}}  # {comment}" if comment else text)
  return "\n".join(lines)
