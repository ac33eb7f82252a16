"""Cold start: `jaxflow train` as a whole process against a minimal hand-written flax script.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/cold_start.py              # ~3 min
  python benchmarks/cold_start.py --rounds 5 --config configs/digits_cnn.py --handwritten ''

Each round runs, one after another and in a rotating order: `jaxflow train --config=CONFIG` with an empty
compilation cache (the first run of a config on a machine), the same command again with the cache the
cold run filled (every later run), and `benchmarks/handwritten_mlp.py` (the same MLP, epochs, batch and
optimizer, written by hand: no logs, no checkpoints, no cache). Wall time and peak memory are the whole
process's (`os.wait4`), imports included; the table gives medians, min-max and the ratios of medians.
For jaxflow it also says where the time goes, from summary.json's `phases` and the process's wall: imports
and config loading (the process minus the run), data, init compile, programs' compile, orbax and
TensorBoard setup, training, the final evaluation and summary. Writes benchmarks/results/cold_start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

JAXFLOW = os.path.join(os.path.dirname(sys.executable), "jaxflow")
DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "cold_start.json")


def timed(cmd: list[str], env: dict) -> dict:
  """Runs `cmd` to the end: {"seconds", "peak_mib", "returncode"} of the whole process."""
  start = time.perf_counter()
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _, status, usage = os.wait4(proc.pid, 0)
  seconds = time.perf_counter() - start
  err = proc.stderr.read().decode()
  proc.stderr.close()
  if os.waitstatus_to_exitcode(status) != 0:
    raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
  return {"seconds": seconds, "peak_mib": usage.ru_maxrss / 1024}


def jaxflow_run(config: str, cache: str, workdir: str, env: dict) -> dict:
  shutil.rmtree(workdir, ignore_errors=True)
  out = timed(
    [JAXFLOW, "train", f"--config={config}", f"--workdir={workdir}", "--quiet"],
    env | {"JAXFLOW_COMPILATION_CACHE": cache},
  )
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  phases = dict(summary.get("phases", {}))
  phases["imports and config"] = out["seconds"] - summary["wall_seconds"]
  return out | {
    "phases": phases,
    "compile_seconds": summary["compile_seconds"],
    "params_sha256": summary["params_sha256"],
  }


def stats(values: list[float]) -> dict:
  return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--config", default="configs/digits_mlp.py")
  parser.add_argument("--handwritten", default="benchmarks/handwritten_mlp.py", help="'' to skip")
  parser.add_argument("--epochs", type=int, default=30, help="the hand-written script's epochs (the config's)")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  env = dict(os.environ)
  scratch = tempfile.mkdtemp(prefix="jaxflow-cold-start-")
  warm_cache = os.path.join(scratch, "warm_cache")
  common.log("filling the warm cache (and preparing the data) once")
  jaxflow_run(args.config, warm_cache, os.path.join(scratch, "fill"), env)
  contenders = {
    "jaxflow, empty cache": lambda r: jaxflow_run(
      args.config, os.path.join(scratch, f"cold_{r}"), os.path.join(scratch, "cold"), env
    ),
    "jaxflow, warm cache": lambda r: jaxflow_run(args.config, warm_cache, os.path.join(scratch, "warm"), env),
  }
  if args.handwritten:
    contenders["hand-written"] = lambda r: timed([sys.executable, args.handwritten, "--epochs", str(args.epochs)], env)
  runs = {name: [] for name in contenders}
  names = list(contenders)
  for r in range(args.rounds):
    for name in common.rotated(names, r):  # rotate the order every round
      runs[name].append(contenders[name](r))
      common.log(f"round {r + 1}: {name} {runs[name][-1]['seconds']:.2f} s")
  shutil.rmtree(scratch, ignore_errors=True)
  result = summarize(runs, args)
  print(result["markdown"])
  versions = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
  common.write_payload(args.out, common.header("cold_start", args, versions=versions) | result)


def summarize(runs: dict, args) -> dict:
  table = {
    name: {"seconds": stats([r["seconds"] for r in rs]), "peak_mib": stats([r["peak_mib"] for r in rs])}
    for name, rs in runs.items()
  }
  for name, rs in runs.items():
    if "phases" in rs[0]:
      table[name]["phases"] = {k: statistics.median(r["phases"][k] for r in rs) for k in rs[0]["phases"]}
      table[name]["compile_seconds"] = stats([r["compile_seconds"] for r in rs])
      table[name]["params_sha256"] = sorted({r["params_sha256"] for r in rs})
  lines = [
    f"## Cold start: `jaxflow train --config={args.config}` as a whole process ({args.rounds} rounds)",
    "",
    "| contender | wall s, median | min-max | peak MiB, median | compile s (summary) |",
    "|---|---:|---:|---:|---:|",
  ]
  for name, t in table.items():
    compile_s = f"{t['compile_seconds']['median']:.2f}" if "compile_seconds" in t else ""
    s = t["seconds"]
    lines.append(
      f"| {name} | {s['median']:.2f} | {s['min']:.2f}-{s['max']:.2f} | {t['peak_mib']['median']:.0f} | {compile_s} |"
    )
  ratios = {}
  if "hand-written" in table:
    base = table["hand-written"]["seconds"]["median"]
    for name in ("jaxflow, empty cache", "jaxflow, warm cache"):
      ratios[name] = table[name]["seconds"]["median"] / base
    lines += [
      "",
      "Ratio of medians to the hand-written script: " + ", ".join(f"{k} **{v:.2f}x**" for k, v in ratios.items()),
    ]
  for name in ("jaxflow, empty cache", "jaxflow, warm cache"):
    phases = table[name].get("phases", {})
    shown = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
    lines += ["", f"Where the time goes ({name}, medians): {shown}"]
  return {"runs": runs, "table": table, "ratios": ratios, "markdown": "\n".join(lines)}


if __name__ == "__main__":
  main()
