"""Issue 22's recorded reference study: the digits CNN with augmentation, >= 32 seeds per source (one_bit
included), in ONE `jaxflow.seeds(..., study="sources", mode="sequential")` call, and what the same seeds would
cost as separate `jaxflow train` processes (three timed, the rest extrapolated).

  python experiments/randomness/run.py --reference     # writes results/reference/ (~15-25 min on 2 shared cores)

Why sequential: XLA:CPU turns a vmapped convolution into a grouped one, ~5x slower than the same seeds one after
another (PITFALLS.md). Why a smaller CNN and fewer epochs than configs/digits_cnn.py: 7 sweeps x 32 seeds = 224
runs must finish on a shared 2-core machine; 8 epochs of a (8, 16)-channel CNN reach ~0.9 test accuracy (2 epochs
reached 0.42-0.48 in a measured trial, too far from a trained model to say anything about one).
The main study's report reads results/reference/reference.json when it exists.
"""

from __future__ import annotations

import json
import os
import time

import jaxflow
from experiments.common import report, study
from experiments.randomness import processes, sources

CONFIG = "configs/digits_cnn.py"
AUGMENT = 'data.augment=("translate(max_dx=1, max_dy=1, p=0.5)", "rotate(degrees=12, p=0.5)")'
OVERRIDES = ("model.conv_features=(8,16)", "model.widths=(32,)", "train.epochs=8", AUGMENT)
SEEDS = 32
SEPARATE = 3  # `jaxflow train` processes timed


def run(args, session: study.Session) -> dict:
  """The reference study into args.out/reference: reference.json and report.md."""
  out = os.path.join(args.out, "reference")
  config = session.config(study.Arm("reference", CONFIG, OVERRIDES))
  start = time.perf_counter()
  seeds_report = jaxflow.seeds(
    config, os.path.join(session.root, "reference"), seeds=args.seeds, study="sources", mode="sequential", plots=False
  )
  wall = time.perf_counter() - start
  found = sources.sweeps(seeds_report)
  runs = sum(len(s["per_seed"]) for s in found.values())
  separate = processes.train_processes(CONFIG, OVERRIDES, os.path.join(session.root, "separate"), SEPARATE)
  per_process = sum(r["seconds"] for r in separate) / len(separate)
  none = found.get("none", {}).get("per_seed", [None])[0]
  facts = {
    "command": args.command,
    "config": CONFIG,
    "overrides": list(OVERRIDES),
    "seeds_per_sweep": args.seeds,
    "sweeps": list(found),
    "runs": runs,
    "wall_seconds": round(wall, 1),
    "seeds_per_second": round(runs / wall, 3),
    "separate_processes": separate,
    "separate_seconds_per_process": round(per_process, 2),
    "separate_extrapolated_seconds": round(per_process * runs, 1),
    "speedup_over_separate": round(per_process * runs / wall, 2),
    "determinism": processes.two_process_check(separate, none, "sequential"),
    "found": {k: {kk: vv for kk, vv in v.items() if kk != "per_seed"} | _slim(v) for k, v in found.items()},
    "published": seeds_report["published"],
    "sources_not_drawn": seeds_report.get("sources_not_drawn"),
    "provenance": session.clock.finish(),
  }
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "reference.json"), "w") as f:
    json.dump(facts, f, indent=1)
  with open(os.path.join(out, "report.md"), "w") as f:
    f.write("\n".join(section(facts)) + "\n")
  print(f"[randomness] reference: {runs} seeds in {wall:.0f} s ({runs / wall:.2f} seeds/s)", flush=True)
  return facts


def _slim(sweep: dict) -> dict:
  """Per seed only accuracy and loss (the hashes are in the seeds' summaries, which are not kept)."""
  return {"per_seed": [r and {"accuracy": r["accuracy"], "loss": r["loss"]} for r in sweep["per_seed"]]}


def load(out: str) -> dict | None:
  """The reference study's facts, if `--reference` has written them under `out`."""
  path = os.path.join(out, "reference", "reference.json")
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def timing_table(facts: dict) -> report.Table:
  runs = facts["runs"]
  rows = [
    [
      f'one `jaxflow.seeds(..., study="sources")` call ({len(facts["sweeps"])} sweeps x {facts["seeds_per_sweep"]})',
      str(runs),
      f"{facts['wall_seconds']:.0f}",
      f"{facts['seeds_per_second']:.2f}",
      "measured",
    ],
    [
      f"separate `jaxflow train` processes ({len(facts['separate_processes'])} timed: "
      + ", ".join(f"{r['seconds']:.1f} s" for r in facts["separate_processes"])
      + ")",
      str(runs),
      f"{facts['separate_extrapolated_seconds']:.0f}",
      f"{1 / facts['separate_seconds_per_process']:.2f}",
      f"extrapolated: {facts['separate_seconds_per_process']:.1f} s per process x {runs}",
    ],
  ]
  note = (
    f"The seeds runner is {facts['speedup_over_separate']:.1f}x faster than separate processes would be "
    "(extrapolated from the timed processes, which paid imports and compilation each; the runner also evaluates "
    "every seed once more for disagreement). Load average before/after: "
    f"{facts['provenance']['load_before']} / {facts['provenance']['load_after']}."
  )
  header = ["how", "runs", "seconds", "seeds/s", ""]
  return report.Table("Reference study: wall time and seeds per second", header, rows, note)


def section(facts: dict) -> list[str]:
  """results/reference/report.md: what ran, the spread table, the side by side, the timing."""
  found = {k: {**v, "per_seed": v["per_seed"]} for k, v in facts["found"].items()}
  lines = [
    "# Reference study: the digits CNN with augmentation, sources of randomness",
    "",
    f"`{facts['command']}`",
    "",
    f"- config `{facts['config']}` with " + " ".join(f"`{o}`" for o in facts["overrides"]),
    f"- {facts['seeds_per_sweep']} seeds per sweep, sweeps {', '.join(facts['sweeps'])}, in one "
    '`jaxflow.seeds(config, workdir, study="sources", mode="sequential")` call',
    f"- jaxflow commit `{facts['provenance']['commit']}`; load average before {facts['provenance']['load_before']}, "
    f"after {facts['provenance']['load_after']}",
    "",
    *sources.spread_table(found, "Spread by source (digits CNN, test split of 360)").markdown(),
    "",
    *timing_table(facts).markdown(),
    "",
    *sources.determinism_table(facts["determinism"]).markdown(),
  ]
  return lines
