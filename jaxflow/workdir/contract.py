"""config.json, summary.json and report.json/.md: what every workdir holds, in one place.

- config.json: `{"hash": sha256 of the canonical config, "config": the resolved config}`, written when a
  run (or a study, a profile, an audit) starts; a workdir is resumed only under the config that wrote it.
- summary.json: a run's final record (status, metrics, steps, params_sha256, environment).
- report.json + report.md: a study's or a report's result, machine- and human-readable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import ml_collections

from jaxflow.config import (
  ConfigError,
  config_hash,
  config_hashes,
  counted_differences,
  extension_refusal,
  from_dict,
  to_dict,
)
from jaxflow.workdir.files import read_json, write_json, write_text
from jaxflow.workdir.lock import LOCK_FILE

CONFIG_FILE, SUMMARY_FILE, METRICS_FILE = "config.json", "summary.json", "metrics.jsonl"


def write_config(workdir: str, config: ml_collections.ConfigDict, *, extends: list[str] | None = None) -> str:
  """workdir/config.json: the resolved config, its hash, and (a run extended with more epochs) the hashes of
  the configs it continued, whose checkpoints it still resumes from."""
  record = {"hash": config_hash(config), "config": to_dict(config)}
  if extends:
    record["extends"] = extends
  return write_json(os.path.join(workdir, CONFIG_FILE), record, sort_keys=True)


def accepted_hashes(workdir: str, config: ml_collections.ConfigDict) -> tuple[str, ...]:
  """The config hashes whose checkpoints this run may resume: its own (also as an earlier jaxflow hashed it, for a
  workdir whose config.json was lost or damaged), and those it was extended from."""
  try:
    extends = read_json(os.path.join(workdir, CONFIG_FILE)).get("extends", [])
  except (OSError, ValueError, AttributeError):
    extends = []
  return (*config_hashes(config), *[h for h in extends if isinstance(h, str)])


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The config a workdir was written with (tuples restored). ConfigError (one line) when there is none."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.isfile(path):
    what = "does not exist" if not os.path.isdir(workdir) else "has no config.json"
    raise ConfigError(f"workdir {workdir} {what}: not a jaxflow run (jaxflow train --config=FILE --workdir={workdir})")
  try:
    return from_dict(read_json(path)["config"])
  except (ValueError, KeyError, TypeError, AttributeError) as e:
    raise ConfigError(f"{path} is not a jaxflow config.json ({type(e).__name__}: {e})") from None


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict, *, write: bool = True) -> None:
  """Creates the workdir and writes config.json, or checks that an existing run has the same config.

  A run's checkpoints are only resumed under the config that wrote them; `train.overwrite=True`
  discards everything the previous run wrote instead (its logs, checkpoints, explain pictures, label
  noise record...), keeping only the lock its caller holds. A config.json that cannot be read (a file
  damaged outside jaxflow) is rewritten; the checkpoints' own config hashes still keep a foreign run
  from being resumed. `write=False` (every process but the first of a multi-host job) only checks.
  """
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.exists(path) and not config.train.overwrite:
    try:
      previous = read_json(path)
    except (OSError, ValueError):
      previous = None
      print(f"jaxflow: warning: {path} could not be read; it is written again", file=sys.stderr)
    if isinstance(previous, dict) and previous.get("hash") != config_hash(config):
      refusal = extension_refusal(previous.get("config", {}), config)
      if refusal is not None:
        raise ConfigError(
          f"workdir {workdir} holds a run of a different config ({refusal}); "
          "use another --workdir, or --config.train.overwrite=True to discard that run"
        )
      # More epochs of a run whose past does not depend on its length, or the same run under another hash (another
      # checkpoint cadence; a config.json an earlier jaxflow hashed with it): its checkpoints stay valid.
      grows = counted_differences(previous.get("config", {}), to_dict(config))  # train.epochs, raised
      stopped = (read_summary(workdir) or {}).get("stopped_early")
      if grows and stopped:
        raise ConfigError(
          f"workdir {workdir} holds a run that early stopping ended (train.early_stopping); more train.epochs "
          "would train nothing: use --config.train.overwrite=True, or another --workdir"
        )
      extends = [*previous.get("extends", []), previous["hash"]]
      if write:
        write_config(workdir, config, extends=extends)
      return
  if not write:
    return
  if config.train.overwrite and os.path.isdir(workdir):
    for name in os.listdir(workdir):
      if name == LOCK_FILE:
        continue
      target = os.path.join(workdir, name)
      if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
      else:
        os.remove(target)
  os.makedirs(workdir, exist_ok=True)
  write_config(workdir, config)


def write_summary(workdir: str, summary: dict) -> str:
  return write_json(os.path.join(workdir, SUMMARY_FILE), summary)


def read_summary(workdir: str) -> dict | None:
  """summary.json, or None when the run has none (yet) or it cannot be read."""
  try:
    summary = read_json(os.path.join(workdir, SUMMARY_FILE))
  except (OSError, ValueError):
    return None
  return summary if isinstance(summary, dict) else None


def completed_summary(workdir: str, config: ml_collections.ConfigDict) -> dict | None:
  """The summary.json of a run that completed in `workdir` under this very config, else None: what lets a
  study's rerun skip a seed or a trial that is done (a different config, or an unfinished run, is not)."""
  try:
    record = read_json(os.path.join(workdir, CONFIG_FILE))
    # Today's hash, else the config field by field (resume-neutral fields aside): a record an earlier jaxflow
    # hashed with fields that are resume-neutral now, even when those fields differ.
    same = record.get("hash") in config_hashes(config) or not counted_differences(record["config"], to_dict(config))
  except (OSError, ValueError, AttributeError, KeyError, TypeError):
    return None
  summary = read_summary(workdir)
  return summary if same and summary is not None and summary.get("status") == "completed" else None


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
  """The records of metrics.jsonl (of one `split`: "train", "eval", "layers"), in file order; [] when the
  run has none. A line that is not a whole JSON object (a process killed mid-write) is skipped."""
  records = []
  try:
    with open(os.path.join(workdir, METRICS_FILE)) as f:
      for line in f:
        try:
          record = json.loads(line)
        except ValueError:
          continue
        if isinstance(record, dict) and (split is None or record.get("split") == split):
          records.append(record)
  except OSError:
    return []
  return records


def write_report(workdir: str, report: dict, markdown: str, *, indent: int = 1) -> dict[str, str]:
  """report.json (everything) and report.md (for people) in `workdir`; returns both paths."""
  return {
    "json": write_json(os.path.join(workdir, "report.json"), report, indent=indent),
    "md": write_text(os.path.join(workdir, "report.md"), markdown),
  }
