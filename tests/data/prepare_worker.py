"""Runs in a subprocess of tests/data/test_prepare_concurrently.py: one of several independent processes (like two
`jaxflow train` in a fresh data dir) that prepare the same datasets in one data dir at the same instant.

  python -m tests.data.prepare_worker DATA_DIR BARRIER_DIR PROCESSES NPZ   -> one JSON line on stdout

Before each dataset every process waits at a barrier (one file per process in BARRIER_DIR) until all
PROCESSES are there, so all of them find the dataset unprepared and prepare it at once: the shipped `digits`,
then the user's own `npz:NPZ`. A process that fails leaves a `failed.PID` file there, and the others stop at
their next barrier instead of waiting for it. The JSON: per dataset, the sha256 of the train split this
process read (inputs and labels).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time

BARRIER_SECONDS = 60  # the imports of the slowest process on a loaded machine, then an error, not a hang


def barrier(folder: str, name: str, processes: int) -> None:
  """Returns once `processes` processes have called it with `name` (each leaves a file, then polls for all)."""
  open(os.path.join(folder, f"{name}.{os.getpid()}"), "w").close()
  deadline = time.monotonic() + BARRIER_SECONDS
  while sum(f.startswith(f"{name}.") for f in os.listdir(folder)) < processes:
    if any(f.startswith("failed.") for f in os.listdir(folder)):
      raise RuntimeError(f"barrier {name!r}: another process failed (its stderr says why)")
    if time.monotonic() > deadline:
      raise TimeoutError(f"barrier {name!r}: fewer than {processes} processes arrived in {BARRIER_SECONDS} s")
    time.sleep(0.001)


def digest(split) -> str:
  return hashlib.sha256(split.inputs.tobytes() + split.labels.tobytes()).hexdigest()


def main(data_dir: str, barrier_dir: str, processes: int, npz: str) -> dict:
  import tensorflow_datasets  # noqa: F401  (imported before the barrier: every process starts preparing at once)

  from jaxflow.data import loading

  out = {}
  try:
    for name, input_feature in (("digits", "image"), (f"npz:{npz}", "features")):
      barrier(barrier_dir, name.split(":")[0], processes)
      out[name] = digest(loading.load_split(name, "train", data_dir=data_dir, input_feature=input_feature))
  except BaseException:
    open(os.path.join(barrier_dir, f"failed.{os.getpid()}"), "w").close()
    raise
  return out


if __name__ == "__main__":
  data_dir, barrier_dir, processes, npz = sys.argv[1:]
  print(json.dumps(main(data_dir, barrier_dir, int(processes), npz)))
