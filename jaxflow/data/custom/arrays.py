"""'npz:PATH': numpy arrays saved with `np.savez` as a parsed `Table`: the input array, the label array
as classes, an optional `split` array of strings and named metadata arrays, all [n, ...] and checked
row by row. Nothing is unpickled from a user's file.
"""

from __future__ import annotations

import dataclasses
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from jaxflow.data.custom.parsed import (
  INPUT_FEATURE,
  PROVENANCE_FEATURE,
  SPLIT_COLUMN,
  Table,
  check_split_name,
  class_spec,
  describe,
  int_labels_checked,
  select,
  split_description,
  split_order,
  string_labels,
)
from jaxflow.data.store import DatasetError


@dataclasses.dataclass(frozen=True)
class _Arrays:
  """The arrays of an NPZ that the conversion reads, by role, with the names they have in the file."""

  x_key: str
  y_key: str
  x: np.ndarray
  y: np.ndarray
  split: np.ndarray | None
  extra: dict[str, np.ndarray]


def _npz_array(archive: Any, path: str, key: str) -> np.ndarray:
  try:
    return archive[key]
  except ValueError as e:  # object arrays need pickle, which is never loaded from a user's file
    raise DatasetError(
      f"{path}: array {key!r} cannot be read without pickle ({e}); store numbers or strings."
    ) from None


def _load_arrays(path: str, label: str, metadata: tuple[str, ...]) -> _Arrays:
  """The input, label, split and metadata arrays of NPZ file `path`; missing ones are refused."""
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise DatasetError(f"{path}: not a readable NPZ file ({' '.join(str(e).split())}).") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise DatasetError(f"{path}: holds a single array; expected an NPZ archive (np.savez(path, x=..., y=...)).")
  with archive:
    names = list(archive.files)
    listing = ", ".join(names) or "none"
    x_key = next((k for k in ("x", "features", "inputs") if k in names), None)
    y_key = next((k for k in (label, "y", "label") if k in names), None)
    if x_key is None:
      raise DatasetError(f"{path}: no input array 'x' (or 'features', 'inputs'); arrays: {listing}.")
    if y_key is None:
      raise DatasetError(f"{path}: no label array {label!r} (data.label_feature; or 'y', 'label'); arrays: {listing}.")
    missing = [m for m in metadata if m not in names]
    if missing:
      raise DatasetError(
        f"{path}: data.metadata_features or data.group_feature names {missing[0]!r}, which is not an array; "
        f"arrays: {listing}."
      )
    return _Arrays(
      x_key=x_key,
      y_key=y_key,
      x=_npz_array(archive, path, x_key),
      y=_npz_array(archive, path, y_key),
      split=_npz_array(archive, path, SPLIT_COLUMN) if SPLIT_COLUMN in names else None,
      extra={m: _npz_array(archive, path, m) for m in metadata},
    )


def _inputs(path: str, arrays: _Arrays, row: Callable[[int], str]) -> np.ndarray:
  """The input array as stored: uint8 as it is, other numbers float32, [n] as [n, 1]; all rows checked."""
  x, x_key = arrays.x, arrays.x_key
  if x.ndim == 0 or x.shape[0] == 0:
    raise DatasetError(f"{path}: array {x_key!r} holds no examples (shape {x.shape}).")
  n = x.shape[0]
  split = ((SPLIT_COLUMN, arrays.split),) if arrays.split is not None else ()
  for key, array in ((arrays.y_key, arrays.y), *split, *arrays.extra.items()):
    if array.ndim == 0 or array.shape[0] != n:
      raise DatasetError(f"{path}: array {key!r} has shape {array.shape}, but {x_key!r} has {n} rows.")
  if x.dtype.kind not in "biuf":
    raise DatasetError(f"{path}: array {x_key!r} is {x.dtype}; inputs must be numbers.")
  if x.dtype.kind == "f":
    bad = np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))
    if bad.size:
      raise DatasetError(f"{row(int(bad[0]))}: array {x_key!r} holds a value that is not a finite number.")
  inputs = x if x.dtype == np.uint8 else x.astype(np.float32)
  if inputs.ndim == 1:
    inputs = inputs[:, None]
  if inputs.dtype == np.float32 and not np.isfinite(inputs).all():
    i = int(np.flatnonzero(~np.isfinite(inputs.reshape(n, -1)).all(axis=1))[0])
    raise DatasetError(f"{row(i)}: array {x_key!r} holds a value too large for float32.")
  return inputs


def _labels(path: str, arrays: _Arrays, n: int, row: Callable[[int], str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """(int64 class ids, class names) from integer or string labels [n]; float labels are refused."""
  y, y_key = arrays.y, arrays.y_key
  if y.ndim != 1:
    raise DatasetError(f"{path}: label array {y_key!r} has shape {y.shape}; expected [n] = ({n},).")
  if y.dtype.kind in "biu":
    return int_labels_checked(y.astype(np.int64), row)
  if y.dtype.kind in "US":
    return string_labels([str(v) for v in y.astype(str)])
  if y.dtype.kind != "f":
    raise DatasetError(f"{path}: label array {y_key!r} is {y.dtype}; labels are integers 0..max or strings.")
  whole = np.isfinite(y) & (y == np.round(y))
  i = int(np.flatnonzero(~whole)[0]) if not whole.all() else 0
  hint = "; cast with y.astype(int) if they are class ids" if whole.all() else ""
  raise DatasetError(
    f"{row(i)}: label {y[i].item()!r} in array {y_key!r} ({y.dtype}) is not a class (labels are integers 0..max "
    f"or strings; regression targets are not supported{hint})."
  )


def _split_of_row(path: str, split: np.ndarray | None, row: Callable[[int], str]) -> list[str] | None:
  """Each row's split from the `split` array, or None without one."""
  if split is None:
    return None
  if split.dtype.kind not in "US" or split.ndim != 1:
    raise DatasetError(f"{path}: array {SPLIT_COLUMN!r} is {split.dtype} {split.shape}; expected [n] strings.")
  split_of_row = [str(v) for v in split.astype(str)]
  for i, value in enumerate(split_of_row):
    check_split_name(value, f"{row(i)}, array {SPLIT_COLUMN!r}")
  return split_of_row


def _add_metadata(path: str, extra: dict[str, np.ndarray], features: dict[str, tuple], columns: dict[str, Any]) -> None:
  """Adds each metadata array to `features` and `columns`: strings [n] as text, numbers as stored."""
  for name, array in extra.items():
    if name in features or name == PROVENANCE_FEATURE["npz"]:
      raise DatasetError(f"{path}: metadata array {name!r} has the name of a feature jaxflow stores; rename the array.")
    if array.dtype.kind in "US":
      if array.ndim != 1:
        raise DatasetError(f"{path}: metadata array {name!r} holds strings of shape {array.shape}; expected [n].")
      features[name], columns[name] = ("text",), [str(v) for v in array.astype(str)]
    elif array.dtype.kind in "biuf":
      features[name], columns[name] = ("array", array.dtype, array.shape[1:]), array
    else:
      raise DatasetError(f"{path}: metadata array {name!r} is {array.dtype}; expected numbers or strings.")


def read_npz(path: str, label: str, metadata: tuple[str, ...]) -> Table:
  """NPZ file `path` as a Table: `features` [n, ...], `label`, the `metadata` arrays and `npz_index`."""
  arrays = _load_arrays(path, label, metadata)

  def row(i: int) -> str:
    return f"{path} index {i}"

  inputs = _inputs(path, arrays, row)
  n = inputs.shape[0]
  labels, class_names = _labels(path, arrays, n, row)
  split_of_row = _split_of_row(path, arrays.split, row)
  features = {INPUT_FEATURE: ("array", inputs.dtype, inputs.shape[1:]), label: class_spec(class_names)}
  columns = {INPUT_FEATURE: inputs, label: labels}
  _add_metadata(path, arrays.extra, features, columns)
  features[PROVENANCE_FEATURE["npz"]] = ("array", np.int64, ())
  columns[PROVENANCE_FEATURE["npz"]] = np.arange(n, dtype=np.int64)
  order = split_order(split_of_row, n)
  description = describe(
    "npz",
    path,
    f"features = array {arrays.x_key!r}, label array {arrays.y_key!r}, classes {', '.join(class_names)}; "
    + split_description(split_of_row, "array", "array"),
  )
  return Table(features, {s: select(columns, rows_) for s, rows_ in order.items()}, description)
