"""Where the test suite's time goes: which configs its workers train, how many are repeats, what they compile.

  SUITE_PROBE_OUT=/tmp/probe/run PYTHONPATH=. python -m pytest -q -n 2 -p benchmarks.suite_probe
  python benchmarks/suite_probe.py /tmp/probe/run          # -> benchmarks/results/suite_probe.json

As a pytest plugin (`-p benchmarks.suite_probe`) it wraps `jaxflow.run.train._train_prepared` in every xdist
worker and records each call's configs and CPU seconds, and counts JAX's compile events per program name
(tracing, lowering, XLA); each worker writes SUITE_PROBE_OUT.<pid> at its end. Run as a script on that prefix, it
summarizes: trainings, distinct configs, the trainings that repeat a config another test trained (what a shared
fixture could save), distinct configs once the fields that do not change a program (seeds, epochs, cadences) are
set aside (what the compilation cache already shares), and the compile events per program. Processes the tests
start are not probed (their CPU is in tests/durations.json's per-test figures).
"""

from __future__ import annotations

import argparse
import collections
import glob
import hashlib
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "suite_probe.json")
ENV = "SUITE_PROBE_OUT"
# Fields that change no compiled program: the PRNG seeds, the run's length, and when it logs or checkpoints.
PROGRAM_NEUTRAL = (("seed",), ("seeds",), ("train", "epochs"), ("checkpoint",), ("train", "log_every"))
_state = {"test": None, "rows": [], "events": collections.defaultdict(lambda: [0, 0.0])}


def pytest_configure(config):
  if not os.environ.get(ENV):
    return
  import jax.monitoring

  from jaxflow.run import train

  def listen(event: str, duration: float, fun_name=None, **_) -> None:
    if event.startswith("/jax/core/compile/"):
      counted = _state["events"][(event.rsplit("/", 1)[-1], fun_name)]
      counted[0], counted[1] = counted[0] + 1, counted[1] + duration

  jax.monitoring.register_event_duration_secs_listener(listen)
  original = train._train_prepared

  def probed(configs, workdirs, *args, **kwargs):
    start = time.process_time()
    try:
      return original(configs, workdirs, *args, **kwargs)
    finally:
      configs_json = [c.to_json(sort_keys=True) for c in configs]
      _state["rows"].append({"test": _state["test"], "configs": configs_json, "cpu": time.process_time() - start})

  train._train_prepared = probed


def pytest_runtest_setup(item):
  _state["test"] = item.nodeid


def pytest_unconfigure(config):
  prefix = os.environ.get(ENV)
  if prefix:
    events = [[stage, name, n, seconds] for (stage, name), (n, seconds) in _state["events"].items()]
    with open(f"{prefix}.{os.getpid()}", "w") as f:
      json.dump({"rows": _state["rows"], "names": events}, f)


def _without(config_json: str, fields) -> str:
  data = json.loads(config_json)
  for path in fields:
    node = data
    for part in path[:-1]:
      node = node.get(part, {})
    node.pop(path[-1], None)
  return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def summarize(prefix: str) -> dict:
  rows, events = [], collections.Counter()
  counts = collections.Counter()
  for path in sorted(glob.glob(f"{prefix}.*")):
    with open(path) as f:
      part = json.load(f)
    rows += part["rows"]
    for stage, name, n, seconds in part["names"]:
      events[(stage, name)] += seconds
      counts[(stage, name)] += n
  keys = [tuple(r["configs"]) for r in rows]
  seen, repeats, repeat_cpu = set(), 0, 0.0
  for key, row in zip(keys, rows):
    if key in seen:
      repeats, repeat_cpu = repeats + 1, repeat_cpu + row["cpu"]
    seen.add(key)
  programs = {tuple(_without(c, PROGRAM_NEUTRAL) for c in key) for key in keys}
  compiles = sorted(((events[key], key[0], key[1], n) for key, n in counts.items()), reverse=True)
  return {
    "trainings": len(rows),
    "training_cpu_seconds": sum(r["cpu"] for r in rows),
    "distinct_configs": len(seen),
    "repeated_trainings": repeats,
    "repeated_training_cpu_seconds": repeat_cpu,
    "distinct_without_program_neutral_fields": len(programs),
    "program_neutral_fields": [".".join(p) for p in PROGRAM_NEUTRAL],
    "compile_seconds_by_stage": {
      stage: sum(s for (st, _), s in events.items() if st == stage) for stage in {st for st, _ in events}
    },
    "costliest_compiles": [{"stage": s, "program": p, "count": n, "seconds": sec} for sec, s, p, n in compiles[:20]],
  }


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("prefix", help="SUITE_PROBE_OUT of the probed run")
  parser.add_argument("--out", default=DEFAULT_OUT)
  parser.add_argument("--run", default="", help="what was probed (tree, command, date), kept in the JSON")
  args = parser.parse_args(argv)
  sys.path.insert(0, ROOT)
  from benchmarks import common

  result = summarize(args.prefix)
  payload = {"benchmark": "suite_probe", "timestamp": common.timestamp(), "git": common.git(), "probed_run": args.run}
  common.write_payload(args.out, payload | result)
  print(json.dumps({k: v for k, v in result.items() if k != "costliest_compiles"}, indent=1))


if __name__ == "__main__":
  main()
