"""The test suite on N pytest-xdist workers against M, interleaved: what the README's `-n` is chosen by.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/suite_workers.py                  # 2 rounds x 2: ~45 min
  python benchmarks/suite_workers.py --workers 3 2 --rounds 1 --paths tests/models tests/inspect

Each round runs `python -m pytest -q -n N -p no:cacheprovider PATHS` once per worker count, in a rotating order,
and records the wall seconds and the CPU seconds of the whole process tree (user + system of every process
pytest waited for: its workers, their fork servers and the processes the tests start; Ray's daemons, which no
test waits for, are not counted). A worker past the cores' count pays its own imports, collection and first-time
tracing and contends for the cores, but fills the time the others wait on subprocesses: which wins is measured
here (on this machine's record: neither clearly). Writes benchmarks/results/suite_workers.json.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "suite_workers.json")


def run_suite(workers: int, paths: list[str]) -> dict:
  """One pytest run to its end: wall and CPU seconds of the process tree, and pytest's last line."""
  cmd = [sys.executable, "-m", "pytest", "-q", "-n", str(workers), "-p", "no:cacheprovider", *paths]
  before, start = os.times(), time.perf_counter()
  proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  seconds, after = time.perf_counter() - start, os.times()
  lines = proc.stdout.strip().splitlines()
  if proc.returncode != 0:
    raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}")
  cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
  return {"seconds": seconds, "cpu": cpu, "last_line": lines[-1] if lines else ""}


def passed(line: str) -> int | None:
  found = re.search(r"(\d+) passed", line)
  return int(found.group(1)) if found else None


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workers", type=int, nargs="+", default=[3, 2])
  parser.add_argument("--rounds", type=int, default=2)
  parser.add_argument("--paths", nargs="*", default=[], help="test paths (default: the whole suite)")
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  runs: dict[int, list[dict]] = {n: [] for n in args.workers}
  for r in range(args.rounds):
    for n in common.rotated(list(args.workers), r):
      run = run_suite(n, args.paths)
      runs[n].append(run)
      common.log(f"round {r + 1}: -n {n}: {run['seconds']:.0f} s, {run['cpu']:.0f} CPU-s ({run['last_line']})")
  result = summarize(runs, args.workers)
  print(result["markdown"])
  common.write_payload(
    args.out, common.header("suite_workers", args, versions=("jax", "jaxlib", "pytest-xdist")) | result
  )


def summarize(runs: dict[int, list[dict]], workers: list[int]) -> dict:
  first = workers[0]
  rows = [
    "| workers | tests | wall s (median) | CPU s (median) | wall / -n %d, paired by round |" % first,
    "|---|---|---|---|---|",
  ]
  table = {}
  for n in workers:
    wall = [r["seconds"] for r in runs[n]]
    cpu = [r["cpu"] for r in runs[n]]
    ratios = [a["seconds"] / b["seconds"] for a, b in zip(runs[n], runs[first])]
    table[n] = {
      "wall_median": statistics.median(wall),
      "cpu_median": statistics.median(cpu),
      "wall": wall,
      "cpu": cpu,
      "wall_ratio_to_first_by_round": ratios,
      "passed": [passed(r["last_line"]) for r in runs[n]],
    }
    ratio = ", ".join(f"{x:.2f}" for x in ratios)
    rows.append(
      f"| {n} | {table[n]['passed'][0]} | {table[n]['wall_median']:.0f} | {table[n]['cpu_median']:.0f} | {ratio} |"
    )
  return {
    "runs": {str(n): rs for n, rs in runs.items()},
    "table": {str(n): t for n, t in table.items()},
    "markdown": "\n".join(rows),
  }


if __name__ == "__main__":
  main()
