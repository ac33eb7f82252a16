"""The tuning report's plots, each drawn on a bare matplotlib Figure (Agg canvas, no pyplot):

- convergence.png: every trial's objective and the best so far against the trial index (stopped trials
  at their last rung, failed ones as vertical lines);
- importance.png: the GP's inverse ARD lengthscales, normalized (`report._surrogate`);
- slice_*.png: the GP mean over two parameters, the others at the best trial's values, the trials on top.
"""

from __future__ import annotations

import numpy as np

from jaxflow.plotting import new_figure


def fmt(v, digits: int = 4) -> str:
  """A value as the report shows it: '-' for none, floats to `digits` significant digits."""
  if v is None:
    return "-"
  if isinstance(v, float):
    return f"{v:.{digits}g}" if abs(v) < 1e-3 or abs(v) >= 1e4 else f"{v:.{digits}f}"
  return str(v)


def plot_convergence(report: dict, path: str) -> str:
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
  from matplotlib.ticker import MaxNLocator  # deferred: a matplotlib submodule, needed only when plotting

  ax.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax.set(xlabel="trial", ylabel=report["metric"], title=f"Convergence ({report['settings']['method']})")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(path)
  return path


def plot_importance(report: dict, path: str) -> str:
  items = sorted(report["importance"].items(), key=lambda kv: kv[1])
  fig = new_figure(6, 0.5 * len(items) + 1.5)
  ax = fig.add_subplot()
  ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
  ax.set(xlabel="share of inverse lengthscales", title="Parameter importance (GP ARD)")
  fig.tight_layout()
  fig.savefig(path)
  return path


def plot_slice(report: dict, s: dict, path: str) -> str:
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
  others = ", ".join(f"{k}={fmt(v, 3)}" for k, v in s["others"].items())
  ax.set(xlabel=s["x"], ylabel=s["y"], title=f"GP mean, {s['x']} x {s['y']}")
  ax.text(0.01, -0.16, f"others at the best trial's: {others}", transform=ax.transAxes, fontsize=6, va="top", wrap=True)
  ax.legend(fontsize=7, loc="upper right")
  fig.tight_layout()
  fig.savefig(path)
  return path
