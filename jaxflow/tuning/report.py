"""The tuning study's report: report.json (everything), report.md (tables), plots/*.png, best_config.py.

- a table of trials: status, objective, parameters, seconds, rungs, error;
- the best trial, and `best_config.py`: a runnable config file whose `get_config()` loads the base
  config file and applies the study's own overrides plus the best trial's
  (`jaxflow train --config=WORKDIR/best_config.py --workdir=...`);
- convergence: the best objective so far against the trial index (plots/convergence.png);
- parameter importance from a GP fit to every finished trial: inverse ARD lengthscales, normalized to
  sum 1, a categorical's one-hot columns summed (plots/importance.png). A rough guide: it says how fast
  the fitted surface changes along a parameter's [0, 1] range, not how much the objective depends on it;
- 2-D slices of the GP mean for interacting pairs (lr x epochs, dropout x batch size when the space has
  them, else the two most important numeric parameters), the other parameters at the best trial's
  values, the trials drawn on top (plots/slice_*.png).
Plots: `report_plots`; best_config.py: `best_config`.
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxflow.tuning import gp as gp_lib
from jaxflow.tuning.best_config import write_best_config
from jaxflow.tuning.report_plots import fmt, plot_convergence, plot_importance, plot_slice
from jaxflow.workdir import write_report

PAIRS = (("optim.lr", "train.epochs"), ("model.dropout_rate", "train.batch_size"))
SLICE_POINTS = 40


def build(study, *, settings: dict) -> dict:
  space, mode = study.space, study.mode
  sign = -1.0 if mode == "max" else 1.0
  rows = [
    {
      "index": t.index,
      "status": t.status,
      "value": t.value,
      "params": t.params,
      "seconds": round(t.seconds, 3),
      "group": t.group,
      "rungs": t.rungs,
      "error": t.error,
      "workdir": os.path.relpath(t.workdir, study.workdir),
    }
    for t in study.trials
  ]
  completed = [t for t in study.trials if t.status == "completed"]
  best = None
  if completed:
    top = max(completed, key=lambda t: sign * -t.value)
    best = {
      "index": top.index,
      "value": top.value,
      "params": top.params,
      "overrides": study.space.overrides(top.params),
      "workdir": os.path.relpath(top.workdir, study.workdir),
      "group": top.group,
    }
  so_far, current = [], None
  for t in study.trials:
    if t.status == "completed" and (current is None or sign * t.value < sign * current):
      current = t.value
    so_far.append(current)
  epochs_run = sum(r["epochs"] for t in study.trials for r in t.rungs)
  report = {
    "schema": 1,
    "metric": study.config.train.monitor,
    "mode": mode,
    "objective": study.objective,
    "settings": settings,
    "space": space.describe(),
    "counts": {s: sum(t.status == s for t in study.trials) for s in ("completed", "failed", "stopped", "pending")},
    "trials": rows,
    "best": best,
    "convergence": so_far,
    "epochs_trained": {
      "total": epochs_run,
      "without_early_stopping": len([t for t in study.trials if t.rungs]) * study.rungs.epochs[-1],
    },
  }
  report.update(_surrogate(study, best))
  return report


def _surrogate(study, best) -> dict:
  """GP importance and slices from the finished trials (as the search saw them: imputed, minimized)."""
  params, values = study.observations()
  keep = [i for i, v in enumerate(values) if np.isfinite(v)]
  if len(keep) < 3 or best is None:
    return {
      "importance": None,
      "slices": [],
      "surrogate_note": "fewer than 3 finished trials, or none completed: no GP fitted",
    }
  space = study.space
  x = space.features_of([params[i] for i in keep])
  model = gp_lib.fit(x, np.asarray([values[i] for i in keep]), seed=0)
  share = model.importance()
  importance = {name: float(share[cols].sum()) for name, cols in space.feature_slices().items()}
  sign = -1.0 if study.mode == "max" else 1.0
  slices = [_slice(model, space, best, a, b, sign) for a, b in _slice_pairs(space, best, importance)]
  return {
    "importance": importance,
    "gp": {
      "lengthscales": model.params["lengthscales"].tolist(),
      "signal_variance": float(model.params["amplitude"]),
      "noise_variance": float(model.params["noise"]),
      "neg_log_marginal_likelihood": model.nll,
      "trials": len(keep),
    },
    "slices": slices,
  }


def _slice_pairs(space, best: dict, importance: dict) -> list[tuple]:
  """The numeric pairs to slice: PAIRS the space has, else its two most important numeric parameters."""
  numeric = {p.name for p in space.params if p.kind != "categorical" and p.name in best["params"]}
  pairs = [pair for pair in PAIRS if set(pair) <= numeric]
  if not pairs:
    ranked = sorted(numeric, key=lambda n: -importance[n])
    pairs = [tuple(ranked[:2])] if len(ranked) >= 2 else []
  return pairs


def _slice(model, space, best: dict, a: str, b: str, sign: float) -> dict:
  """The GP mean and std on a SLICE_POINTS^2 grid over `a` x `b`, the others at the best trial's values."""
  anchor = space.to_unit(best["params"])
  grid = np.linspace(0.0, 1.0, SLICE_POINTS)
  ia, ib = space.names.index(a), space.names.index(b)
  unit = np.repeat(anchor[None, :], SLICE_POINTS * SLICE_POINTS, axis=0)
  gy, gx = np.meshgrid(grid, grid, indexing="ij")
  unit[:, ia], unit[:, ib] = gx.ravel(), gy.ravel()
  values, active = space.decode(unit)
  mean, std = model.predict(space.features(values, active))
  return {
    "x": a,
    "y": b,
    "x_values": [float(v) for v in space.params[ia].from_unit(grid)],
    "y_values": [float(v) for v in space.params[ib].from_unit(grid)],
    "x_log": space.params[ia].log,
    "y_log": space.params[ib].log,
    "mean": (sign * mean).reshape(SLICE_POINTS, SLICE_POINTS).tolist(),
    "std": std.reshape(SLICE_POINTS, SLICE_POINTS).tolist(),
    "others": {k: v for k, v in best["params"].items() if k not in (a, b)},
  }


# -------------------------------------------------------------------------------------------- writing


def write(report: dict, study, *, config_file: str | None) -> None:
  """plots/*.png, best_config.py (when a trial completed), report.json and report.md in the study's workdir."""
  workdir = study.workdir
  plots_dir = os.path.join(workdir, "plots")
  os.makedirs(plots_dir, exist_ok=True)
  plots = {"convergence": plot_convergence(report, os.path.join(plots_dir, "convergence.png"))}
  if report.get("importance"):
    plots["importance"] = plot_importance(report, os.path.join(plots_dir, "importance.png"))
  for s in report.get("slices", []):
    name = "slice_" + re.sub(r"[^a-z0-9]+", "_", f"{s['x']}__{s['y']}".lower())
    plots[name] = plot_slice(report, s, os.path.join(plots_dir, f"{name}.png"))
  report["plots"] = {k: os.path.relpath(v, workdir) for k, v in plots.items()}
  if report["best"] is not None:
    path = os.path.join(workdir, "best_config.py")
    write_best_config(path, study, report["best"], config_file=config_file)
    report["best_config"] = os.path.relpath(path, workdir)
  write_report(workdir, report, markdown(report), indent=1)


def markdown(report: dict) -> str:
  """report.md: the settings, the best trial, a table of trials, the importance shares, the plots."""
  metric = report["metric"]
  lines = [f"# Tuning study: {metric} ({report['mode']}, {report['objective']} value)", ""]
  lines += _summary_lines(report)
  names = [p["name"] for p in report["space"]]
  lines += [
    "## Trials",
    "",
    "| trial | status | " + metric + " | " + " | ".join(names) + " | seconds | note |",
    "|---:|---|---:|" + "---:|" * len(names) + "---:|---|",
  ]
  lines += [_trial_row(r, names) for r in report["trials"]]
  if report.get("importance"):
    lines += [
      "",
      "## Parameter importance (GP inverse lengthscales, normalized)",
      "",
      "| parameter | share |",
      "|---|---:|",
    ]
    for name, share in sorted(report["importance"].items(), key=lambda kv: -kv[1]):
      lines.append(f"| {name} | {share:.3f} |")
    lines += [
      "",
      "How fast the GP's fitted surface changes along each parameter's range: a guide, not a causal effect.",
    ]
  for name, path in report.get("plots", {}).items():
    lines += ["", f"![{name}]({path})"]
  return "\n".join(lines) + "\n"


def _summary_lines(report: dict) -> list[str]:
  """The method, the counts, the epochs trained under pruning, and the best trial."""
  s, metric = report["settings"], report["metric"]
  c = report["counts"]
  rungs = f" (rungs of {', '.join(map(str, s['rungs']))} epochs)" if s["early_stop"] != "none" else ""
  lines = [
    f"**Method** `{s['method']}`"
    + (f" (acquisition `{s['acquisition']}`, {s['init_trials']} Sobol trials first)" if s["method"] == "bo" else "")
    + (f" ({s['grid_levels']} levels per numeric parameter)" if s["method"] == "grid" else "")
    + f", {s['trials']} trials in batches of {s['batch']}, early stopping `{s['early_stop']}`{rungs}."
    + f" Completed {c['completed']}, stopped {c['stopped']}, failed {c['failed']}.",
    "",
  ]
  e = report["epochs_trained"]
  if s["early_stop"] != "none":
    lines += [f"Epochs trained: {e['total']} (without early stopping: {e['without_early_stopping']}).", ""]
  if report["best"]:
    b = report["best"]
    lines += [
      f"**Best**: trial {b['index']}, {metric} = {fmt(b['value'])}: "
      + ", ".join(f"`{k}={fmt(v)}`" for k, v in b["params"].items()),
      "",
      f"Runnable: `jaxflow train --config={report.get('best_config', 'best_config.py')} --workdir=...` "
      "(relative to the study's workdir)",
      "",
    ]
  return lines


def _trial_row(r: dict, names: list[str]) -> str:
  """One trial's row: status, value, parameters, seconds, and a note (error, rungs, group)."""
  note = r["error"] or (
    "; ".join(f"{g['epochs']} ep: {fmt(g['value'])}" for g in r["rungs"][:-1])
    if len(r["rungs"]) > 1 or r["status"] == "stopped"
    else ""
  )
  if r["status"] == "stopped":
    note = "; ".join(f"{g['epochs']} ep: {fmt(g['value'])}" for g in r["rungs"])
  if r["group"] > 1:
    note = f"trained in a group of {r['group']}" + (f"; {note}" if note else "")
  return (
    f"| {r['index']} | {r['status']} | {fmt(r['value'])} | "
    + " | ".join(fmt(r["params"].get(n)) for n in names)
    + f" | {r['seconds']:.1f} | {note} |"
  )
