"""Evaluation groups (`data.group_feature`): which group each evaluation example belongs to.

A group that is rare in the training data (5% of the images carry an attribute, say) can be served far
worse than the rest while the overall accuracy hardly moves; the per-group metrics every evaluation then
reports (jaxflow/training/group_metrics.py) make that visible. The feature is a per-example attribute of
the dataset (a CSV column, an NPZ array, a tfds feature), read along like `data.metadata_features`.
Groups are the feature's distinct values in the evaluation split, sorted, so every seed of a study and
every evaluation names them alike.
"""

from __future__ import annotations

import re

import numpy as np

from jaxflow.config import ConfigError

MAX_GROUPS = 16  # one confusion matrix per group is summed on the device at every evaluation


def features_to_read(data) -> tuple[str, ...]:
  """`data.metadata_features` plus the group feature (read once when both name it)."""
  names = tuple(data.metadata_features)
  group = data.get("group_feature")
  return names if not group or group in names else (*names, group)


def check(data, *, kind: str, graphs: bool) -> None:
  """Refuses a group feature where per-group classification metrics cannot be computed (one line)."""
  group = data.get("group_feature")
  if not group:
    return
  if graphs:
    raise ConfigError(f"data.group_feature={group!r}: graph datasets carry no per-example attributes; unset it")
  if kind not in ("multiclass", "binary"):
    raise ConfigError(
      f"data.group_feature={group!r} needs a classification problem (problem.kind multiclass or binary), not {kind!r}"
    )


def _name(value) -> str:
  text = value.decode() if isinstance(value, bytes) else str(value)
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", text) or "_"


def eval_groups(metadata: dict, feature: str) -> tuple[tuple[str, ...], np.ndarray]:
  """(group names, [n, G] float32 one-hot membership) of the evaluation split's examples."""
  values = np.asarray(metadata[feature])
  if values.ndim != 1:
    raise ConfigError(f"data.group_feature={feature!r} must hold one value per example; it has shape {values.shape}")
  distinct, ids = np.unique(values, return_inverse=True)
  if len(distinct) > MAX_GROUPS:
    raise ConfigError(
      f"data.group_feature={feature!r} has {len(distinct)} distinct values in the evaluation split; at most "
      f"{MAX_GROUPS} groups are allowed (bin or merge its values first)"
    )
  names = [_name(v) for v in distinct]
  if len(set(names)) != len(names):  # two values that read alike once made tag-safe: keep them apart
    names = [f"{i}_{n}" for i, n in enumerate(names)]
  return tuple(names), np.eye(len(distinct), dtype=np.float32)[ids.reshape(-1)]
