"""What `train.deterministic=True` costs per model family, and whether it buys bitwise-equal runs.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/determinism.py                 # ~3-5 min on 2 CPU cores
  python benchmarks/determinism.py --families mlp,cnn --rounds 2 --epochs 2      # a smaller run

On a GPU, `train.deterministic=True` sets `--xla_gpu_deterministic_ops=true` (reductions and scatters
without atomics): JAX users report it from free to several times slower depending on the model (scatter-
heavy programs suffer most), so the cost is measured per family rather than assumed. Each round trains every
family twice as a whole `jaxflow train` process, deterministic off and on, in an order that alternates
between rounds; the training rate is summary.json's steps over its `train` phase (compile apart, the
compilation cache warm after round 1). Bitwise: per setting, whether every round's params_sha256 is the same
(on a GPU, "off" may legitimately differ between runs; "on" must not).

On a CPU the flag is not set at all (XLA:CPU is bitwise repeatable without it: jaxflow/run/determinism_flags.py),
so the ratio measures only the machine's noise, and the script says so. Writes profiling/gpu/determinism.json
(and .md) when JAX sees a GPU, where issue 22 asks the GPU result to be kept; else
benchmarks/results/determinism_<platform>.json.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

FAMILIES = {  # family -> config; the epochs are the script's --epochs for every family but karate (one graph)
  "mlp": "configs/digits_mlp.py",
  "cnn": "configs/digits_cnn.py",
  "rnn": "configs/digits_rnn.py",
  "gcn": "configs/karate_gcn.py",
}
SETTINGS = ("off", "on")


def train(config: str, deterministic: bool, epochs: int, workdir: str, env: dict) -> dict:
  """One `jaxflow train` process; its steps/s over the train phase, params_sha256 and determinism record."""
  shutil.rmtree(workdir, ignore_errors=True)
  overrides = [f"--config.train.deterministic={deterministic}", "--config.checkpoint.every_epochs=0"]
  if epochs and "karate" not in config:
    overrides.append(f"--config.train.epochs={epochs}")
  cmd = [sys.executable, "-m", "jaxflow.cli", "train", f"--config={config}", f"--workdir={workdir}", "--quiet"]
  done = subprocess.run([*cmd, *overrides], cwd=ROOT, env=env, capture_output=True, text=True)
  if done.returncode != 0:
    raise SystemExit(f"{' '.join(cmd + overrides)} failed:\n{done.stderr[-2000:]}")
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  return {
    "steps_per_second": summary["steps"] / summary["phases"]["train"],
    "steps": summary["steps"],
    "params_sha256": summary["params_sha256"],
    "determinism": summary.get("determinism"),
    "platform": summary["device"].get("platform"),
  }


def summarize(runs: dict, families: list[str], platform: str) -> dict:
  table = {}
  for family in families:
    row = {}
    for setting in SETTINGS:
      rs = runs[family][setting]
      row[setting] = {
        "steps_per_second": statistics.median(r["steps_per_second"] for r in rs),
        "each": [round(r["steps_per_second"]) for r in rs],
        "bitwise_across_rounds": len({r["params_sha256"] for r in rs}) == 1,
        "flags": (rs[0]["determinism"] or {}).get("flags", []),
      }
    row["time_ratio_on_over_off"] = row["off"]["steps_per_second"] / row["on"]["steps_per_second"]
    table[family] = row
  lines = [
    f"## `train.deterministic` off and on, per family ({platform})",
    "",
    "| family | steps/s off (each) | steps/s on (each) | time on / off | bitwise off | bitwise on | flags set |",
    "|---|---:|---:|---:|---|---|---|",
  ]
  for family, row in table.items():
    off, on = row["off"], row["on"]
    lines.append(
      f"| {family} | {off['steps_per_second']:,.0f} ({'/'.join(map(str, off['each']))}) "
      f"| {on['steps_per_second']:,.0f} ({'/'.join(map(str, on['each']))}) | {row['time_ratio_on_over_off']:.2f}x "
      f"| {'yes' if off['bitwise_across_rounds'] else 'no'} | {'yes' if on['bitwise_across_rounds'] else 'no'} "
      f"| {' '.join(on['flags']) or 'none'} |"
    )
  if platform == "cpu":
    lines += [
      "",
      "On a CPU `train.deterministic=True` sets no flag (XLA:CPU repeats the same program bitwise): the time "
      "ratio is this machine's noise, and both settings are expected bitwise across rounds.",
    ]
  return {"table": table, "markdown": "\n".join(lines)}


def measure(families: list[str], args, scratch: str) -> tuple[dict, str]:
  """Every family in both settings, `args.rounds` interleaved rounds (A B, B A); (runs, platform)."""
  # One compilation cache for every run (the flag is part of its key); GPU memory claimed as needed, not up front.
  env = os.environ | {
    "JAXFLOW_COMPILATION_CACHE": os.path.join(scratch, "cache"),
    "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
  }
  runs = {family: {setting: [] for setting in SETTINGS} for family in families}
  platform = "cpu"
  for r in range(args.rounds):
    order = SETTINGS if r % 2 == 0 else SETTINGS[::-1]
    for family in families:
      for setting in order:
        run = train(FAMILIES[family], setting == "on", args.epochs, os.path.join(scratch, "run"), env)
        runs[family][setting].append(run)
        platform = run["platform"] or platform
        common.log(f"round {r + 1}: {family} {setting}: {run['steps_per_second']:,.0f} steps/s")
  return runs, platform


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--families", default=",".join(FAMILIES), help=f"some of {','.join(FAMILIES)}")
  parser.add_argument("--rounds", type=int, default=3)
  parser.add_argument("--epochs", type=int, default=5, help="epochs per digits run (karate: its config's)")
  parser.add_argument("--out", default=None, help="default: profiling/gpu/ on a GPU, else benchmarks/results/")
  args = parser.parse_args(argv)
  families = [f.strip() for f in args.families.split(",") if f.strip()]
  unknown = sorted(set(families) - set(FAMILIES))
  if unknown or not families:
    raise SystemExit(f"--families={args.families!r}: unknown {unknown}; allowed: {', '.join(FAMILIES)}")
  if args.rounds < 1 or args.epochs < 1:
    raise SystemExit(f"--rounds={args.rounds} --epochs={args.epochs}: both must be at least 1")
  scratch = tempfile.mkdtemp(prefix="jaxflow-determinism-")
  try:
    runs, platform = measure(families, args, scratch)
  finally:  # a failed run leaves no scratch folder behind either
    shutil.rmtree(scratch, ignore_errors=True)
  result = summarize(runs, families, platform)
  print(result["markdown"])
  out = args.out or (
    os.path.join(ROOT, "profiling", "gpu", "determinism.json")
    if platform == "gpu"
    else os.path.join(ROOT, "benchmarks", "results", f"determinism_{platform}.json")
  )
  payload = common.header("determinism", args, versions=("jax", "jaxlib", "flax", "numpy")) | {"runs": runs} | result
  common.write_payload(out, payload)
  with open(os.path.splitext(out)[0] + ".md", "w") as f:
    f.write(result["markdown"] + "\n")
  common.log(f"wrote {out}")


if __name__ == "__main__":
  main()
