"""Where a run ran: devices, library versions, the CPU, the machine's load and jaxflow's own commit.

Recorded in every summary.json and report, and by the benchmarks and experiments beside their figures,
so a number can always be traced to the machine and the code that produced it.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata

import jax

PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets", "numpy")
CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # above jaxflow/


def package_versions(names=PACKAGES) -> dict[str, str | None]:
  """Python's and each named distribution's version (None when it is not installed)."""
  versions = {"python": platform.python_version()}
  for name in names:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def cpu_model() -> str | None:
  """The CPU's model name (from /proc/cpuinfo on Linux), None where nothing says it."""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or None


def load_average() -> list[float] | None:
  """The 1, 5 and 15 minute load averages (None where the OS has none): how shared the machine was."""
  try:
    return [round(v, 2) for v in os.getloadavg()]
  except OSError:
    return None


def git_state(root: str = CHECKOUT, paths=("jaxflow", "configs")) -> dict | None:
  """{"commit", "dirty"} of the git checkout at `root` (dirty: uncommitted changes under `paths`); None
  when `root` is not a git checkout (an installed wheel) or git is missing."""

  def git(*args):
    return subprocess.run(
      ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()

  try:
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", *paths))}
  except (OSError, subprocess.SubprocessError):
    return None


def describe_commit(state: dict | None) -> str:
  """One line for a report: `commit abc1234` (+ uncommitted changes), or `unknown`."""
  if not state:
    return "unknown"
  return f"commit {state['commit'][:7]}" + (" + uncommitted changes in jaxflow/ or configs/" if state["dirty"] else "")


def environment(*, mode: str = "single", used: int = 1) -> dict:
  """`count` is the devices JAX sees; `used` the ones its parallel mode trained on, over all processes."""
  devices = jax.devices()
  return {
    "device": {
      "platform": devices[0].platform,
      "kind": devices[0].device_kind,
      "count": len(devices),
      "used": used,
      "mode": mode,
      "process_count": jax.process_count(),
    },
    "versions": package_versions(PACKAGES),
  }
