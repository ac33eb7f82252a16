"""From a trained run to a deployed model: export and load times, exported vs jit, precisions, ensembles.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/deploy.py          # ~3-4 min on 2 CPU cores
  python benchmarks/deploy.py --quick                                 # smoke check: few epochs, 2 seeds

Side by side in one run, for the digits MLP and CNN (their configs as shipped, trained here first):
  - export seconds per precision (f32, bf16, int8: each measures its eval accuracy through the program);
  - load: a fresh `python -c` process that imports jaxflow.deploy, loads the artifact and predicts one
    batch, timed whole (median of 3), and the artifact's size;
  - `jaxflow profile --model`'s rows at batch 1, 32 and 256: the exported program against the jit of the
    training code (interleaved, the profiler's protocol), op by op at the small sizes, each precision's speed;
  - an ensemble of a `jaxflow seeds` study (MLP, `--seeds` seeds): its accuracy against the seeds' mean,
    and the share of eval examples on which the seeds disagree.
Results: benchmarks/results/deploy.json and a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from benchmarks import common  # noqa: E402
from jaxflow.deploy import artifact  # noqa: E402
from jaxflow.profiler import timing  # noqa: E402
from jaxflow.profiler.model_profile import profile_model  # noqa: E402
from jaxflow.seeds import study  # noqa: E402

CONFIGS = {"mlp": "configs/digits_mlp.py", "cnn": "configs/digits_cnn.py"}
LOAD = (
  "import sys, time, numpy as np; t = time.perf_counter(); from jaxflow.deploy import load_model; "
  "m = load_model(sys.argv[1]); m(np.zeros((32, 8, 8, 1), np.uint8)); print(time.perf_counter() - t)"
)


def load_seconds(model_dir: str, repeats: int = 3) -> dict:
  """A fresh process: import, load, first prediction; whole-process wall time and the in-process part."""
  walls, inner = [], []
  for _ in range(repeats):
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", LOAD, model_dir], capture_output=True, text=True, cwd=ROOT)
    walls.append(time.perf_counter() - start)
    if done.returncode != 0:
      raise RuntimeError(done.stderr[-1500:])
    inner.append(float(done.stdout.strip().splitlines()[-1]))
  return {"process_seconds": statistics.median(walls), "import_load_predict_seconds": statistics.median(inner)}


def one_model(name: str, root: str, epochs: int | None, protocol) -> dict:
  overrides = [f"train.epochs={epochs}"] if epochs else []
  workdir = os.path.join(root, name)
  jaxflow.train(jaxflow.load_config(os.path.join(ROOT, CONFIGS[name]), overrides), workdir, quiet=True)
  out = {"exports": {}}
  for precision in ("f32", "bf16", "int8"):
    model_dir = os.path.join(root, f"{name}_{precision}")
    start = time.perf_counter()
    card = jaxflow.export(workdir, model_dir, precision=precision, max_accuracy_drop=1.0)
    out["exports"][precision] = {
      "seconds": time.perf_counter() - start,
      "accuracy": card["evaluation"]["artifact"]["value"],
      "change_vs_f32": card["evaluation"].get("change_vs_f32", 0.0),
      "bytes": os.path.getsize(os.path.join(model_dir, artifact.PROGRAM_FILE)),
    }
    print(f"[{name}] export {precision}: {out['exports'][precision]['seconds']:.2f} s", flush=True)
  out["load"] = load_seconds(os.path.join(root, f"{name}_f32"))
  report = profile_model(
    os.path.join(root, f"{name}_f32"), os.path.join(root, f"{name}_profile"), protocol=protocol, quiet=True
  )
  out["profile"] = [
    {
      "batch_size": b["batch_size"],
      "exported_ms": 1e3 * b["median_seconds"]["exported"],
      "training_jit_ms": 1e3 * b["median_seconds"]["training_jit"],
      "exported_over_training_jit": b["exported_over_training_jit"],
      "op_by_op_over_exported": b["op_by_op_over_exported"],
      "bf16_ms": 1e3 * b["median_seconds"]["exported_bf16"],
      "int8_ms": 1e3 * b["median_seconds"]["exported_int8"],
      "k_stream_gain": b["streams"]["gain"],
    }
    for b in report["devices"][0]["batches"]
  ]
  out["recommendation"] = [(r["batch_size"], r["device"], r["precision"]) for r in report["recommendation"]]
  return out


def ensemble(root: str, seeds: int, epochs: int | None) -> dict:
  overrides = [f"train.epochs={epochs}"] if epochs else []
  config = jaxflow.load_config(os.path.join(ROOT, CONFIGS["mlp"]), overrides)
  workdir = os.path.join(root, "study")
  study.run_seeds(config, workdir, seeds=seeds, vary="all", mode="auto", quiet=True)
  start = time.perf_counter()
  card = jaxflow.export(workdir, os.path.join(root, "ensemble"))
  evaluation = card["evaluation"]
  return {
    "seeds": seeds,
    "export_seconds": time.perf_counter() - start,
    "ensemble_accuracy": evaluation["artifact"]["value"],
    "seed_accuracies": evaluation["seeds"],
    "seeds_mean": evaluation["seeds_mean"],
    "disagreement_share": evaluation["disagreement_share"],
  }


def markdown(result: dict) -> str:
  lines = []
  for name, r in result["models"].items():
    e = r["exports"]
    lines += [
      f"### {name} ({CONFIGS[name]})",
      "",
      "| precision | export s | eval accuracy | change vs f32 | artifact KB |",
      "|---|---:|---:|---:|---:|",
      *[
        f"| {p} | {v['seconds']:.2f} | {v['accuracy']:.4f} | {v['change_vs_f32']:+.4f} | {v['bytes'] / 1024:.0f} |"
        for p, v in e.items()
      ],
      "",
      f"Load in a fresh process (import + load + first prediction of 32): {r['load']['process_seconds']:.2f} s "
      f"whole process, {r['load']['import_load_predict_seconds']:.2f} s of it after Python started.",
      "",
      "| batch | exported ms | training jit ms | exported / jit | op by op / exported | bf16 ms | int8 ms "
      "| K-stream gain |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in r["profile"]:
      op = f"{b['op_by_op_over_exported']:.1f}x" if b["op_by_op_over_exported"] else "-"
      lines.append(
        f"| {b['batch_size']} | {b['exported_ms']:.3f} | {b['training_jit_ms']:.3f} | "
        f"{b['exported_over_training_jit']:.3f} | {op} | {b['bf16_ms']:.3f} | {b['int8_ms']:.3f} | "
        f"{b['k_stream_gain']:.2f}x |"
      )
    lines += ["", f"Recommended (batch, device, precision): {r['recommendation']}", ""]
  en = result.get("ensemble")
  if en:
    lines += [
      f"### Ensemble of {en['seeds']} seeds (digits MLP, `jaxflow seeds --vary=all`)",
      "",
      f"Ensemble accuracy **{en['ensemble_accuracy']:.4f}** against the seeds' mean {en['seeds_mean']:.4f} "
      f"(each: {', '.join(f'{a:.4f}' for a in en['seed_accuracies'])}); the seeds disagree on "
      f"{en['disagreement_share']:.1%} of the eval examples; export {en['export_seconds']:.2f} s.",
      "",
    ]
  return "\n".join(lines)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="3 epochs, 2 seeds, a quick timing protocol")
  parser.add_argument("--seeds", type=int, default=8)
  parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "deploy.json"))
  args = parser.parse_args()
  epochs = 3 if args.quick else None
  protocol = timing.Protocol(warmup=2, repeats=6, min_repeats=3, max_seconds=0.3) if args.quick else None
  result = common.header("deploy", args, versions=("jax", "jaxlib", "flax")) | {"models": {}}
  with tempfile.TemporaryDirectory(prefix="jaxflow_deploy_bench_") as root:
    for name in CONFIGS:
      result["models"][name] = one_model(name, root, epochs, protocol)
    result["ensemble"] = ensemble(root, 2 if args.quick else args.seeds, epochs)
  result["markdown"] = markdown(result)
  print(result["markdown"])
  common.write_payload(args.out, result)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
