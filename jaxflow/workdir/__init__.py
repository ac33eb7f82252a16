"""The workdir contract: what a run, a study or a report leaves behind, and how it is read back.

- `files`: every file written to a temporary name and renamed into place (a kill leaves the old file
  or the new one, never half of one), with one JSON encoder for numpy values;
- `lock`: one writer per workdir (a flock held for a command's whole life, freed when its process dies);
- `contract`: config.json (the resolved config and its hash), summary.json, report.json/.md, and the
  check that a workdir holds a run of the same config before it is resumed.

Everything that writes into a workdir goes through here, so the contract in DESIGN.md is kept in one place.
"""

from jaxflow.workdir.contract import (
  accepted_hashes,
  completed_summary,
  prepare_workdir,
  read_config,
  read_metrics,
  read_summary,
  write_config,
  write_report,
  write_summary,
)
from jaxflow.workdir.files import json_default, read_json, to_jsonable, write_json, write_text
from jaxflow.workdir.lock import LOCK_FILE, WorkdirInUse
from jaxflow.workdir.lock import acquire as acquire_lock

__all__ = [
  "accepted_hashes",
  "LOCK_FILE",
  "WorkdirInUse",
  "acquire_lock",
  "completed_summary",
  "json_default",
  "prepare_workdir",
  "read_config",
  "read_json",
  "read_metrics",
  "read_summary",
  "to_jsonable",
  "write_config",
  "write_json",
  "write_report",
  "write_summary",
  "write_text",
]
