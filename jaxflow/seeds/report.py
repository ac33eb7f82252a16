"""The multi-seed study's report: report.json (everything), report.md (tables), plots/*.png.

Per seed the final and the best value of the run's `train.monitor` metric; per sweep their summary
statistics with a 95% bootstrap CI of the mean, and how many seeds would pin the mean within +-0.5
points (accuracy-like metrics) or +-1% of the mean (others); per source the variance decomposition; the
learning curves of all seeds as a band. Plots are drawn on a bare matplotlib Figure (Agg, no pyplot).
"""

from __future__ import annotations

import math
import os

import numpy as np

from jaxflow.plotting import new_figure
from jaxflow.seeds import stats
from jaxflow.workdir import read_metrics, write_report

ACCURACY_LIKE = ("accuracy", "balanced_accuracy", "macro_f1")
HALF_WIDTH_POINTS = 0.005  # +-0.5 accuracy points


def _metric(config) -> str:
  return config.train.monitor.split("/")[1]


def read_curve(workdir: str, metric: str) -> list[float]:
  """The eval metric per epoch of one seed's run, from its metrics.jsonl (the first record per epoch)."""
  values: dict[int, float] = {}
  for record in read_metrics(workdir, "eval"):
    if metric in record:
      values.setdefault(int(record["epoch"]), float(record[metric]))
  return [values[e] for e in sorted(values)]


def _curves(workdirs: list[str], metric: str) -> dict:
  curves = [read_curve(w, metric) for w in workdirs]
  length = max((len(c) for c in curves), default=0)
  grid = np.full((len(curves), length), np.nan)
  for i, c in enumerate(curves):
    grid[i, : len(c)] = c
  with np.errstate(all="ignore"):
    return {
      "epochs": list(range(1, length + 1)),
      "per_seed": [[None if math.isnan(v) else v for v in row] for row in grid.tolist()],
      "mean": np.nanmean(grid, axis=0).tolist() if length else [],
      "std": np.nanstd(grid, axis=0, ddof=1).tolist() if length and len(curves) > 1 else [0.0] * length,
      "min": np.nanmin(grid, axis=0).tolist() if length else [],
      "max": np.nanmax(grid, axis=0).tolist() if length else [],
    }


def _sweep(result, metric: str) -> dict:
  rows, finals, bests = [], [], []
  for i, (workdir, summary) in enumerate(zip(result.workdirs, result.summaries)):
    ok = summary.get("status") == "completed"
    final = summary["final"]["eval"].get(metric) if ok else None
    best = summary["best"]["value"] if ok else None
    rows.append(
      {
        "seed_index": i,
        "workdir": workdir,
        "status": summary.get("status"),
        "final": final,
        "best": best,
        "best_epoch": summary["best"]["epoch"] if ok else None,
        "params_sha256": summary.get("params_sha256"),
        "error": summary.get("error"),
      }
    )
    if ok:
      finals.append(final)
      bests.append(best)
  final_stats = stats.describe(finals) if finals else None
  half = HALF_WIDTH_POINTS if metric in ACCURACY_LIKE else (0.01 * abs(final_stats["mean"]) if final_stats else None)
  needed = stats.seeds_needed(final_stats["std"], half) if final_stats and half else None
  return {
    "name": result.name,
    "vary": list(result.vary),
    "mode": result.mode,
    "seconds": result.seconds,
    "seeds": rows,
    "final": final_stats,
    "best": stats.describe(bests) if bests else None,
    "seeds_needed": {
      "half_width": half,
      "confidence": 0.95,
      "n": needed,
      "note": "from the std of this study's seeds; with few seeds that std is itself uncertain",
    },
    "failed": sum(r["status"] != "completed" for r in rows),
    "curves": _curves(result.workdirs, metric),
  }


def build(config, results, *, choice: dict, skipped_sources: list[str], active: dict, study: str | None) -> dict:
  metric = _metric(config)
  sweeps = [_sweep(r, metric) for r in results]
  report = {
    "schema": 1,
    "metric": config.train.monitor,
    "study": study,
    "mode": choice,
    "sweeps": sweeps,
    "sources_not_drawn": {
      s: "the config never draws from this stream: its variance is 0 by construction" for s in skipped_sources
    },
    "active_sources": active,
  }
  if study == "sources":
    values = {s["name"]: [r["final"] for r in s["seeds"] if r["final"] is not None] for s in sweeps}
    report["variance_by_source"] = stats.variance_by_source(values)
  return report


# -------------------------------------------------------------------------------------------- writing


def write(report: dict, workdir: str) -> None:
  os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
  plots = {
    "curves": _plot_curves(report, os.path.join(workdir, "plots", "curves.png")),
    "finals": _plot_finals(report, os.path.join(workdir, "plots", "finals.png")),
  }
  report["plots"] = {k: os.path.relpath(v, workdir) for k, v in plots.items()}
  write_report(workdir, report, markdown(report))


def _fmt(v, digits: int = 4) -> str:
  if v is None:
    return "-"
  if isinstance(v, float):
    return f"{v:.{digits}f}"
  return str(v)


def markdown(report: dict) -> str:
  metric = report["metric"]
  lines = [f"# Multi-seed study: {metric}", ""]
  mode = report["mode"]
  lines += [f"**Mode**: `{mode['mode']}` ({mode['why']}).", ""]
  lines += [
    "| sweep | varies | seeds | mean | std | 95% CI of the mean | min | median | max | seeds for +-"
    + ("0.5 points" if metric.split("/")[1] in ACCURACY_LIKE else "1% of the mean")
    + " | failed | seconds |",
    "|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|",
  ]
  for s in report["sweeps"]:
    f = s["final"] or {}
    ci = f.get("ci95_mean")
    lines.append(
      f"| {s['name']} | {', '.join(s['vary']) or '-'} | {len(s['seeds'])} | {_fmt(f.get('mean'))} | "
      f"{_fmt(f.get('std'))} | "
      f"{'[' + ', '.join(_fmt(v) for v in ci) + ']' if ci else '-'} | {_fmt(f.get('min'))} | {_fmt(f.get('median'))} "
      f"| {_fmt(f.get('max'))} | "
      f"{_fmt(s['seeds_needed']['n'])} | {s['failed']} | {s['seconds']:.1f} |"
    )
  lines += ["", "Values are the final epoch's; the best epoch's are in report.json (`sweeps[].best`)."]
  if report.get("sources_not_drawn"):
    lines += [
      "",
      "Not run, because this config never draws from them (variance 0 by construction): "
      + ", ".join(report["sources_not_drawn"])
      + ".",
    ]
  if "variance_by_source" in report:
    lines += [
      "",
      "## Variance by source",
      "",
      "| source | variance | std | share of the single-source sum |",
      "|---|---:|---:|---:|",
    ]
    for name, v in report["variance_by_source"].items():
      if isinstance(v, dict):
        lines.append(
          f"| {name} | {v['variance']:.3g} | {_fmt(v['std'])} | "
          f"{_fmt(v['share'], 3) if v['share'] is not None else '-'} |"
        )
    if "sum_of_sources_over_all" in report["variance_by_source"]:
      lines += [
        "",
        "Sum of the single-source variances / variance with every source varying: "
        f"{report['variance_by_source']['sum_of_sources_over_all']:.2f} (1 if they add up independently).",
      ]
  for s in report["sweeps"]:
    lines += [
      "",
      f"## Sweep `{s['name']}`: per seed",
      "",
      "| seed | final | best | best epoch | params_sha256 | status |",
      "|---:|---:|---:|---:|---|---|",
    ]
    for r in s["seeds"]:
      lines.append(
        f"| {r['seed_index']} | {_fmt(r['final'])} | {_fmt(r['best'])} | {_fmt(r['best_epoch'])} | "
        f"`{(r['params_sha256'] or '-')[:16]}` | {r['status']}{': ' + r['error'] if r.get('error') else ''} |"
      )
  if "determinism" in report:
    d = report["determinism"]
    lines += ["", "## Determinism", ""] + [f"- {c['statement']}" for c in d["checks"]]
    lines += ["", "Flags that govern it:", ""] + [f"- `{k}`: {v}" for k, v in d["flags"].items()]
  for name, path in report.get("plots", {}).items():
    lines += ["", f"![{name}]({path})"]
  return "\n".join(lines) + "\n"


def _plot_curves(report: dict, path: str) -> str:
  """Learning curves of every sweep: mean +- std (dark band) and min-max (light band) over seeds."""
  fig = new_figure(7, 4.2)
  ax = fig.add_subplot()
  for i, s in enumerate(report["sweeps"]):
    c = s["curves"]
    if not c["epochs"]:
      continue
    color = f"C{i % 10}"
    epochs, mean, std = np.array(c["epochs"]), np.array(c["mean"]), np.nan_to_num(np.array(c["std"]))
    ax.fill_between(epochs, c["min"], c["max"], color=color, alpha=0.15, linewidth=0)
    ax.fill_between(epochs, mean - std, mean + std, color=color, alpha=0.35, linewidth=0)
    ax.plot(epochs, mean, color=color, label=f"{s['name']} ({len(s['seeds'])} seeds)")
  ax.set(xlabel="epoch", ylabel=report["metric"], title="Learning curves: mean, +-std (dark), min-max (light)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  return path


def _plot_finals(report: dict, path: str) -> str:
  """One box per sweep with every seed's final value drawn on top (a strip plot)."""
  sweeps = [s for s in report["sweeps"] if s["final"]]
  fig = new_figure(max(4.0, 1.2 * len(sweeps) + 2), 4.2)
  ax = fig.add_subplot()
  values = [[r["final"] for r in s["seeds"] if r["final"] is not None] for s in sweeps]
  if values:
    ax.boxplot(values, showfliers=False)
    rng = np.random.default_rng(0)
    for i, v in enumerate(values):
      ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, len(v)), v, s=14, color="C1", zorder=3)
    ax.set_xticks(range(1, len(sweeps) + 1), [s["name"] for s in sweeps])
  ax.set(xlabel="sweep (the PRNG streams that vary)", ylabel=f"final {report['metric']}", title="Final metric per seed")
  fig.tight_layout()
  fig.savefig(path)
  return path
