"""What XLA:CPU's compile settings cost on small programs: the flags the test suite runs with, measured.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/compile_flags.py             # ~1.5 min (2 cores)
  python benchmarks/compile_flags.py --rounds 5

Each setting is a fresh Python process (XLA reads XLA_FLAGS and JAX_DISABLE_MOST_OPTIMIZATIONS once, when
the backend starts) that trains two small runs with the persistent compilation cache off: the digits CNN
(conv 8, dense 16) and the digits MLP (dense 32), 2 epochs each, `jaxflow.train(..., quiet=True)`. It sums
JAX's own compile-phase events (`jax.monitoring`: backend compile, tracing, lowering to MLIR) and reports the
process's CPU seconds for the two runs. Rounds run every setting once, the order rotating per round; the
table gives medians and min-max. The settings: XLA's defaults; `JAX_DISABLE_MOST_OPTIMIZATIONS=1` (LLVM at
-O0, no expensive passes); + `--xla_cpu_use_fusion_emitters=false` (XLA:CPU's older code generator); + also
`--xla_cpu_parallel_codegen_split_count=1` (no module splitting for parallel code generation): the last is
what tests/conftest.py sets for the suite. Writes benchmarks/results/compile_flags.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

SETTINGS = {
  "XLA defaults": ({}, ""),
  "DISABLE_MOST_OPTIMIZATIONS": ({"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}, ""),
  "+ fusion emitters off": ({"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}, "--xla_cpu_use_fusion_emitters=false"),
  "+ codegen split 1 (the suite's)": (
    {"JAX_DISABLE_MOST_OPTIMIZATIONS": "1"},
    "--xla_cpu_use_fusion_emitters=false --xla_cpu_parallel_codegen_split_count=1",
  ),
}

# The measured process: two small trainings, JAX's compile events summed, one JSON line on stdout.
PROBE = """
import collections, json, sys, tempfile, time
import jax.monitoring
totals = collections.Counter()
jax.monitoring.register_event_duration_secs_listener(lambda event, seconds, **_: totals.update({event: seconds}))
sys.path.insert(0, sys.argv[1])
import jaxflow
runs = [("digits_cnn.py", ["model.conv_features=(8,)", "model.widths=(16,)", "train.epochs=2"]),
        ("digits_mlp.py", ["model.widths=(32,)", "train.epochs=2"])]
start = time.process_time()
for config, overrides in runs:
  with tempfile.TemporaryDirectory() as workdir:
    jaxflow.train(jaxflow.load_config(f"{sys.argv[1]}/configs/{config}", overrides), workdir, quiet=True)
phase = "/jax/core/compile/"
print(json.dumps({"cpu_s": time.process_time() - start,
                  "backend_compile_s": totals[phase + "backend_compile_duration"],
                  "tracing_s": totals[phase + "jaxpr_trace_duration"],
                  "lowering_s": totals[phase + "jaxpr_to_mlir_module_duration"]}))
"""
FIELDS = ("backend_compile_s", "tracing_s", "lowering_s", "cpu_s")


def measure(name: str) -> dict:
  variables, flags = SETTINGS[name]
  env = {k: v for k, v in os.environ.items() if k not in ("JAX_DISABLE_MOST_OPTIMIZATIONS", "XLA_FLAGS")}
  env |= {**variables, "JAXFLOW_COMPILATION_CACHE": "off"} | ({"XLA_FLAGS": flags} if flags else {})
  done = subprocess.run([sys.executable, "-c", PROBE, ROOT], capture_output=True, text=True, env=env, timeout=600)
  if done.returncode != 0:
    raise SystemExit(f"{name}: the probe failed: {done.stderr.strip().splitlines()[-1:]}")
  return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--rounds", type=int, default=3, help="rounds, each setting once per round (default 3)")
  parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "compile_flags.json"))
  args = parser.parse_args(argv)
  if args.rounds < 1:
    raise SystemExit(f"--rounds={args.rounds}: must be 1 or more")
  names, rows = list(SETTINGS), {name: [] for name in SETTINGS}
  for r in range(args.rounds):
    for name in common.rotated(names, r):
      rows[name].append(measure(name))
      common.log(f"round {r + 1}/{args.rounds} {name}: " + ", ".join(f"{k} {rows[name][-1][k]:.2f}" for k in FIELDS))
  table = [
    "| setting | backend compile s | tracing s | lowering s | process CPU s |",
    "|---|---:|---:|---:|---:|",
  ]
  summary = {name: {k: statistics.median(row[k] for row in rows[name]) for k in FIELDS} for name in names}
  for name in names:
    spans = [(min(row[k] for row in rows[name]), max(row[k] for row in rows[name])) for k in FIELDS]
    cells = [f"{summary[name][k]:.2f} ({lo:.2f}-{hi:.2f})" for k, (lo, hi) in zip(FIELDS, spans, strict=True)]
    table.append(f"| {name} | " + " | ".join(cells) + " |")
  print("\n".join(table))
  payload = common.header("compile_flags", args, versions=("jax", "jaxlib")) | {
    "settings": {name: {"env": v, "xla_flags": f} for name, (v, f) in SETTINGS.items()},
    "rounds": rows,
    "medians": summary,
    "table": "\n".join(table),
  }
  print(f"wrote {common.write_payload(args.out, payload)}")


if __name__ == "__main__":
  main()
