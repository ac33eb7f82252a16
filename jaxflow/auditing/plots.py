"""The audit report's plots (plots/*.png): class counts per split, per-example mean histogram, one heatmap
per metadata attribute.

Drawn from the report dict alone (the histogram is stored in it as counts), so a report read back from
report.json can be plotted again without the data. Figures come from `jaxflow.plotting.new_figure`
(matplotlib's Agg canvas on a bare `Figure`: no pyplot, nothing global changes in the caller).
"""

from __future__ import annotations

import os
import re

import numpy as np

from jaxflow.auditing.markdown import fmt, shown_table
from jaxflow.plotting import new_figure


def write_plots(report: dict, folder: str) -> dict[str, str]:
  """Writes every plot of `report` as `folder`/*.png (creating `folder`); returns {plot name: path}."""
  os.makedirs(folder, exist_ok=True)
  names = report["meta"]["class_names"]
  paths = {
    "class_counts": _save(_class_counts_figure(report["class_balance"], names), folder, "class_counts"),
    "mean_intensity": _save(_histogram_figure(report["shift"], report["meta"]), folder, "mean_intensity"),
  }
  taken = set()
  for key, a in report["attribute_bias"]["attributes"].items():
    stem = _unique_stem("attribute_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", key), taken)
    paths[f"attribute:{key}"] = _save(_heatmap_figure(key, a, names), folder, stem)
  return paths


def _unique_stem(stem: str, taken: set[str]) -> str:
  out, k = stem, 1
  while out in taken:
    k += 1
    out = f"{stem}_{k}"
  taken.add(out)
  return out


def _save(fig, folder: str, stem: str) -> str:
  path = os.path.join(folder, f"{stem}.png")
  fig.savefig(path, format="png")
  return path


def _class_counts_figure(balance: dict, names: list[str]):
  splits = balance["splits"]
  fig = new_figure(max(6.0, 0.35 * len(names) * len(splits) + 2), 4.0, layout="constrained")
  ax = fig.add_subplot()
  x = np.arange(len(names))
  width = 0.8 / len(splits)
  for k, (s, b) in enumerate(splits.items()):
    ax.bar(
      x + (k - (len(splits) - 1) / 2) * width, b["counts"], width, label=f"{s} (ratio {fmt(b['imbalance_ratio'])})"
    )
  ax.set_xticks(
    x,
    names if len(names) <= 40 else [""] * len(names),
    rotation=45 if len(names) > 10 else 0,
    ha="right" if len(names) > 10 else "center",
  )
  ax.set(xlabel="class", ylabel="examples", title="Class counts per split")
  fig.legend(loc="outside lower center", ncols=min(len(splits), 4))  # outside: never covers a bar
  return fig


def _histogram_figure(shift: dict, meta: dict):
  """Per-example mean densities of train and eval (all splits when there is no eval split)."""
  hist = shift["histogram"]
  edges = np.asarray(hist["edges"])
  shown = [meta["train_split"], meta["eval_split"]] if shift["input_shift"] else list(hist["counts"])
  fig = new_figure(6.5, 4.0, layout="constrained")
  ax = fig.add_subplot()
  for s in shown:
    counts = np.asarray(hist["counts"][s], np.float64)
    density = counts / max(counts.sum(), 1.0) / np.diff(edges)
    ax.stairs(
      density,
      edges,
      label=f"{s} (n={int(counts.sum())})",
      fill=s == meta["train_split"],
      alpha=0.45 if s == meta["train_split"] else 1.0,
      linewidth=2,
    )
  title = "Per-example mean intensity"
  x = shift["input_shift"]
  if x:
    title += f"\nKS D {x['ks_statistic']:.3f}, p {x['ks_p_value']:.2g}" + (" (flagged)" if x["flagged"] else "")
  ax.set(xlabel="per-example mean", ylabel="density", title=title)
  ax.legend()
  return fig


def _heatmap_figure(key: str, attribute: dict, names: list[str]):
  """P(label | attribute value) as colour, counts as text: a biased attribute shows as a bright diagonal-ish block."""
  split, table = shown_table(attribute)
  counts = np.asarray(table, np.float64)
  rows = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
  fig = new_figure(max(5.0, 0.6 * len(names) + 3), max(3.0, 0.45 * len(attribute["values"]) + 2), layout="constrained")
  ax = fig.add_subplot()
  image = ax.imshow(rows, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
  fig.colorbar(image, ax=ax, label="P(label | value)")
  if counts.size <= 400:
    for (r, c), n in np.ndenumerate(counts):
      ax.text(c, r, f"{int(n)}", ha="center", va="center", color="white" if rows[r, c] < 0.5 else "black", fontsize=8)
  ax.set_xticks(
    np.arange(len(names)), names if len(names) <= 40 else [""] * len(names), rotation=45 if len(names) > 10 else 0
  )
  ax.set_yticks(np.arange(len(attribute["values"])), attribute["values"])
  v = attribute["splits"][split]["cramers_v"]
  ax.set(xlabel="label", ylabel=key, title=f"'{key}' vs label ({split}): Cramér's V {fmt(v)}")
  return fig
