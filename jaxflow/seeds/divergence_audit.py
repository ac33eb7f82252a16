"""Where two runs that should agree first part: the first checkpointed step and the first layer that differ.

`--check-determinism` says whether two runs ended bitwise equal; when they did not, this says where they
parted. Both runs' checkpoints are read at every step they share (the determinism runs keep one per epoch),
and per parameter array (a layer's kernel, bias...) the max |difference| is taken at each step. The first
step with any difference and, at that step, the first array in the model's order that differs, are named;
the per-layer differences over steps are plotted. The granularity is the checkpoint cadence (an epoch):
a difference born mid-epoch shows at that epoch's end. Differences grow with the steps once they exist
(training is chaotic), so the first step, not the last, tells which program or device choice caused them.
"""

from __future__ import annotations

import os

import jax
import numpy as np

from jaxflow.plotting import new_figure
from jaxflow.training import checkpoints
from jaxflow.training.writers import param_name


def _history(workdir: str) -> dict[int, dict[str, np.ndarray]]:
  """{step: {layer path: params}} of every latest-kind checkpoint the run kept."""
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=1, read_only=True)
  try:
    out = {}
    for step in ckpt.all_steps(checkpoints.LATEST):
      leaves = jax.tree_util.tree_flatten_with_path(ckpt.read_params(step))[0]
      out[int(step)] = {param_name(path): np.asarray(leaf, np.float64) for path, leaf in leaves}
    return out
  finally:
    ckpt.close()


def layer_differences(a_dir: str, b_dir: str) -> dict:
  """Per shared checkpoint step, the max |difference| of every parameter array; the first step and layer that
  differ (None when every shared step is bitwise equal, or there is no shared step)."""
  a, b = _history(a_dir), _history(b_dir)
  steps = sorted(set(a) & set(b))
  layers = list(a[steps[0]]) if steps else []
  diffs = {name: [float(np.max(np.abs(a[s][name] - b[s][name]))) for s in steps] for name in layers}
  differs = lambda n, i: not diffs[n][i] == 0  # noqa: E731  (a NaN difference differs too)
  first_step = next((s for i, s in enumerate(steps) if any(differs(n, i) for n in layers)), None)
  first_layer = None
  if first_step is not None:
    i = steps.index(first_step)
    first_layer = next(n for n in layers if differs(n, i))
  return {"steps": steps, "layers": diffs, "first_step": first_step, "first_layer": first_layer}


def describe(result: dict) -> str:
  """One clause for the check's statement."""
  if not result["steps"]:
    return "no checkpoint step in common to locate where they part"
  if result["first_step"] is None:
    return f"bitwise equal at every shared checkpoint ({len(result['steps'])} steps)"
  i = result["steps"].index(result["first_step"])
  size = result["layers"][result["first_layer"]][i]
  widest = max(result["layers"], key=lambda n: result["layers"][n][-1])
  return (
    f"first differs at step {result['first_step']} (checkpoints compared: {len(result['steps'])}), first in "
    f"{result['first_layer']} (max |difference| {size:.3g}); at step {result['steps'][-1]} the largest is "
    f"{widest} ({result['layers'][widest][-1]:.3g})"
  )


def plot(result: dict, title: str, path: str) -> None:
  """Max |difference| per layer over the shared steps (log scale; zeros drawn at the floor)."""
  fig = new_figure(7, 4)
  ax = fig.add_subplot(1, 1, 1)
  floor = 1e-12
  for name, values in result["layers"].items():
    ax.plot(result["steps"], np.maximum(values, floor), marker="o", label=name)
  if result["first_step"] is not None:
    first = result["first_step"]
    ax.axvline(first, color="grey", linestyle=":", label=f"first difference (step {first})")
  ax.set_yscale("log")
  ax.set_xlabel("step (checkpoint)")
  ax.set_ylabel("max |param difference| per array")
  ax.set_title(title, fontsize=9)
  ax.legend(fontsize=6)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  fig.savefig(path)
