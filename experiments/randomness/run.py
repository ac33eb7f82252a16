"""Randomness: which sources of randomness move a trained model (init, data order, dropout, augmentation, one bit of
one weight, all, none), on accuracy, on loss and on which test images it gets right; what is bitwise
reproducible (same process, two processes, 1 vs 2 devices, vmap vs sequential); and how many seeds a comparison
needs (`jaxflow seeds compare --until-decided` on two learning rates).

  python experiments/randomness/run.py               # full run: the digits MLP, 16 seeds per source (~6-10 min)
  python experiments/randomness/run.py --quick       # seconds; the same outputs' structure
  python experiments/randomness/run.py --reference   # issue 22's reference: digits CNN + augmentation, 32 seeds
                                                     # per source, one call (writes results/reference/)

The sources: ONE `jaxflow.seeds(config, workdir, study="sources", check_determinism=True)` call on
configs/digits_mlp.py with one-pixel shifts added (so the `augment` stream is drawn); the runner trains one sweep
per stream the config draws from, plus `one_bit`, `all` and `none`, and reports each sweep's spread. Seed index i
of every sweep and of both learning-rate arms pins its varied streams to i (paired).
"""

from __future__ import annotations

import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from experiments import harness_extras  # noqa: E402
from experiments.common import report, stats, study  # noqa: E402
from experiments.randomness import figures, meaning, processes, reference, sources  # noqa: E402

QUESTION = "In what regards is randomness important? How to keep determinism?"
CONFIG = "configs/digits_mlp.py"
AUGMENT = 'data.augment=("translate(max_dx=1, max_dy=1, p=0.5)",)'
FULL = (AUGMENT,)
QUICK = (*harness_extras.QUICK_MLP, f"data.train_examples={harness_extras.QUICK_TRAIN}", AUGMENT)
FULL_SEEDS = 16
LRS = {"lr 3e-3 (the config's)": "optim.lr=0.003", "lr 1e-3": "optim.lr=0.001"}
UNTIL = {"first": 4, "round_size": 4, "max_seeds": 32}
QUICK_UNTIL = {"first": 2, "round_size": 2, "max_seeds": 2}


def sources_study(session: study.Session, overrides, mode: str, check: bool) -> dict:
  """The one sources call: every sweep, its spread, the determinism checks (not in --quick: a subprocess with 2
  forced devices and two more runs would double a quick run's CPU)."""
  config = session.config(study.Arm("sources", CONFIG, overrides))
  workdir = os.path.join(session.root, "sources")
  return jaxflow.seeds(
    config, workdir, seeds=session.seeds, study="sources", mode=mode, check_determinism=check, plots=False
  )


def lr_comparison(session: study.Session, overrides, mode: str, until: dict) -> tuple[dict, dict]:
  """Both learning rates as single-sweep studies of `first` seeds (public API), then extended by `jaxflow seeds
  compare A B --until-decided` until it decides; (the CLI's result, {arm: per-seed accuracies})."""
  dirs = {}
  for name, lr in LRS.items():
    slug = "".join(c if c.isalnum() else "_" for c in name)
    dirs[name] = os.path.join(session.root, slug)
    config = session.config(study.Arm(name, CONFIG, (*overrides, lr)))
    jaxflow.seeds(config, dirs[name], seeds=until["first"], vary="all", mode=mode, plots=False)
  a, b = dirs.values()
  result = processes.until_decided(
    a, b, max_seeds=until["max_seeds"], first=until["first"], round_size=until["round_size"], mode=mode
  )
  finals = {}
  for name, d in dirs.items():
    with open(os.path.join(d, "report.json")) as f:
      rows = json.load(f)["sweeps"][0]["seeds"]
    finals[name] = [r["final"] if r["status"] == "completed" else None for r in rows]
  result["arms"] = {name: {"overrides": [*overrides, LRS[name]], "per_seed": v} for name, v in finals.items()}
  for name, d in dirs.items():  # the arms by name, not by this run's temporary folders
    result["verdict"] = result["verdict"].replace(d, name)
  return result, finals


def arms_facts(found: dict, overrides, mode: str, resolution, lr_finals: dict) -> dict:
  arms = {
    f"sweep {name}": {
      "config": CONFIG,
      "overrides": list(overrides),
      "vary": ",".join(s["vary"]) or "none",
      "mode": mode,
      "seconds": s["seconds"],
      "resolution": resolution,
      "per_seed": s["per_seed"],
    }
    for name, s in found.items()
  }
  for name, values in lr_finals.items():
    arms[name] = {
      "config": CONFIG,
      "overrides": [*overrides, LRS[name]],
      "vary": "all",
      "mode": mode,
      "resolution": resolution,
      "per_seed": [None if v is None else {"accuracy": v} for v in values],
    }
  return arms


def main(argv: list[str] | None = None) -> dict:
  argv = list(sys.argv[1:] if argv is None else argv)
  ref = "--reference" in argv
  argv = [a for a in argv if a != "--reference"]
  seeds_given = any(a == "--seeds" or a.startswith("--seeds=") for a in argv)
  args = study.parse_args(__file__, argv, description=__doc__.splitlines()[0])
  if ref:
    args.command = args.command.replace(".py", ".py --reference", 1)
    args.seeds = args.seeds if seeds_given else reference.SEEDS
    with study.session(args) as session:
      return reference.run(args, session)
  if not args.quick and not seeds_given:
    args.seeds = FULL_SEEDS
  overrides = QUICK if args.quick else FULL
  mode = "sequential" if args.quick else "vmap"
  with study.session(args) as session:
    seeds_report = sources_study(session, overrides, mode, not args.quick)
    found = sources.sweeps(seeds_report)
    resolution = (seeds_report.get("resolution") or {}).get("value")
    checks = list((seeds_report.get("determinism") or {}).get("checks", []))
    if not args.quick:
      runs = processes.train_processes(CONFIG, overrides, os.path.join(session.root, "processes"), 2)
      checks += processes.two_process_check(runs, found["none"]["per_seed"][0], mode)
    until = QUICK_UNTIL if args.quick else UNTIL
    decided, lr_finals = lr_comparison(session, overrides, mode, until)
    ref_facts = reference.load(args.out)
    (a, a_values), (b, b_values) = lr_finals.items()
    lr_diff = stats.compare("accuracy", a, a_values, b, b_values, resolution=resolution)
    versus_all = sources.against_all(found, resolution)
    plot_files = figures.draw(args.out, found, ref_facts, seeds_report["published"], decided)
    facts = {
      "title": "Randomness: sources of variance, determinism, and how many seeds a comparison needs",
      "question": QUESTION,
      "answer": meaning.answer(found, checks, decided),
      "command": args.command,
      "quick": args.quick,
      "seeds": args.seeds,
      "setup": meaning.setup(args, overrides, mode, seeds_report, decided, until),
      "arms": arms_facts(found, overrides, mode, resolution, lr_finals),
      "differences": [lr_diff, *versus_all],
      "plots": plot_files,
      "meaning": meaning.paragraphs(found, checks, decided, lr_diff, ref_facts, seeds_report["published"]),
      "caveats": meaning.caveats(args, found, ref_facts),
      "findings": {
        "sources": {k: {kk: vv for kk, vv in v.items() if kk != "per_seed"} for k, v in found.items()},
        "determinism": checks,
        "until_decided": decided,
        "reference": ref_facts and {k: v for k, v in ref_facts.items() if k != "found"},
        "sources_not_drawn": seeds_report.get("sources_not_drawn"),
      },
      "provenance": session.clock.finish(),
    }
  tables = [
    sources.spread_table(found, "Spread by source (digits MLP + one-pixel shifts, test split of 360)"),
    sources.published_rows(found, ref_facts and ref_facts["found"], seeds_report["published"]),
    sources.determinism_table(checks),
    meaning.until_table(decided),
  ]
  if ref_facts:
    tables += [
      sources.spread_table(ref_facts["found"], "Reference study (issue 22): digits CNN + augmentation, by source"),
      reference.timing_table(ref_facts),
    ]
  diff_tables = [
    report.difference_table("Learning rates, seed by seed (the seeds `--until-decided` trained)", [lr_diff]),
    report.difference_table("Each source's sweep - the `all` sweep, seed index by seed index", versus_all),
  ]
  shown = report.write(args.out, facts, tables, diff_tables)
  print(shown["answer"])
  return shown


if __name__ == "__main__":
  main()
