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
Plots are drawn on a bare matplotlib Figure (Agg canvas, no pyplot).
"""

from __future__ import annotations

import json
import os
import re

import numpy as np

from jaxflow.config import get_field, load_config, to_dict
from jaxflow.plotting import new_figure
from jaxflow.tune import gp as gp_lib

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
  numeric = {p.name for p in space.params if p.kind != "categorical" and p.name in best["params"]}
  pairs = [pair for pair in PAIRS if set(pair) <= numeric]
  if not pairs:
    ranked = sorted(numeric, key=lambda n: -importance[n])
    pairs = [tuple(ranked[:2])] if len(ranked) >= 2 else []
  anchor = space.to_unit(best["params"])
  grid = np.linspace(0.0, 1.0, SLICE_POINTS)
  slices = []
  for a, b in pairs:
    ia, ib = space.names.index(a), space.names.index(b)
    unit = np.repeat(anchor[None, :], SLICE_POINTS * SLICE_POINTS, axis=0)
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    unit[:, ia], unit[:, ib] = gx.ravel(), gy.ravel()
    values_, active = space.decode(unit)
    mean, std = model.predict(space.features(values_, active))
    xs = [float(v) for v in space.params[ia].from_unit(grid)]
    ys = [float(v) for v in space.params[ib].from_unit(grid)]
    slices.append(
      {
        "x": a,
        "y": b,
        "x_values": xs,
        "y_values": ys,
        "x_log": space.params[ia].log,
        "y_log": space.params[ib].log,
        "mean": (sign * mean).reshape(SLICE_POINTS, SLICE_POINTS).tolist(),
        "std": std.reshape(SLICE_POINTS, SLICE_POINTS).tolist(),
        "others": {k: v for k, v in best["params"].items() if k not in (a, b)},
      }
    )
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


# -------------------------------------------------------------------------------------------- writing


def write(report: dict, study, *, config_file: str | None) -> None:
  workdir = study.workdir
  plots_dir = os.path.join(workdir, "plots")
  os.makedirs(plots_dir, exist_ok=True)
  plots = {"convergence": _plot_convergence(report, os.path.join(plots_dir, "convergence.png"))}
  if report.get("importance"):
    plots["importance"] = _plot_importance(report, os.path.join(plots_dir, "importance.png"))
  for s in report.get("slices", []):
    name = "slice_" + re.sub(r"[^a-z0-9]+", "_", f"{s['x']}__{s['y']}".lower())
    plots[name] = _plot_slice(report, s, os.path.join(plots_dir, f"{name}.png"))
  report["plots"] = {k: os.path.relpath(v, workdir) for k, v in plots.items()}
  if report["best"] is not None:
    path = os.path.join(workdir, "best_config.py")
    write_best_config(path, study, report["best"], config_file=config_file)
    report["best_config"] = os.path.relpath(path, workdir)
  with open(os.path.join(workdir, "report.json"), "w") as f:
    json.dump(report, f, indent=1, default=_json_default)
  with open(os.path.join(workdir, "report.md"), "w") as f:
    f.write(markdown(report))


def _json_default(value):
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  if isinstance(value, tuple):
    return list(value)
  raise TypeError(type(value).__name__)


def _flatten(tree: dict, prefix: str = "") -> dict:
  out = {}
  for k, v in tree.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = v
  return out


def study_overrides(config, config_file: str) -> dict:
  """The fields where the study's base config differs from what `config_file` gives (its CLI overrides)."""
  fresh = _flatten(to_dict(load_config(config_file)))
  given = _flatten(to_dict(config))
  return {k: get_field(config, k) for k in sorted(given) if k in fresh and given[k] != fresh[k]}


def write_best_config(path: str, study, best: dict, *, config_file: str | None) -> None:
  """best_config.py: `get_config()` = the base config file + the study's overrides + the best trial's."""
  metric, value = study.config.train.monitor, best["value"]
  header = [
    f'"""The best trial of a `jaxflow tune` study: trial {best["index"]}, {metric} = {value:.4f} ({study.objective}).',
    "",
    f"  jaxflow train --config={path} --workdir=runs/tuned",
    "",
    "A trial trained alone (--batch=1) is reproduced bitwise by that command (the same params_sha256). One",
    "trained in a vmapped group (--batch>1) matches a run of its config alone to ~1e-7 (float rounding of",
    "the batched program), not bitwise"
    + (
      f"; this one trained in a group of {best['group']}." if best.get("group", 1) > 1 else "; this one trained alone."
    ),
    "",
  ]
  if config_file is not None:
    file_part, _, variant = config_file.partition(":")
    source, here = os.path.abspath(file_part), os.path.dirname(os.path.abspath(path))
    # Relative when the study sits in the same tree as the config (a repo moves as a whole), else absolute.
    base = (os.path.relpath(source, here) if os.path.commonpath([source, here]) != os.sep else source) + (
      f":{variant}" if variant else ""
    )
    overrides = {**study_overrides(study.config, config_file), **best["overrides"]}
    body = [
      "The base config file (a path relative to this file, or absolute), the study's own overrides, then the best trial's.",
      '"""',
      "",
      "import os",
      "",
      "from jaxflow.config import load_config",
      "from jaxflow.tune.space import apply",
      "",
      f"BASE = {base!r}",
      "OVERRIDES = {",
      *[f"    {k!r}: {v!r}," for k, v in overrides.items()],
      "}",
      "",
      "",
      "def get_config():",
      "  config = load_config(os.path.join(os.path.dirname(os.path.abspath(__file__)), BASE))",
      "  return apply(config, OVERRIDES)",
    ]
  else:  # the Python API without a file: the whole resolved config, inline
    from jaxflow.tune.study import trial_config

    full = to_dict(trial_config(study.config, study.space, best["params"]))
    body = [
      "The study was given a config object, not a file: this file holds the whole resolved config",
      "(lists become tuples, as jaxflow configs hold them).",
      '"""',
      "",
      "import ml_collections",
      "",
      f"CONFIG = {full!r}",
      "",
      "",
      "def _tuples(value):",
      "  if isinstance(value, dict):",
      "    return {k: _tuples(v) for k, v in value.items()}",
      "  return tuple(_tuples(v) for v in value) if isinstance(value, list) else value",
      "",
      "",
      "def get_config():",
      "  return ml_collections.ConfigDict(_tuples(CONFIG))",
    ]
  with open(path, "w") as f:
    f.write("\n".join(header + body) + "\n")


def _fmt(v, digits: int = 4) -> str:
  if v is None:
    return "-"
  if isinstance(v, float):
    return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{digits}f}"
  return str(v)


def markdown(report: dict) -> str:
  s, metric = report["settings"], report["metric"]
  c = report["counts"]
  lines = [f"# Tuning study: {metric} ({report['mode']}, {report['objective']} value)", ""]
  rungs = f" (rungs of {', '.join(map(str, s['rungs']))} epochs)" if s["early_stop"] != "none" else ""
  lines += [
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
      f"**Best**: trial {b['index']}, {metric} = {_fmt(b['value'])}: "
      + ", ".join(f"`{k}={_fmt(v)}`" for k, v in b["params"].items()),
      "",
      f"Runnable: `jaxflow train --config={report.get('best_config', 'best_config.py')} --workdir=...` (relative to the study's workdir)",
      "",
    ]
  names = [p["name"] for p in report["space"]]
  lines += [
    "## Trials",
    "",
    "| trial | status | " + metric + " | " + " | ".join(names) + " | seconds | note |",
    "|---:|---|---:|" + "---:|" * len(names) + "---:|---|",
  ]
  for r in report["trials"]:
    note = r["error"] or (
      "; ".join(f"{g['epochs']} ep: {_fmt(g['value'])}" for g in r["rungs"][:-1])
      if len(r["rungs"]) > 1 or r["status"] == "stopped"
      else ""
    )
    if r["status"] == "stopped":
      note = "; ".join(f"{g['epochs']} ep: {_fmt(g['value'])}" for g in r["rungs"])
    if r["group"] > 1:
      note = f"trained in a group of {r['group']}" + (f"; {note}" if note else "")
    lines.append(
      f"| {r['index']} | {r['status']} | {_fmt(r['value'])} | "
      + " | ".join(_fmt(r["params"].get(n)) for n in names)
      + f" | {r['seconds']:.1f} | {note} |"
    )
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


def _plot_convergence(report: dict, path: str) -> str:
  fig = new_figure(7, 4.2)
  ax = fig.add_subplot()
  rows = report["trials"]
  done = [(r["index"], r["value"]) for r in rows if r["status"] == "completed"]
  if done:
    ax.scatter(*zip(*done), s=18, color="C0", label="completed trial", zorder=3)
  stopped = [(r["index"], r["rungs"][-1]["value"]) for r in rows if r["status"] == "stopped" and r["rungs"]]
  if stopped:
    ax.scatter(
      *zip(*stopped), s=18, facecolors="none", edgecolors="C1", label="stopped early (its last rung)", zorder=3
    )
  steps = [(i, v) for i, v in enumerate(report["convergence"]) if v is not None]
  if steps:
    ax.step(*zip(*steps), where="post", color="C2", label="best so far")
  failed = [r["index"] for r in rows if r["status"] == "failed"]
  if failed:
    for i in failed:
      ax.axvline(i, color="C3", alpha=0.3, linewidth=1)
    ax.plot([], [], color="C3", alpha=0.5, label="failed trial")
  from matplotlib.ticker import MaxNLocator

  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set(xlabel="trial", ylabel=report["metric"], title=f"Convergence ({report['settings']['method']})")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  return path


def _plot_importance(report: dict, path: str) -> str:
  items = sorted(report["importance"].items(), key=lambda kv: kv[1])
  fig = new_figure(6, 0.5 * len(items) + 1.5)
  ax = fig.add_subplot()
  ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
  ax.set(xlabel="share of inverse lengthscales", title="Parameter importance (GP ARD)")
  fig.tight_layout()
  fig.savefig(path)
  return path


def _plot_slice(report: dict, s: dict, path: str) -> str:
  fig = new_figure(6, 4.8)
  ax = fig.add_subplot()
  mesh = ax.contourf(s["x_values"], s["y_values"], np.asarray(s["mean"]), levels=20, cmap="viridis")
  fig.colorbar(mesh, ax=ax, label=f"GP mean of {report['metric']}")
  pts = [
    (r["params"][s["x"]], r["params"][s["y"]])
    for r in report["trials"]
    if r["status"] in ("completed", "stopped") and s["x"] in r["params"] and s["y"] in r["params"]
  ]
  if pts:
    ax.scatter(*zip(*pts), s=16, color="white", edgecolors="black", label="trials")
  b = report["best"]
  ax.scatter(
    [b["params"][s["x"]]],
    [b["params"][s["y"]]],
    marker="*",
    s=160,
    color="red",
    edgecolors="black",
    label=f"best (trial {b['index']})",
  )
  if s["x_log"]:
    ax.set_xscale("log")
  if s["y_log"]:
    ax.set_yscale("log")
  others = ", ".join(f"{k}={_fmt(v, 3)}" for k, v in s["others"].items())
  ax.set(xlabel=s["x"], ylabel=s["y"], title=f"GP mean, {s['x']} x {s['y']}")
  ax.text(0.01, -0.16, f"others at the best trial's: {others}", transform=ax.transAxes, fontsize=6, va="top", wrap=True)
  ax.legend(fontsize=7, loc="upper right")
  fig.tight_layout()
  fig.savefig(path)
  return path
