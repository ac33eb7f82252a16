"""Examples named as the user knows them: a folder's file name, a CSV's line, an NPZ's row.

An audit that says "train 12 and test 3 are the same image" sends the user counting; "train 12
(circle/img_0042.png) and test 3 (square/img_0007.png)" sends them to the file. jaxflow's own-data
conversion keeps a provenance feature per example (`filename`, `csv_line`, `npz_index`); the audit reads it
beside the data and writes each named example's name next to its index in the report (`names`, `name_a`,
`name_b`). tfds datasets have no such feature: their examples stay indices.
"""

from __future__ import annotations

import numpy as np

from jaxflow.data import custom
from jaxflow.data.custom.parsed import PROVENANCE_FEATURE


def provenance_feature(dataset: str) -> str | None:
  """The feature that names each example of an own dataset (folder:/csv:/npz:), else None."""
  if not custom.is_custom(dataset):
    return None
  return PROVENANCE_FEATURE.get(dataset.split(":", 1)[0])


def example_names(feature: str, values: np.ndarray) -> list[str]:
  if feature == "csv_line":
    return [f"line {int(v)}" for v in values]
  if feature == "npz_index":
    return [f"row {int(v)}" for v in values]
  return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def annotate(report: dict, names: dict[str, list[str]]) -> None:
  """Adds the names of the examples the duplicate and conflict findings point at (in place)."""
  for section in (report["duplicates"]["exact"], report["conflicting_labels"]):
    for split, found in section["within"].items():
      for group in found.get("groups", []):
        group["names"] = [names[split][i] for i in group["indices"]]
    for found in section["across"].values():
      a, b = found["split_a"], found["split_b"]
      for pair in found.get("pairs", []):
        pair["name_a"], pair["name_b"] = names[a][pair["index_a"]], names[b][pair["index_b"]]
      for group in found.get("groups", []):
        group["names_a"] = [names[a][i] for i in group["indices_a"]]
        group["names_b"] = [names[b][i] for i in group["indices_b"]]
  for found in [*report["duplicates"]["near"]["within"].values(), *report["duplicates"]["near"]["across"].values()]:
    a, b = found["split_a"], found["split_b"]
    for pair in found.get("pairs", []):
      pair["name_a"], pair["name_b"] = names[a][pair["index_a"]], names[b][pair["index_b"]]
