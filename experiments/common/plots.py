"""Figures for study reports: a bare matplotlib Figure on the Agg canvas (no pyplot, so no global state and
no display is needed), saved as PNG into the study's results folder."""

from __future__ import annotations

import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def figure(width: float = 7.0, height: float = 4.2) -> Figure:
  fig = Figure(figsize=(width, height))
  FigureCanvasAgg(fig)
  return fig


def save(fig: Figure, out: str, name: str) -> str:
  """Writes `out/name` (a .png) and returns the file name, relative to `out`, that the report links."""
  os.makedirs(out, exist_ok=True)
  fig.tight_layout()
  fig.savefig(os.path.join(out, name), dpi=110)
  return name


def error_bars(ax, xs, summaries: list[dict], **kw) -> None:
  """Means with their 95% intervals (stats.mean_ci dicts) at positions xs; points without a mean are skipped."""
  points = [(x, s) for x, s in zip(xs, summaries, strict=True) if s["mean"] is not None]
  if not points:
    return
  x = [p[0] for p in points]
  mean = [p[1]["mean"] for p in points]
  low = [p[1]["mean"] - (p[1]["ci95"] or [p[1]["mean"]])[0] for p in points]
  high = [(p[1]["ci95"] or [0, p[1]["mean"]])[1] - p[1]["mean"] for p in points]
  ax.errorbar(x, mean, yerr=[low, high], capsize=3, marker="o", ms=4, **kw)
