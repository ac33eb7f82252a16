"""Files written whole or not at all, and the one JSON encoder for what jaxflow records.

A file is written to a temporary name beside its target and renamed over it (`os.replace` is atomic on
POSIX): a process killed at any instant leaves the previous file or the new one. Records hold numpy
scalars and arrays, tuples and dataclass-free dicts; `json_default` is how all of them become JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
  """`json.dump(default=...)` for what jaxflow's records hold besides JSON's own types."""
  if isinstance(value, (np.floating, np.integer, np.bool_)):
    return value.item()
  if isinstance(value, np.ndarray) or hasattr(value, "__array__"):  # numpy and jax arrays
    return np.asarray(value).tolist()
  if isinstance(value, (tuple, set, frozenset)):
    return list(value)
  if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
    return np.dtype(value).name
  raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_jsonable(value: Any) -> Any:
  """`value` as plain JSON types (what reading its JSON back would give)."""
  return json.loads(json.dumps(value, default=json_default))


def write_text(path: str, text: str) -> str:
  """Writes `text` to `path` atomically (temporary name, then rename); returns `path`."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
  try:
    with open(tmp, "w") as f:
      f.write(text)
    os.replace(tmp, path)
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)
  return path


def write_json(path: str, data: Any, *, indent: int | None = 2, sort_keys: bool = False) -> str:
  """Writes `data` as JSON to `path` atomically, numpy values included; returns `path`."""
  return write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys, default=json_default) + "\n")


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)
