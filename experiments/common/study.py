"""A study's flags and arms: each arm one config (file + overrides) trained through `jaxflow.seeds`.

Every arm runs `jaxflow.seeds(config, workdir, seeds=N, vary=...)` with the config's own `seed` (0 unless an
arm overrides it), so seed index i of every arm pins the varied streams to the same values: arm A's seed i
and arm B's seed i draw the same initial parameters (where the shapes agree), data order and subsets, and
differences are paired seed by seed (`stats.paired`). Per seed the study's `extract(summary, workdir)`
turns the run's summary.json (and anything else in its workdir, while it exists) into named numbers.

Workdirs go to a temporary folder deleted at the end, unless --workdir keeps them. Every arm shares one JAX
compilation cache inside that folder: later arms with the same programs compile less, and a full run
still starts cold, so its recorded wall time does not depend on what ran on the machine before. Where
JAXFLOW_COMPILATION_CACHE is set (the test suite sets one for the session) that cache is used instead, and
the provenance says so. JAX holds one cache directory per process: one process runs one study (run_all.py
starts each in its own), or several that share one --workdir.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator

import jaxflow
from experiments.common import provenance

ROOT = provenance.ROOT
DEFAULT_SEEDS, QUICK_SEEDS = 5, 2
CACHE_ENV = "JAXFLOW_COMPILATION_CACHE"


@dataclasses.dataclass(frozen=True)
class Arm:
  """One condition of a study: a config file (relative to the repository root) and its overrides."""

  name: str
  config: str
  overrides: tuple[str, ...] = ()
  mode: str = "auto"  # jaxflow.seeds' mode: auto | vmap | sequential | devices
  vary: str = "all"  # the PRNG streams the seeds vary (jaxflow.seeds' vary)


@dataclasses.dataclass
class ArmResult:
  arm: Arm
  per_seed: list[dict | None]  # extract(...) of each seed index; None where the seed failed
  resolution: float | None  # smallest change of the monitored metric (1 / eval examples for an accuracy)
  mode: str
  seconds: float
  workdirs: list[str]  # valid while the session lives (a temporary folder is deleted at its end)

  def values(self, metric: str) -> list[float | None]:
    return [None if row is None else row.get(metric) for row in self.per_seed]


def final_eval(summary: dict, workdir: str) -> dict:
  """The default extract: the final epoch's eval metrics of summary.json."""
  del workdir
  return dict(summary["final"]["eval"])


def parse_args(study_file: str, argv: list[str] | None = None, *, description: str = "") -> argparse.Namespace:
  """--quick (seconds: fewer arms, epochs and seeds; outputs have the full run's structure), --out (default
  results/ beside run.py), --seeds (default 5; 2 with --quick), --workdir (keep the runs there)."""
  parser = argparse.ArgumentParser(description=description)
  parser.add_argument("--quick", action="store_true", help="a run of seconds with the full run's outputs")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(study_file)), "results"))
  seeds_help = f"seeds per arm (default {DEFAULT_SEEDS}, quick {QUICK_SEEDS})"
  parser.add_argument("--seeds", type=int, default=None, help=seeds_help)
  parser.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder, deleted)")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  args.seeds = args.seeds or (QUICK_SEEDS if args.quick else DEFAULT_SEEDS)
  if args.seeds < 1:
    parser.error(f"--seeds={args.seeds} must be at least 1")
  relative = os.path.relpath(os.path.abspath(study_file), ROOT)
  args.command = " ".join(["python", relative, *map(shlex.quote, _shown_flags(sys.argv[1:] if argv is None else argv))])
  args.name = os.path.basename(os.path.dirname(os.path.abspath(study_file)))
  return args


def _shown_flags(argv: list[str]) -> list[str]:
  """The flags that change the results (--quick, --seeds), without this machine's paths (--out, --workdir)."""
  shown, skip = [], False
  for a in argv:
    if skip:
      skip = False
    elif a in ("--out", "--workdir"):
      skip = True
    elif not a.startswith(("--out=", "--workdir=")):
      shown.append(a)
  return shown


class Session:
  """The runs of one study: where they go, the seeds, the clock; `run(arm)` trains one arm."""

  def __init__(self, args: argparse.Namespace, root: str):
    self.args, self.root, self.seeds = args, root, args.seeds
    given = os.environ.get(CACHE_ENV)
    self.cache = None if given else os.path.join(root, "jax_cache")
    self.clock = provenance.Clock()
    self.clock.compilation_cache = f"{CACHE_ENV}={given}" if given else "cold, in the study's workdir"

  def config(self, arm: Arm):
    """The arm's config as jaxflow.load_config resolves it, with the session's compilation cache."""
    overrides = list(arm.overrides)
    if self.cache and not any(o.startswith("compilation_cache=") for o in overrides):
      overrides.append(f"compilation_cache={self.cache}")
    return jaxflow.load_config(os.path.join(ROOT, arm.config), overrides)

  def run(self, arm: Arm, extract: Callable[[dict, str], dict] = final_eval) -> ArmResult:
    workdir = os.path.join(self.root, "".join(c if c.isalnum() else "_" for c in arm.name))
    report = jaxflow.seeds(self.config(arm), workdir, seeds=self.seeds, vary=arm.vary, mode=arm.mode, plots=False)
    sweep = report["sweeps"][0]
    per_seed = []
    for row in sweep["seeds"]:
      if row["status"] != "completed":
        per_seed.append(None)
        continue
      with open(os.path.join(row["workdir"], "summary.json")) as f:
        per_seed.append(extract(json.load(f), row["workdir"]))
    result = ArmResult(
      arm=arm,
      per_seed=per_seed,
      resolution=(report.get("resolution") or {}).get("value"),
      mode=report["mode"]["mode"],
      seconds=round(sweep["seconds"], 1),
      workdirs=[row["workdir"] for row in sweep["seeds"]],
    )
    print(f"[{self.args.name}] {arm.name}: {self.seeds} seeds in {result.seconds:.1f} s ({result.mode})", flush=True)
    return result


@contextlib.contextmanager
def session(args: argparse.Namespace) -> Iterator[Session]:
  """A Session whose temporary workdir (when --workdir is not given) is deleted when it ends."""
  root = os.path.abspath(args.workdir) if args.workdir else tempfile.mkdtemp(prefix=f"jaxflow_{args.name}_")
  os.makedirs(root, exist_ok=True)
  try:
    yield Session(args, root)
  finally:
    if not args.workdir:
      shutil.rmtree(root, ignore_errors=True)


def arm_facts(result: ArmResult) -> dict:
  """An arm as results.json records it."""
  return {
    "config": result.arm.config,
    "overrides": list(result.arm.overrides),
    "vary": result.arm.vary,
    "mode": result.mode,
    "seconds": result.seconds,
    "resolution": result.resolution,
    "per_seed": result.per_seed,
  }
