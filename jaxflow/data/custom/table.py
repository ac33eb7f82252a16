"""'csv:PATH': a CSV file with a header row as a parsed `Table`: numeric feature columns become one
float32 vector, the label column classes, named metadata columns features of their own, and an optional
`split` column assigns rows to splits. Every bad cell is refused with its line and column.
"""

from __future__ import annotations

import csv
import re
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

_INT_RE = re.compile(r"[+-]?[0-9]+")


def _parse_numbers(values: list[str]) -> np.ndarray | None:
  """float64 values, or None if any is not a number (numpy parses in C; the slow search is for errors)."""
  try:
    return np.asarray(values, dtype=str).astype(np.float64)
  except ValueError:
    return None


def _metadata_column(values: list[str]) -> tuple[tuple, Any]:
  """(feature spec, values): int64 if every value is an integer, else float64 if a number, else text."""
  if all(_INT_RE.fullmatch(v.strip()) for v in values):
    try:
      return ("array", np.int64, ()), np.asarray([int(v) for v in values], np.int64)
    except OverflowError:
      pass
  numbers = _parse_numbers(values)
  if numbers is not None:
    return ("array", np.float64, ()), numbers
  return ("text",), list(values)


def _read_csv_rows(path: str) -> tuple[list[str], list[list[str]], list[int]]:
  """(header, rows, line of each row); blank lines skipped, ragged rows refused."""
  rows, lines = [], []
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f, skipinitialspace=True)
      header = next(reader, None)
      if header is None:
        raise DatasetError(f"{path}: empty file; expected a header row, then one row per example.")
      header = [h.strip() for h in header]
      for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
          continue
        if len(row) != len(header):
          raise DatasetError(
            f"{path} line {reader.line_num}: {len(row)} fields, but the header (line 1) has {len(header)}."
          )
        rows.append(row)
        lines.append(reader.line_num)
  except UnicodeDecodeError as e:
    raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}).") from None
  except csv.Error as e:
    raise DatasetError(f"{path}: not a readable CSV ({e}).") from None
  return header, rows, lines


def _check_header(path: str, header: list[str], label: str, metadata: tuple[str, ...]) -> None:
  for position, column in enumerate(header, start=1):
    if not column:
      raise DatasetError(
        f"{path}: column {position} has no name (pandas writes its index that way: use to_csv(index=False))."
      )
  seen = set()
  for column in header:
    if column in seen:
      raise DatasetError(f"{path}: column {column!r} appears twice in the header.")
    seen.add(column)
  columns = ", ".join(header)
  if label not in header:
    raise DatasetError(f"{path}: no label column {label!r} (data.label_feature); columns: {columns}.")
  missing = [m for m in metadata if m not in header]
  if missing:
    raise DatasetError(
      f"{path}: data.metadata_features or data.group_feature names {missing[0]!r}, which is not a column; "
      f"columns: {columns}."
    )


def _inputs(
  rows: list[list[str]], column: dict[str, int], feature_columns: list[str], label: str, line: Callable[[int], str]
) -> np.ndarray:
  """float32 [n, d]: the feature columns of every row; a cell that is not a finite number is refused."""
  cells = np.asarray([[row[column[c]] for c in feature_columns] for row in rows], dtype=str)
  inputs = _parse_numbers(cells.ravel().tolist())
  if inputs is None:
    for i, row in enumerate(rows):
      for c in feature_columns:
        if _parse_numbers([row[column[c]]]) is None:
          raise DatasetError(
            f"{line(i)}, column {c!r}: {row[column[c]]!r} is not a number (every column but the label "
            f"{label!r}, {SPLIT_COLUMN!r} and data.metadata_features is a numeric input)."
          )
  inputs = inputs.reshape(len(rows), len(feature_columns)).astype(np.float32)
  not_finite = np.argwhere(~np.isfinite(inputs))
  if not_finite.size:
    i, j = (int(v) for v in not_finite[0])
    c = feature_columns[j]
    raise DatasetError(f"{line(i)}, column {c!r}: {rows[i][column[c]]!r} is not a finite float32 number.")
  return inputs


def _labels(raw_labels: list[str], label: str, line: Callable[[int], str]) -> tuple[np.ndarray, tuple[str, ...]]:
  """(int64 class ids, class names): all integers are classes 0..max, else the distinct strings, sorted."""
  for i, value in enumerate(raw_labels):
    if not value:
      raise DatasetError(f"{line(i)}, column {label!r}: empty label.")
  if all(_INT_RE.fullmatch(v) for v in raw_labels):
    return int_labels_checked(np.asarray([int(v) for v in raw_labels]), line)
  if _parse_numbers(raw_labels) is not None:
    i = next(i for i, v in enumerate(raw_labels) if not _INT_RE.fullmatch(v))
    raise DatasetError(
      f"{line(i)}, column {label!r}: label {raw_labels[i]!r} is not a class (labels are integers 0..max "
      "or names; regression targets are not supported)."
    )
  return string_labels(raw_labels)


def _split_of_row(rows: list[list[str]], column: dict[str, int], line: Callable[[int], str]) -> list[str] | None:
  """Each row's split from the `split` column, or None without one."""
  if SPLIT_COLUMN not in column:
    return None
  split_of_row = [row[column[SPLIT_COLUMN]].strip() for row in rows]
  for i, value in enumerate(split_of_row):
    check_split_name(value, f"{line(i)}, column {SPLIT_COLUMN!r}")
  return split_of_row


def read_csv(path: str, label: str, metadata: tuple[str, ...]) -> Table:
  """CSV file `path` as a Table: `features` [d], `label`, the `metadata` columns and `csv_line`."""
  header, rows, lines = _read_csv_rows(path)
  _check_header(path, header, label, metadata)
  if not rows:
    raise DatasetError(f"{path}: no data rows after the header.")
  column = {c: i for i, c in enumerate(header)}
  feature_columns = [c for c in header if c != label and c != SPLIT_COLUMN and c not in metadata]
  if not feature_columns:
    raise DatasetError(
      f"{path}: no feature columns left besides the label, {SPLIT_COLUMN!r} and data.metadata_features."
    )

  def line(i: int) -> str:
    return f"{path} line {lines[i]}"

  inputs = _inputs(rows, column, feature_columns, label, line)
  labels, class_names = _labels([row[column[label]].strip() for row in rows], label, line)
  split_of_row = _split_of_row(rows, column, line)
  features = {INPUT_FEATURE: ("array", np.float32, (len(feature_columns),)), label: class_spec(class_names)}
  columns = {INPUT_FEATURE: inputs, label: labels}
  for name in metadata:
    if name in features or name == PROVENANCE_FEATURE["csv"]:
      raise DatasetError(
        f"{path}: metadata column {name!r} has the name of a feature jaxflow stores; rename the column."
      )
    features[name], columns[name] = _metadata_column([row[column[name]] for row in rows])
  features[PROVENANCE_FEATURE["csv"]] = ("array", np.int64, ())
  columns[PROVENANCE_FEATURE["csv"]] = np.asarray(lines, np.int64)
  order = split_order(split_of_row, len(rows))
  description = describe(
    "csv",
    path,
    f"features = columns {', '.join(feature_columns)}; label column {label!r}, classes {', '.join(class_names)}; "
    + split_description(split_of_row, "column", "file"),
  )
  return Table(features, {s: select(columns, rows_) for s, rows_ in order.items()}, description)
