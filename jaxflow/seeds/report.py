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
from jaxflow.seeds import spread, stats
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


def resolution(metric: str, eval_size: int | None) -> dict:
  """The smallest change the metric can show: one eval example for an accuracy-like metric on N examples;
  a continuous metric (loss, MAE) has none worth stating."""
  if metric in ACCURACY_LIKE and eval_size:
    return {"value": 1.0 / eval_size, "why": f"one eval example of {eval_size}", "finer": "eval/loss"}
  return {"value": None, "why": "a continuous metric", "finer": None}


def resolution_warnings(sweeps: list[dict], variance: dict | None, res: dict, metric: str) -> list[str]:
  """Where the study claims less than it seems to: a std, or a source's std, below the metric's resolution,
  and seeds that trained different parameters yet score exactly alike."""
  step, out = res["value"], []
  hint = (
    f"use a finer metric ({res['finer']}, train.monitor={res['finer']!r}) or a larger eval split"
    if res["finer"]
    else ""
  )
  for s in sweeps:
    f = s["final"] or {}
    distinct = len({r["params_sha256"] for r in s["seeds"] if r["params_sha256"]})
    if f.get("std") == 0 and distinct > 1:
      out.append(
        f"sweep {s['name']!r}: its {distinct} seeds trained different parameters but score exactly the same "
        f"{metric}: the metric cannot resolve this source; {hint}"
      )
    elif step and f.get("std") is not None and 0 < f["std"] < step:
      out.append(f"sweep {s['name']!r}: std {f['std']:.4g} is below the metric's resolution ({res['why']}); {hint}")
  warned = {s["name"] for s in sweeps if any(w.startswith(f"sweep {s['name']!r}") for w in out)}
  for name, v in (variance or {}).items():
    if name in warned:  # a sources study's sweep is its source: said once
      continue
    if isinstance(v, dict) and step and v.get("std") is not None and 0 < v["std"] < step:
      out.append(f"source {name!r}: std {v['std']:.4g} is below the metric's resolution ({res['why']}); {hint}")
  return out


def build(
  config,
  results,
  *,
  choice: dict,
  skipped_sources: list[str],
  active: dict,
  study: str | None,
  eval_size: int | None = None,
) -> dict:
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
  report["resolution"] = resolution(metric, eval_size)
  report["warnings"] = resolution_warnings(sweeps, report.get("variance_by_source"), report["resolution"], metric)
  return report


# -------------------------------------------------------------------------------------------- writing


def write(report: dict, workdir: str, *, plots: bool = True) -> None:
  report["plots"] = {}
  if plots:
    os.makedirs(os.path.join(workdir, "plots"), exist_ok=True)
    drawn = {
      "curves": _plot_curves(report, os.path.join(workdir, "plots", "curves.png")),
      "finals": _plot_finals(report, os.path.join(workdir, "plots", "finals.png")),
    }
    report["plots"] = {k: os.path.relpath(v, workdir) for k, v in drawn.items()}
  write_report(workdir, report, markdown(report))


def _fmt(v, digits: int = 4) -> str:
  if v is None:
    return "-"
  if isinstance(v, float):
    return f"{v:.{digits}f}"
  return str(v)


def _resolution_and_streams(report: dict, metric: str) -> list[str]:
  """What the metric can resolve, the warnings where the study claims less than it seems, and every stream."""
  lines = []
  res = report.get("resolution") or {}
  if res.get("value"):
    lines += ["", f"Resolution of {metric}: {res['value']:.4g} ({res['why']}); a std or difference below it is noise."]
  lines += ["", *[f"**Warning**: {w}" for w in report.get("warnings", [])]] if report.get("warnings") else []
  lines += ["", "| stream | in this study |", "|---|---|"]
  varied = {v for s in report["sweeps"] for v in s["vary"]}
  for stream, used in (report.get("active_sources") or {}).items():
    state = "not used by this config" if not used else ("varied" if stream in varied else "used, held fixed")
    lines.append(f"| {stream} | {state} |")
  if "one_bit" in varied:  # a perturbation, not a stream: a plain run flips nothing
    lines.append("| one_bit | varied: each seed flips the lowest mantissa bit of one initial weight |")
  return lines


def markdown(report: dict) -> str:
  metric = report["metric"]
  lines = [f"# Multi-seed study: {metric}", ""]
  mode = report["mode"]
  where = f" Devices: {mode['devices']}." if mode.get("devices") else ""
  lines += [f"**Mode**: `{mode['mode']}` ({mode['why']}).{where}", ""]
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
  lines += _resolution_and_streams(report, metric)
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
    for name in report.get("sources_not_drawn", {}):  # every stream has a row
      lines.append(f"| {name} | 0 | - | not used by this config |")
    if "sum_of_sources_over_all" in report["variance_by_source"]:
      lines += [
        "",
        "Sum of the single-source variances / variance with every source varying: "
        f"{report['variance_by_source']['sum_of_sources_over_all']:.2f} (1 if they add up independently).",
      ]
  lines += spread.markdown(report)
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
    lines += ["", "## Determinism", ""]
    for c in d["checks"]:
      lines.append(f"- {c['statement']}" + (f" ![where they part]({c['plot']})" if c.get("plot") else ""))
    lines += ["", "Flags that govern it:", ""] + [f"- `{k}`: {v}" for k, v in d["flags"].items()]
  for name, path in report.get("plots", {}).items():
    lines += ["", f"![{name}]({path})"]
  return "\n".join(lines) + "\n"


def _plot_curves(report: dict, path: str) -> str:
  """Learning curves of every sweep: mean +- std (dark band) and min-max (light band) over seeds; the right
  panel zooms into the final epochs, where the seeds' spread is too small to see at the whole run's scale."""
  fig = new_figure(10, 4.2)
  whole, final = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
  for i, s in enumerate(report["sweeps"]):
    c = s["curves"]
    if not c["epochs"]:
      continue
    color = f"C{i % 10}"
    epochs, mean, std = np.array(c["epochs"]), np.array(c["mean"]), np.nan_to_num(np.array(c["std"]))
    tail = slice(max(0, len(epochs) - max(3, len(epochs) // 4)), None)  # the last quarter, at least 3 epochs
    if len(epochs) < 6:  # too short to zoom into: the last epoch's value of every seed, on its own scale
      last = [row[-1] for row in c["per_seed"] if row and row[-1] is not None]
      final.scatter([i] * len(last), last, color=color, s=18, alpha=0.8)
      final.errorbar([i + 0.25], [mean[-1]], yerr=[std[-1]], color=color, fmt="o", capsize=3)
    panels = ((whole, slice(None)), (final, tail)) if len(epochs) >= 6 else ((whole, slice(None)),)
    for ax, part in panels:
      ax.fill_between(epochs[part], np.array(c["min"])[part], np.array(c["max"])[part], color=color, alpha=0.15, lw=0)
      ax.fill_between(epochs[part], (mean - std)[part], (mean + std)[part], color=color, alpha=0.35, linewidth=0)
      ax.plot(epochs[part], mean[part], color=color, label=f"{s['name']} ({len(s['seeds'])} seeds)")
  whole.set(xlabel="epoch", ylabel=report["metric"], title="mean, +-std (dark), min-max (light)")
  short = max((len(s["curves"]["epochs"]) for s in report["sweeps"]), default=0) < 6
  if short:
    final.set_xticks(range(len(report["sweeps"])), [s["name"] for s in report["sweeps"]], fontsize=8)
  final.set(xlabel="sweep" if short else "epoch", title="last epoch per seed (+-std)" if short else "final epochs")
  res = (report.get("resolution") or {}).get("value")
  if res:
    final.annotate(f"resolution {res:.4g}", xy=(0.02, 0.02), xycoords="axes fraction", fontsize=8)
  whole.legend(fontsize=8)
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
