"""Writes tests/durations.json (CPU seconds per test, the order conftest schedules the suite in) from the
lines a run with JAXFLOW_TEST_CPU_LOG wrote:

  JAXFLOW_TEST_CPU_LOG=/tmp/cpu.jsonl python -m pytest -q && python tests/durations.py /tmp/cpu.jsonl

It also prints the suite's CPU total and the 20 costliest tests (the figures the speed notes quote).
"""

from __future__ import annotations

import json
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "durations.json")


def main(log: str) -> None:
  seconds: dict[str, float] = {}
  with open(log) as f:
    for line in f:
      row = json.loads(line)
      name = row["test"].split("@")[0]  # xdist's loadgroup appends @group to the node id
      seconds[name] = seconds.get(name, 0.0) + row["cpu"] + row["children_cpu"]
  with open(OUT, "w") as f:
    json.dump({k: round(v, 1) for k, v in sorted(seconds.items())}, f, indent=0)
    f.write("\n")
  print(f"{len(seconds)} tests, {sum(seconds.values()) / 60:.1f} CPU-minutes")
  for name, value in sorted(seconds.items(), key=lambda kv: -kv[1])[:20]:
    print(f"{value:7.1f} s  {name}")


if __name__ == "__main__":
  main(sys.argv[1])
