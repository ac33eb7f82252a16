"""Post-training optimization of an exported model: precision calibration (f32 / bf16 / calibrated int8), layer
and tensor fusion, kernel auto-tuning, multi-stream execution and dynamic tensor memory, each measured on the
artifact `jaxflow export` writes and `jaxflow.load_model` reads (speed next to accuracy).

  python experiments/post_training/run.py            # full run: ~6-10 min on 2 shared CPU cores
  python experiments/post_training/run.py --quick    # seconds (MLP only, tiny); the same outputs' structure

The digits MLP and CNN (configs/digits_mlp.py, configs/digits_cnn.py) are trained through
`jaxflow.seeds(config, workdir, seeds=5)`; every seed's run is exported three times (`jaxflow.export(run, out,
precision=p, max_accuracy_drop=1.0)`: nothing refused, so every change is seen) and each card's eval accuracy,
which the exported program itself measured on the test split, is compared with f32 seed by seed. Seed 0's three
artifacts are then loaded and timed (experiments/post_training/measure.py); `jaxflow profile --model` adds the
op-by-op baseline (full run only). Writes report.md, results.json and PNG plots into --out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.post_training import figures, meaning, measure, tables  # noqa: E402

QUESTION = (
  "precision calibration, layer and tensor fusion, kernel auto-tuning, multi-stream execution, dynamic tensor "
  'memory: each measured on an exported model (speed next to accuracy), with "not applicable on this device" '
  "where it is."
)
FAMILIES = {"MLP": "configs/digits_mlp.py", "CNN": "configs/digits_cnn.py"}
QUICK_FAMILIES = {"MLP": (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}")}
PRECISIONS = ("f32", "bf16", "int8")
FULL = {"latency": (1, 8, 64, 256, 1024), "fusion": (1, 64, 1024), "streams": (1, 256), "rounds": 7}
FULL["memory"] = (1, 8, 64, 256, 1024, 4096)
QUICK = {"latency": (32,), "fusion": (32,), "streams": (32,), "memory": (32,), "rounds": 2}
PROFILE_SIZES = "1,64,256"


def export_all(session: study.Session, family: str, result: study.ArmResult) -> dict:
  """{precision: [card of seed i or None]}: each completed seed's run exported at every precision."""
  cards = {p: [] for p in PRECISIONS}
  for i, (row, workdir) in enumerate(zip(result.per_seed, result.workdirs, strict=True)):
    for p in PRECISIONS:
      if row is None:
        cards[p].append(None)
        continue
      out = os.path.join(session.root, "exports", family, f"seed{i}", p)
      cards[p].append(jaxflow.export(workdir, out, precision=p, max_accuracy_drop=1.0, overwrite=True))
  print(f"[post_training] {family}: {len(result.workdirs)} seeds x {len(PRECISIONS)} precisions exported", flush=True)
  return cards


def accuracy_rows(cards: dict) -> dict:
  """{precision: per-seed {accuracy, f32_accuracy, export_seconds}} from the cards' own measurements."""
  rows = {}
  for p, seeds in cards.items():
    rows[p] = [
      None
      if c is None
      else {
        "accuracy": c["evaluation"]["artifact"]["value"],
        "f32_accuracy": c["evaluation"]["f32"]["value"],
        "examples": c["evaluation"]["artifact"]["examples"],
        "export_seconds": c["export_seconds"],
      }
      for c in seeds
    ]
  return rows


def op_by_op_profile(model_dir: str, workdir: str) -> dict | None:
  """`jaxflow profile --model` (the CLI verb) on one artifact: its exported / training-jit / op-by-op medians
  and its autotune entry, read back from report.json; None when the verb fails (the report says so)."""
  cmd = [os.path.join(os.path.dirname(sys.executable), "jaxflow"), "profile", f"--model={model_dir}"]
  cmd += [f"--workdir={workdir}", f"--batch_sizes={PROFILE_SIZES}", "--precisions=f32", "--quiet"]
  done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
  if done.returncode != 0:
    print(f"[post_training] jaxflow profile --model failed: {done.stderr[-500:]}", flush=True)
    return None
  with open(os.path.join(workdir, "report.json")) as f:
    device = json.load(f)["devices"][0]
  batches = {b["batch_size"]: {"median_seconds": b["median_seconds"]} for b in device["batches"]}
  return {"device": device["name"], "batches": batches, "autotune": device.get("autotune")}


def measure_family(session: study.Session, family: str, plan: dict, quick: bool) -> dict:
  """Seed 0's three artifacts loaded and measured: latency by batch size, fusion, streams, autotune, memory."""
  dirs = {p: os.path.join(session.root, "exports", family, "seed0", p) for p in PRECISIONS}
  models = {p: jaxflow.load_model(d) for p, d in dirs.items()}
  card, rounds = models["f32"].card, plan["rounds"]
  out = {
    "latency": measure.latency(models, card, plan["latency"], rounds=rounds, quick=quick),
    "fusion": measure.fusion(models["f32"], card, plan["fusion"], rounds=rounds, quick=quick),
    "streams": measure.streams(models["f32"], card, plan["streams"], rounds=rounds, quick=quick),
    "autotune": measure.autotune(models["f32"], card, max(plan["latency"]), rounds=rounds),
    "memory": measure.memory(models, card, plan["memory"]),
    "op_by_op": None if quick else op_by_op_profile(dirs["f32"], os.path.join(session.root, "profile", family)),
  }
  print(f"[post_training] {family}: speed, fusion, streams and memory measured", flush=True)
  return out


def differences(accuracy: dict, speed: dict) -> list[dict]:
  """Paired: each precision's accuracy - f32 seed by seed; each precision's ms per call - f32 round by round;
  fused - unfused and 2 callers - 1 caller round by round."""
  rows = []
  for family, by_p in accuracy.items():
    base = [r and r["accuracy"] for r in by_p["f32"]]
    examples = next(r["examples"] for r in by_p["f32"] if r)
    for p in PRECISIONS[1:]:
      a = [r and r["accuracy"] for r in by_p[p]]
      res = stats.accuracy_resolution(examples)
      rows.append(stats.compare(f"{family}: test accuracy", p, a, "f32", base, resolution=res))
    s = speed[family]
    for size, times in s["latency"].items():
      f32 = [1e3 * t for t in times["f32"]]
      for p in PRECISIONS[1:]:
        name = f"{family}: ms per call at batch {size}"
        ms = [1e3 * t for t in times[p]]
        rows.append(stats.compare(name, p, ms, "f32", f32, resolution=None, higher_is_better=False))
    for size, f in s["fusion"].items():
      a, b = ([1e3 * t for t in f["seconds"][k]] for k in ("fused", "no fusion"))
      rows.append(
        stats.compare(
          f"{family}: ms per call at batch {size}", "fused", a, "no fusion", b, resolution=None, higher_is_better=False
        )
      )
    for size, st in s["streams"].items():
      two, one = st["examples_per_second"]["2 callers (threads)"], st["examples_per_second"]["1 caller"]
      rows.append(
        stats.compare(f"{family}: examples/s at batch {size}", "2 callers", two, "1 caller", one, resolution=None)
      )
  return rows


def main(argv: list[str] | None = None) -> dict:
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  plan = QUICK if args.quick else FULL
  families = QUICK_FAMILIES if args.quick else {f: () for f in FAMILIES}
  accuracy, speed, arms = {}, {}, {}
  with study.session(args) as session:
    for family, overrides in families.items():
      arm = study.Arm(family, FAMILIES[family], overrides, mode="sequential")
      result = session.run(arm)
      accuracy[family] = accuracy_rows(export_all(session, family, result))
      speed[family] = measure_family(session, family, plan, args.quick)
      for p in PRECISIONS:
        arms[f"{family} {p}"] = {**study.arm_facts(result), "precision": p, "per_seed": accuracy[family][p]}
    rows = differences(accuracy, speed)
    plot_files = figures.draw(args.out, accuracy, speed)
    facts = {
      "title": "Post-training optimization of an exported model: precision, fusion, autotuning, streams, memory",
      "question": QUESTION,
      "answer": meaning.answer(accuracy, speed, rows),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(families, plan, args),
      "arms": arms,
      "differences": rows,
      "plots": plot_files,
      "meaning": meaning.paragraphs(accuracy, speed, rows),
      "caveats": meaning.caveats(args, speed),
      "findings": tables.findings(accuracy, speed),
      "provenance": session.clock.finish(),
    }
  shown = report.write(args.out, facts, tables.result_tables(accuracy, speed), tables.difference_tables(rows))
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
