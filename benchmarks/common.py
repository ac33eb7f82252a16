"""What every benchmark records beside its numbers, and how it writes them: one place for the payload header.

A benchmark's JSON starts with the same header (benchmark name, UTC timestamp, device, package versions,
jaxflow's git state, the arguments), so results recorded months apart stay comparable and can be traced to
the machine and the code that produced them; `write_payload` writes the JSON atomically (a benchmark killed
while writing leaves the previous results, never half a file).

The values come from jaxflow's own helpers (`jaxflow.run.environment`, `jaxflow.workdir`), imported inside
the functions that use them rather than at the top: benchmarks/scaling.py uses this module too (`log`,
`timestamp`), and its parent process must import neither jax nor the working tree's jaxflow (it measures a
git-archive snapshot of jaxflow in subprocesses).
"""

from __future__ import annotations

import datetime
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(message: str) -> None:
  """Progress on stderr (stdout carries the tables)."""
  print(message, file=sys.stderr, flush=True)


def rotated(items, round_index: int):
  """`items` (a list or tuple: the same type back) started at position `round_index` (mod their count):
  interleaved rounds rotate the order, so no contender always runs first or after the same neighbour on a
  shared, noisy machine."""
  shift = round_index % len(items) if items else 0
  return items[shift:] + items[:shift]


def timestamp() -> str:
  """Now, in UTC, to the second (ISO 8601)."""
  return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git() -> dict | None:
  """jaxflow's commit and whether jaxflow/ or configs/ had uncommitted changes (the code measured is then not
  the commit's), under the key names recorded results have always used; None outside a git checkout."""
  from jaxflow.run import environment  # deferred: see the module docstring

  state = environment.git_state(root=ROOT)
  return None if state is None else {"commit": state["commit"], "jaxflow_dirty": state["dirty"]}


def device() -> dict:
  """JAX's first device, how many there are, and the host's CPUs."""
  import jax  # deferred: see the module docstring

  from jaxflow.run import environment

  first = jax.devices()[0]
  return {
    "platform": first.platform,
    "kind": first.device_kind,
    "count": jax.device_count(),
    "cpu_count": os.cpu_count(),
    "cpu_model": environment.cpu_model(),
  }


def header(benchmark: str, args, *, versions) -> dict:
  """The fields every payload starts with; `versions`: the distributions whose versions matter to it."""
  from jaxflow.run import environment  # deferred: see the module docstring

  return {
    "benchmark": benchmark,
    "timestamp": timestamp(),
    "device": device(),
    "versions": environment.package_versions(versions),
    "git": git(),
    "args": vars(args),
  }


def write_payload(path: str, payload: dict, *, indent: int = 2) -> str:
  """Writes `payload` as JSON to `path` atomically (numpy values included); returns `path`."""
  from jaxflow.workdir import write_json  # deferred: see the module docstring

  return write_json(path, payload, indent=indent)
