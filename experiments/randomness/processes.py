"""What this study runs as separate processes, through jaxflow's CLI verbs: `jaxflow train` (the same config in
fresh processes: are two processes bitwise alike, and what do separate processes cost) and `jaxflow seeds compare
A B --until-decided` (how many seeds a comparison needs, decided sequentially).

Why subprocesses: "two processes" is the claim under test, and the cost of one `jaxflow train` process per seed
(imports and compilation paid every time) is what the seeds runner saves; both only show in fresh processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from experiments.common import study

CLI = (sys.executable, "-m", "jaxflow.cli")


def _env() -> dict:
  """The caller's environment, without a compilation cache: a user's `jaxflow train` starts cold."""
  return {k: v for k, v in os.environ.items() if k != study.CACHE_ENV}


def cli_overrides(overrides) -> list[str]:
  return [f"--config.{o}" for o in overrides if not o.startswith("compilation_cache=")]


def train_processes(config: str, overrides, root: str, count: int) -> list[dict]:
  """`count` fresh `jaxflow train` processes of the same config, one after another: wall seconds and params hash."""
  runs = []
  for i in range(count):
    workdir = os.path.join(root, f"process_{i}")
    command = [*CLI, "train", f"--config={os.path.join(study.ROOT, config)}", *cli_overrides(overrides)]
    start = time.perf_counter()
    done = subprocess.run(
      [*command, f"--workdir={workdir}", "--quiet"], capture_output=True, text=True, env=_env(), cwd=study.ROOT
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
      raise RuntimeError(f"jaxflow train failed: {done.stderr.strip().splitlines()[-1:]}")
    with open(os.path.join(workdir, "summary.json")) as f:
      summary = json.load(f)
    runs.append({"seconds": round(seconds, 2), "params_sha256": summary["params_sha256"], "workdir": workdir})
  return runs


def _row(check: str, what: str, a: str, b: str) -> dict:
  """One determinism row from two params hashes (equal hashes: bitwise equal; no difference size otherwise)."""
  same = a == b
  said = "bitwise equal" if same else "NOT bitwise equal"
  return {"check": check, "bitwise_equal": same, "max_abs_diff": 0.0 if same else None, "statement": f"{what}: {said}."}


def two_process_check(runs: list[dict], study_seed: dict | None, study_mode: str) -> list[dict]:
  """Determinism rows: process 1 against process 2, and process 1 against the study's pinned run (`none`, seed 0:
  the same config, trained inside the seeds runner)."""
  a = runs[0]["params_sha256"]
  rows = [
    _row(f"the same config in two fresh `jaxflow train` processes (1 vs {i})", "two processes", a, r["params_sha256"])
    for i, r in enumerate(runs[1:], start=2)
  ]
  if study_seed:
    check = f"a `jaxflow train` process against the study's pinned seed (sweep `none`, mode {study_mode!r})"
    rows.append(_row(check, "separate process vs the seeds runner", a, study_seed["params_sha256"]))
  return rows


def until_decided(a_dir: str, b_dir: str, *, max_seeds: int, first: int, round_size: int, mode: str) -> dict:
  """`jaxflow seeds compare A B --until-decided` on two single-sweep study workdirs (extended in place); returns
  its verdict line and JSON line, plus the looks read back from nothing else than the CLI's output."""
  command = [
    *CLI,
    "seeds",
    "compare",
    a_dir,
    b_dir,
    "--until-decided",
    f"--max_seeds={max_seeds}",
    f"--first={first}",
    f"--round={round_size}",
    f"--mode={mode}",
  ]
  start = time.perf_counter()
  done = subprocess.run(command, capture_output=True, text=True, cwd=study.ROOT)
  if done.returncode != 0:
    raise RuntimeError(f"jaxflow seeds compare failed: {done.stderr.strip()[-800:]}")
  lines = [line for line in done.stdout.splitlines() if line.strip()]
  looks = [line for line in lines if line.startswith("jaxflow seeds compare:")]
  return {
    "command": " ".join(["jaxflow", "seeds", "compare", "A", "B", *command[7:]]),
    "verdict": lines[-2],
    **json.loads(lines[-1]),
    "looks": looks,
    "seconds": round(time.perf_counter() - start, 1),
  }
