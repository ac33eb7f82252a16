"""Bayesian optimization (jaxflow's own GP) against random search, at equal budgets.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/tune.py      # 30 min on 2 heavily loaded CPU cores (load ~5)
  python benchmarks/tune.py --reps 5 --batch 0 --digits-reps 0   # functions only: 2.5 min on a quieter machine

Prints a Markdown table and writes benchmarks/results/tune.json.
Target (the issue): BO reaches random search's final regret in at most half its trials on Branin and
Hartmann-6, at budgets of 30 and 50 evaluations.

- Functions with known optima: Branin on [-5, 10] x [0, 15] (min 0.397887) and Hartmann-6 on [0, 1]^6
  (min -3.32237). Each repetition runs `jaxflow.tuning.suggest.Suggester` (the study loop's own
  suggester: the same Sobol initial design, GP fit and acquisition) one evaluation at a time up to the
  largest budget, with a repetition's own study seed; random search uses the same seeds. Simple regret
  after n evaluations = best value among the first n - the optimum. Neither method knows the budget,
  so one run to 50 evaluations also gives the run to 30 (its prefix). Curves: the median over
  repetitions at every n. Trials to match: the smallest n at which BO's median regret is at or below
  random search's median regret after the whole budget (target: <= budget / 2).
  A batched variant (`--batch`, kriging believer: that many proposals per GP fit) runs on Branin too.
- Seconds per suggestion: wall time of each BO suggestion (GP fit with 4 restarts x 150 Adam steps +
  the acquisition over 2,048 Sobol candidates and 3 refinement rounds); the median excludes the first
  calls at each padded size, which compile (their total is reported apart). google-vizier's GP bandit
  was measured at ~3.5 s per suggestion on this machine (../shared/PITFALLS.md).
- Digits MLP (configs/digits_mlp.py, few epochs, a 3-parameter space: lr, dropout, batch size): the
  whole `jaxflow tune` study (`run_tune`, real training, one workdir per trial) for BO and for random
  search, `--digits-trials` each, `--digits-reps` repetitions (study seeds). There is no known optimum:
  the table gives the best final test accuracy found after n trials (median over repetitions) and the
  regret against the best accuracy any trial of the benchmark reached.

The machine is shared with other work: wall-clock figures are noisy (+-30% and worse).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402
from jaxflow.run.environment import load_average  # noqa: E402
from jaxflow.tuning import space as S  # noqa: E402
from jaxflow.tuning import suggest  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "tune.json")
# The distributions whose versions the results record.
VERSIONS = ("jax", "jaxlib", "optax", "numpy", "scipy")
VIZIER_SECONDS = 3.5


def branin(p: dict) -> float:
  x1, x2 = p["x1"], p["x2"]
  b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
  return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_A = np.array(
  [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
)
_P = 1e-4 * np.array(
  [
    [1312, 1696, 5569, 124, 8283, 5886],
    [2329, 4135, 8307, 3736, 1004, 9991],
    [2348, 1451, 3522, 2883, 3047, 6650],
    [4047, 8828, 8732, 5743, 1091, 381],
  ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(p: dict) -> float:
  x = np.array([p[f"x{i}"] for i in range(6)])
  return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


FUNCTIONS = {
  "branin": (S.Space(S.uniform("x1", -5.0, 10.0), S.uniform("x2", 0.0, 15.0)), branin, 0.397887),
  "hartmann6": (S.Space(*[S.uniform(f"x{i}", 0.0, 1.0) for i in range(6)]), hartmann6, -3.32237),
}


def run_function(name: str, method: str, seed: int, budget: int, batch: int = 1) -> dict:
  space, f, optimum = FUNCTIONS[name]
  sg = suggest.Suggester(space, method=method, seed=seed)
  observed, values, seconds = [], [], []
  while len(values) < budget:
    start = time.perf_counter()
    points = sg.suggest(len(values), min(batch, budget - len(values)), observed, values)
    elapsed = time.perf_counter() - start
    seconds += [elapsed / len(points)] * len(points)
    observed += points
    values += [f(p) for p in points]
  regret = np.minimum.accumulate(values) - optimum
  return {
    "seed": seed,
    "regret": regret.tolist(),
    "seconds": seconds,
    "gp_phase_from": sg.init_trials if method == "bo" else None,
  }


def trials_to_match(bo_median: list[float], target: float) -> int | None:
  hit = [n + 1 for n, r in enumerate(bo_median) if r <= target]
  return hit[0] if hit else None


def _match(median: list[float], target: float, budget: int) -> dict:
  n = trials_to_match(median, target)
  return {
    "final_regret": median[budget - 1],
    "trials_to_match": n,
    "ratio_to_budget": None if n is None else n / budget,
    "target_met": n is not None and n <= budget / 2,
  }


def summarize_function(name: str, runs: dict, budgets: list[int]) -> dict:
  out = {"optimum": FUNCTIONS[name][2], "methods": {}}
  for label, reps in runs.items():
    grid = np.array([r["regret"] for r in reps])
    out["methods"][label] = {"median_regret": np.median(grid, axis=0).tolist(), "reps": len(reps)}
  random_median = out["methods"]["random"]["median_regret"]
  out["match"] = {}
  for budget in budgets:
    target = random_median[budget - 1]
    out["match"][str(budget)] = {
      "random_final_regret": target,
      **{
        label: _match(m["median_regret"][:budget], target, budget)
        for label, m in out["methods"].items()
        if label != "random"
      },
    }
  return out


def suggestion_seconds(runs: list[dict]) -> dict:
  """Per BO suggestion: the median over GP-phase calls after the first of each padded size (compiles)."""
  times, first = [], []
  for r in runs:
    seen = set()
    for n, s in enumerate(r["seconds"]):
      if n < r["gp_phase_from"]:
        continue
      bucket = (n + 15) // 16  # the padded size the GP compiled for (multiples of 16 rows)
      (first if bucket not in seen else times).append(s)
      seen.add(bucket)
  return {
    "median": float(np.median(times)) if times else None,
    "p90": float(np.quantile(times, 0.9)) if times else None,
    "calls": len(times),
    "first_at_each_size_total": float(sum(first)),
  }


def run_digits(trials: int, reps: int, epochs: int, workroot: str, log) -> dict:
  import jaxflow
  from jaxflow.tuning import study as tune

  config = jaxflow.load_config(
    os.path.join(ROOT, "configs", "digits_mlp.py"),
    [
      f"train.epochs={epochs}",
      "model.widths=(64,)",
      "train.histogram_every=1000",
      "train.class_report_every=1000",
    ],
  )
  space = S.Space(
    S.log_uniform("optim.lr", 1e-4, 1e-1),
    S.uniform("model.dropout_rate", 0.0, 0.5),
    S.integer("train.batch_size", 32, 256, log=True),
  )
  runs = {"bo": [], "random": []}
  for rep in range(reps):
    for method in ("bo", "random"):
      start = time.perf_counter()
      report = tune.run_tune(
        config, os.path.join(workroot, f"{method}_{rep}"), space=space, method=method, trials=trials, seed=rep
      )
      values = [t["value"] if t["status"] == "completed" else float("nan") for t in report["trials"]]
      best = np.fmax.accumulate(np.nan_to_num(values, nan=0.0)).tolist()
      runs[method].append(
        {
          "seed": rep,
          "values": values,
          "best_so_far": best,
          "seconds": time.perf_counter() - start,
          "best_params": report["best"]["params"] if report["best"] else None,
        }
      )
      log(f"digits {method} rep {rep}: best {best[-1]:.4f} after {trials} trials, {runs[method][-1]['seconds']:.0f} s")
  top = max(max(r["best_so_far"]) for rs in runs.values() for r in rs)
  summary = {"best_accuracy_seen": top, "epochs": epochs, "trials": trials, "reps": reps, "methods": {}}
  for method, rs in runs.items():
    grid = np.array([r["best_so_far"] for r in rs])
    summary["methods"][method] = {
      "median_best_so_far": np.median(grid, axis=0).tolist(),
      "median_regret": (top - np.median(grid, axis=0)).tolist(),
      "median_seconds_per_study": float(np.median([r["seconds"] for r in rs])),
    }
  rand_final = summary["methods"]["random"]["median_best_so_far"][-1]
  summary["bo_trials_to_match_random_final"] = next(
    (n + 1 for n, v in enumerate(summary["methods"]["bo"]["median_best_so_far"]) if v >= rand_final), None
  )
  n = summary["bo_trials_to_match_random_final"]
  summary["ratio_to_budget"] = None if n is None else n / trials
  return {"runs": runs, "summary": summary}


def markdown(results: dict, args) -> str:
  lines = [f"## BO vs random search at equal budgets (median over {args.reps} repetitions)", ""]
  checkpoints = [5, 10, 15, 20, 25, 30, 40, 50]
  for name, res in results["functions"].items():
    shown = [n for n in checkpoints if n <= args.budget]
    lines += [
      f"### {name} (optimum {res['optimum']}): median simple regret after n evaluations",
      "",
      "| method | " + " | ".join(f"n={n}" for n in shown) + " |",
      "|---|" + "---:|" * len(shown),
    ]
    for label, m in res["methods"].items():
      lines.append(f"| {label} | " + " | ".join(f"{m['median_regret'][n - 1]:.3g}" for n in shown) + " |")
    lines += [
      "",
      "| budget | random's final regret | method | its final regret "
      "| first n where its median regret <= random's final | n / budget | target (<= 0.5) |",
      "|---:|---:|---|---:|---:|---:|---|",
    ]
    for budget, m in res["match"].items():
      for label, v in m.items():
        if label == "random_final_regret":
          continue
        t = v["trials_to_match"]
        ratio = f"{v['ratio_to_budget']:.2f}" if t is not None else "> 1"
        matched = t if t is not None else "> " + budget
        met = "met" if v["target_met"] else "NOT met"
        lines.append(
          f"| {budget} | {m['random_final_regret']:.3g} | {label} | {v['final_regret']:.3g} "
          f"| {matched} | {ratio} | {met} |"
        )
    lines.append("")
  s = results["seconds_per_suggestion"]
  lines += [
    "### Seconds per BO suggestion (GP fit + acquisition)",
    "",
    "| function | median s | p90 s | calls | compile-bearing first calls, total s | vizier (PITFALLS.md) |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for name, v in s.items():
    med, p90 = (f"{v[k]:.3f}" if v[k] is not None else "-" for k in ("median", "p90"))
    lines.append(f"| {name} | {med} | {p90} | {v['calls']} | {v['first_at_each_size_total']:.1f} | ~{VIZIER_SECONDS} |")
  if results.get("digits"):
    d = results["digits"]["summary"]
    shown = [n for n in (2, 4, 6, 8, 10, 12, 16, 20) if n <= d["trials"]]
    lines += [
      "",
      f"### Digits MLP ({d['epochs']} epochs per trial, lr x dropout x batch size; median over {d['reps']} studies): "
      "best final test accuracy after n trials",
      "",
      "| method | " + " | ".join(f"n={n}" for n in shown) + " | seconds per study |",
      "|---|" + "---:|" * (len(shown) + 1),
    ]
    for method, m in d["methods"].items():
      lines.append(
        f"| {method} | "
        + " | ".join(f"{m['median_best_so_far'][n - 1]:.4f}" for n in shown)
        + f" | {m['median_seconds_per_study']:.0f} |"
      )
    lines += [
      "",
      f"Best accuracy any trial reached: {d['best_accuracy_seen']:.4f}; BO matches random search's final median after "
      f"{d['bo_trials_to_match_random_final'] or '>' + str(d['trials'])} trials of {d['trials']}"
      + (f" ({d['ratio_to_budget']:.2f} of the budget)." if d["ratio_to_budget"] is not None else "."),
    ]
  return "\n".join(lines) + "\n"


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument(
    "--reps", type=int, default=7, help="repetitions per function and method (default 7, at least 5 for the target)"
  )
  parser.add_argument(
    "--budget",
    type=int,
    default=50,
    help="evaluations per run; the table also reads budget 30 off the same runs (default 50)",
  )
  parser.add_argument(
    "--batch",
    type=int,
    default=5,
    help="Branin also with BO batches of this size (kriging believer); 0 skips (default 5)",
  )
  parser.add_argument("--digits-trials", type=int, default=16, help="trials per digits study (default 16)")
  parser.add_argument("--digits-reps", type=int, default=5, help="digits studies per method; 0 skips (default 5)")
  parser.add_argument("--digits-epochs", type=int, default=5, help="epochs per digits trial (default 5)")
  parser.add_argument("--out", default=DEFAULT_OUT, help="JSON output path (default benchmarks/results/tune.json)")
  args = parser.parse_args(argv)
  log = common.log
  start = time.perf_counter()
  load_start = load_average()
  budgets = sorted({b for b in (30, args.budget) if b <= args.budget})
  results = {"functions": {}, "seconds_per_suggestion": {}}
  raw = {}
  for name in FUNCTIONS:
    runs = {"random": [run_function(name, "random", s, args.budget) for s in range(args.reps)], "bo": []}
    for s in range(args.reps):
      runs["bo"].append(run_function(name, "bo", s, args.budget))
      last = runs["bo"][-1]
      log(f"{name} bo rep {s}: regret {last['regret'][-1]:.3g} after {args.budget}, {sum(last['seconds']):.1f} s")
    if name == "branin" and args.batch > 1:
      label = f"bo batch={args.batch}"
      runs[label] = [run_function(name, "bo", s, args.budget, batch=args.batch) for s in range(args.reps)]
      log(f"{name} {label}: done")
    raw[name] = runs
    results["functions"][name] = summarize_function(name, runs, budgets)
    results["seconds_per_suggestion"][name] = suggestion_seconds(runs["bo"])
  if args.digits_reps > 0:
    with tempfile.TemporaryDirectory(prefix="jaxflow_tune_bench_") as workroot:
      results["digits"] = run_digits(args.digits_trials, args.digits_reps, args.digits_epochs, workroot, log)
  report = markdown(results, args)
  print(report)
  payload = {
    **common.header("tune", args, versions=VERSIONS),
    "runtime_seconds": time.perf_counter() - start,
    "load_average_1_5_15": {"start": load_start, "end": load_average()},
    "results": results,
    "runs": raw,
    "markdown": report,
  }
  common.write_payload(args.out, payload, indent=1)
  log(f"wrote {args.out} ({payload['runtime_seconds']:.0f} s)")


if __name__ == "__main__":
  main()
