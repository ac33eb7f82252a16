"""A run's layer statistics vs step, with vanishing and exploding layers marked.

`train.layer_stats_every=N` makes the loop log, every N epochs, records with split "layers" in
metrics.jsonl: `LAYER/act_mean`, `LAYER/act_std` (post-activation outputs on a fixed training batch)
and `LAYER/grad_norm` (the norm of that layer's parameter gradient). A layer is flagged *vanishing*
when a statistic falls below 1e-5 and *exploding* when one rises above 1e3, at any logged step.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from jaxflow.inspect import pictures
from jaxflow.workdir import read_metrics

VANISHING, EXPLODING = 1e-5, 1e3
PLOTTED = ("act_std", "grad_norm")


def read_layer_records(workdir: str) -> list[dict]:
  """The run's "layers" records of metrics.jsonl, in step order ([] when there are none)."""
  return sorted(read_metrics(workdir, "layers"), key=lambda r: r["step"])


def layer_series(records: list[dict]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
  """{layer: {statistic: (steps, values)}} for act_std and grad_norm, layers in first-seen order."""
  series: dict[str, dict[str, tuple[list, list]]] = {}
  for record in records:
    for key, value in record.items():
      layer, sep, stat = key.rpartition("/")
      if sep and stat in PLOTTED:
        steps, values = series.setdefault(layer, {}).setdefault(stat, ([], []))
        steps.append(record["step"])
        values.append(float(value))
  return {
    layer: {stat: (np.asarray(s), np.asarray(v)) for stat, (s, v) in stats.items()} for layer, stats in series.items()
  }


def flag_layers(series: dict, *, vanishing: float = VANISHING, exploding: float = EXPLODING) -> dict:
  """{"vanishing": [...], "exploding": [...]}: one entry per (layer, statistic) crossing a threshold,
  with the steps where it did and the extreme value."""
  flags = {"vanishing": [], "exploding": [], "thresholds": {"vanishing": vanishing, "exploding": exploding}}
  for layer, stats in series.items():
    for stat, (steps, values) in stats.items():
      low, high = values < vanishing, values > exploding
      if low.any():
        flags["vanishing"].append(
          {"layer": layer, "statistic": stat, "steps": steps[low].tolist(), "min": float(values.min())}
        )
      if high.any() or not np.isfinite(values).all():
        bad = high | ~np.isfinite(values)
        finite = values[np.isfinite(values)]
        flags["exploding"].append(
          {
            "layer": layer,
            "statistic": stat,
            "steps": steps[bad].tolist(),
            "max": float(finite.max()) if finite.size else None,
            "non_finite": bool(not np.isfinite(values).all()),
          }
        )
  return flags


def plot_layer_stats(series: dict, flags: dict) -> Figure:
  """Two panels (activation std, gradient norm) vs step, log scale, one line per layer; the regions
  beyond the thresholds are shaded and the points inside them marked (v vanishing, ^ exploding)."""
  low, high = flags["thresholds"]["vanishing"], flags["thresholds"]["exploding"]
  flagged = {(f["layer"], f["statistic"]) for kind in ("vanishing", "exploding") for f in flags[kind]}
  fig = pictures.new_figure(10.0, 4.0)
  for p, stat in enumerate(PLOTTED):
    ax = fig.add_subplot(1, 2, p + 1)
    values_all = [v for stats in series.values() if stat in stats for v in stats[stat][1] if np.isfinite(v) and v > 0]
    floor = min([low / 10, *values_all]) / 2 if values_all else low / 10
    ceiling = max([high * 10, *values_all]) * 2 if values_all else high * 10
    ax.axhspan(floor, low, color="#4c72b0", alpha=0.12, lw=0)
    ax.axhspan(high, ceiling, color="#c44e52", alpha=0.12, lw=0)
    ax.axhline(low, color="#4c72b0", linestyle="--", linewidth=0.8)
    ax.axhline(high, color="#c44e52", linestyle="--", linewidth=0.8)
    for layer, stats in series.items():
      if stat not in stats:
        continue
      steps, values = stats[stat]
      shown = np.clip(np.where(np.isfinite(values), values, ceiling), floor, ceiling)
      mark = " (vanishing)" if (layer, stat) in flagged and (values < low).any() else ""
      mark += " (exploding)" if (layer, stat) in flagged and ((values > high) | ~np.isfinite(values)).any() else ""
      (line,) = ax.plot(steps, shown, marker=".", linewidth=1.2, label=layer + mark)
      for where, marker in ((values < low, "v"), ((values > high) | ~np.isfinite(values), "^")):
        if where.any():
          ax.scatter(
            steps[where], shown[where], marker=marker, s=60, color=line.get_color(), edgecolors="black", zorder=3
          )
    ax.set_yscale("log")
    ax.set_ylim(floor, ceiling)
    ax.set_xlabel("step", fontsize=8)
    ax.set_title({"act_std": "activation std per layer", "grad_norm": "gradient norm per layer"}[stat], fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
  fig.suptitle(f"layer statistics: vanishing < {low:g} (blue), exploding > {high:g} (red)", fontsize=10)
  fig.subplots_adjust(left=0.07, right=0.98, top=0.86, bottom=0.13, wspace=0.22)
  return fig
