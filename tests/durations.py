"""Writes tests/durations.json (CPU seconds per test, the order conftest schedules the suite in) from the
lines a run with JAXFLOW_TEST_CPU_LOG wrote:

  JAXFLOW_TEST_CPU_LOG=/tmp/cpu.jsonl python -m pytest -q && python tests/durations.py /tmp/cpu.jsonl

It also prints the suite's CPU total, the seconds the workers spent in JAX's compile pipeline (tracing,
lowering, XLA's compile or a cache read: wall seconds on the tests' thread, so read against the workers' own
CPU seconds on an idle machine) and the 20 costliest tests (the figures the speed notes quote). With a second
argument, those totals also go to that JSON file (the record the README's suite figures point to).
"""

from __future__ import annotations

import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durations.json")


def main(log: str, totals_out: str | None = None) -> None:
  seconds: dict[str, float] = {}
  # the workers' own CPU, the CPU of the processes they waited for, and the compile stages' seconds
  stages = {"cpu": 0.0, "children_cpu": 0.0, "trace": 0.0, "lower": 0.0, "compile": 0.0}
  with open(log) as f:
    for line in f:
      row = json.loads(line)
      name = row["test"].split("@")[0]  # xdist's loadgroup appends @group to the node id
      seconds[name] = seconds.get(name, 0.0) + row["cpu"] + row["children_cpu"]
      for stage in stages:
        stages[stage] += row.get(stage, 0.0)  # logs from before the compile stages were recorded have none
  with open(OUT, "w") as f:
    json.dump({k: round(v, 1) for k, v in sorted(seconds.items())}, f, indent=0)
    f.write("\n")
  print(f"{len(seconds)} tests, {sum(seconds.values()) / 60:.1f} CPU-minutes")
  print(
    f"in the workers: {stages['cpu']:.0f} CPU-s; JAX's compile pipeline {stages['trace']:.0f} s tracing, "
    f"{stages['lower']:.0f} s lowering, {stages['compile']:.0f} s XLA compile or cache read"
  )
  costliest = sorted(seconds.items(), key=lambda kv: -kv[1])[:20]
  for name, value in costliest:
    print(f"{value:7.1f} s  {name}")
  if totals_out:
    totals = {"tests": len(seconds), "cpu_seconds": sum(seconds.values()), "log": os.path.basename(log)}
    totals |= {f"workers_{k}" if k == "cpu" else k: round(v, 1) for k, v in stages.items()}
    with open(totals_out, "w") as f:
      json.dump(totals | {"costliest": [[name, value] for name, value in costliest]}, f, indent=1)
      f.write("\n")


if __name__ == "__main__":
  main(*sys.argv[1:3])
