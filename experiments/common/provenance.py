"""Where a study's numbers came from: the jaxflow commit (and whether the tree had changes), the machine,
its load before and after, the wall time and the CPU seconds. A committed result must say which code produced it
and how busy the machine was: run times on a shared 2-core machine move by tens of percent with the load, while
the CPU seconds (this process and its children, user + system) barely move with it, so a run's cost can be judged
apart from the machine's load (on an idle 2-core machine the wall time is at least cpu_seconds / 2).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _git(*args: str) -> str | None:
  try:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
  except (OSError, subprocess.SubprocessError):
    return None
  return done.stdout.rstrip("\n")  # not strip(): `git status --porcelain` lines start with a status column


def commit() -> dict:
  """HEAD and the tracked files that differ from it; a study's own results/ folders are left out (a full
  run rewrites them, so they are always 'changed' while it runs)."""
  head = (_git("rev-parse", "HEAD") or "").strip() or None
  status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)experiments/*/results/*")
  changed = [line[3:] for line in (status or "").splitlines() if line.strip()]
  return {"commit": head, "dirty": bool(changed), "changed_files": changed}


def _version(package: str) -> str | None:
  try:
    return importlib.metadata.version(package)
  except importlib.metadata.PackageNotFoundError:
    return None


def machine() -> dict:
  return {
    "cpu_count": os.cpu_count(),
    "platform": platform.platform(),
    "python": sys.version.split()[0],
    "jax": _version("jax"),
    "jaxflow": _version("jaxflow"),
  }


def load() -> list[float]:
  """1, 5 and 15 minute load averages (os.getloadavg)."""
  return [round(v, 2) for v in os.getloadavg()]


def cpu_seconds() -> dict:
  """User and system CPU seconds so far of this process and its finished, waited-for children."""
  mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
  return {"user": mine.ru_utime + children.ru_utime, "system": mine.ru_stime + children.ru_stime}


class Clock:
  """Started when a study starts; `finish()` returns the provenance block of results.json."""

  def __init__(self):
    self.start = time.perf_counter()
    self.started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    self.load_before = load()
    self.cpu_before = cpu_seconds()
    self.commit = commit()
    self.compilation_cache = "jaxflow's default"  # the study says which (study.Session)

  def finish(self) -> dict:
    """The provenance block; cpu_seconds counts from the Clock's start (not the process's imports before it)."""
    cpu = {k: v - self.cpu_before[k] for k, v in cpu_seconds().items()}
    return {
      **self.commit,
      "started": self.started,
      "wall_seconds": round(time.perf_counter() - self.start, 1),
      "cpu_seconds": round(cpu["user"] + cpu["system"], 1),
      "cpu_user_seconds": round(cpu["user"], 1),
      "cpu_system_seconds": round(cpu["system"], 1),
      "process_cpu_seconds": round(sum(cpu_seconds().values()), 1),  # with the imports before the Clock started
      "load_before": self.load_before,
      "load_after": load(),
      "machine": machine(),
      "compilation_cache": self.compilation_cache,
    }
