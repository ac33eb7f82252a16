"""The workdir contract: config.json on start, a refusal to resume a different config, overwrite."""

from __future__ import annotations

import json
import os
import shutil

import ml_collections

from jaxflow.config import ConfigError, config_hash, to_dict

RUN_OUTPUTS = ("checkpoints", "tb", "metrics.jsonl", "summary.json", "config.json")


def _flatten(tree: dict, prefix: str = "") -> dict[str, object]:
  flat = {}
  for key, value in tree.items():
    if isinstance(value, dict):
      flat.update(_flatten(value, f"{prefix}{key}."))
    else:
      flat[f"{prefix}{key}"] = value
  return flat


def config_differences(old: dict, new: dict) -> list[str]:
  old_flat, new_flat = _flatten(old), _flatten(new)
  keys = sorted(set(old_flat) | set(new_flat))
  return [f"{k}: {old_flat.get(k)!r} -> {new_flat.get(k)!r}" for k in keys if old_flat.get(k) != new_flat.get(k)]


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict, *, write: bool = True) -> None:
  """Creates the workdir and writes config.json, or checks that an existing run has the same config.

  A run's checkpoints are only resumed under the config that wrote them; `train.overwrite=True`
  discards the previous run's outputs instead. `write=False` (every process but the first of a
  multi-host job) only checks.
  """
  path = os.path.join(workdir, "config.json")
  digest = config_hash(config)
  if os.path.exists(path) and not config.train.overwrite:
    with open(path) as f:
      previous = json.load(f)
    if previous.get("hash") != digest:
      diffs = config_differences(previous.get("config", {}), to_dict(config))
      diffs = [d for d in diffs if not d.startswith("train.overwrite")]
      shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
      raise ConfigError(
        f"workdir {workdir} holds a run of a different config ({shown}); "
        "use another --workdir, or --config.train.overwrite=True to discard that run"
      )
  if not write:
    return
  if config.train.overwrite:
    for name in RUN_OUTPUTS:
      target = os.path.join(workdir, name)
      if os.path.isdir(target):
        shutil.rmtree(target)
      elif os.path.exists(target):
        os.remove(target)
  os.makedirs(workdir, exist_ok=True)
  with open(path, "w") as f:
    json.dump({"hash": digest, "config": to_dict(config)}, f, indent=2, sort_keys=True)


def completed_summary(workdir: str, config: ml_collections.ConfigDict) -> dict | None:
  """The summary.json of a run that completed in `workdir` under this very config, else None: what lets a
  study's rerun skip a seed or a trial that is done (a different config, or an unfinished run, is not)."""
  try:
    with open(os.path.join(workdir, "config.json")) as f:
      same = json.load(f).get("hash") == config_hash(config)
    with open(os.path.join(workdir, "summary.json")) as f:
      summary = json.load(f)
  except (OSError, ValueError):
    return None
  return summary if same and summary.get("status") == "completed" else None
