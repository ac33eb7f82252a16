"""A trained run read back: its config set up for this process, and its verified parameters.

Explaining a run and exporting it both start here: the config.json of the workdir, with the layout it was
trained on (several devices, several hosts) and where it started from (transfer settings, whose source run
need not exist any more) replaced by one device of this process; and the parameters of its best checkpoint
(else its latest), read read-only and verified against their hash whatever layout wrote them.
"""

from __future__ import annotations

import ml_collections

from jaxflow import workdir as workdir_files
from jaxflow.config import ConfigError
from jaxflow.training import checkpoints


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """The run's config, to be used on this process's first device."""
  config = workdir_files.read_config(workdir)
  config.parallel.mode = "single"
  for field in ("num_devices", "coordinator", "num_processes", "process_id"):
    config.parallel[field] = None
  config.parallel.detect_cluster = False
  config.init_from, config.freeze, config.reinit = None, (), ()
  return config


def read_params(workdir: str, which: str = checkpoints.BEST) -> tuple[dict, int, str]:
  """(params, step, "best" | "latest") of the run's `which` checkpoint, else the other kind; a one-line
  ConfigError when the run has none."""
  found = checkpoints.read_run_params(workdir, which=which, fallback=True)
  if found is None:
    raise ConfigError(f"workdir {workdir} has no checkpoints: train it first (jaxflow train --workdir={workdir} ...)")
  return found
