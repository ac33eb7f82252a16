"""Per-layer statistics of a trained seed, read from the workdir contract's files (no jaxflow internals).

Shared by experiments/activations and experiments/initialization (the latter imports it from here): both
train with `train.layer_stats_every=1`, which makes jaxflow's loop write, after every epoch, a metrics.jsonl
record with split "layers": `LAYER/act_mean`, `LAYER/act_std` (post-activation outputs on a fixed probe batch,
the first `batch_size` training examples) and `LAYER/grad_norm` (the norm of that layer's parameter gradient on
the same batch). Why read metrics.jsonl here rather than jaxflow.inspect's reader: a study touches jaxflow only
through its public API and its documented files, and the record format is the documented one.

The trained parameters (for "units stay identical") are read from the run's orbax checkpoint with orbax itself:
jaxflow has no public function returning a run's parameters (its reader, jaxflow.run.trained.read_params, is
internal); the checkpoint's `state` item holds the TrainState's `params` tree.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

STATS = ("act_mean", "act_std", "grad_norm")


def records(workdir: str, split: str) -> list[dict]:
  """The run's metrics.jsonl records of one split, in step order."""
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return sorted((r for r in rows if r.get("split") == split), key=lambda r: r["step"])


def eval_curve(workdir: str) -> list[float]:
  """Test accuracy after each epoch (the learning curve)."""
  return [float(r["accuracy"]) for r in records(workdir, "eval")]


def _num(v) -> float | None:
  """Finite values rounded to 4 significant digits (results.json stays readable); NaN/inf as None."""
  v = float(v)
  return float(f"{v:.4g}") if math.isfinite(v) else None


def layer_series(workdir: str) -> dict[str, dict[str, list[float | None]]]:
  """{statistic: {layer: [value after epoch 1, 2, ...]}}, layers in the model's order (dense_0, ..., head)."""
  out: dict[str, dict[str, list]] = {s: {} for s in STATS}
  for record in records(workdir, "layers"):
    for key, value in record.items():
      layer, sep, stat = key.rpartition("/")
      if sep and stat in out:
        out[stat].setdefault(layer, []).append(_num(value))
  return out


def hidden_layers(series: dict) -> list[str]:
  """The hidden layers (those with activation statistics), input side first."""
  return sorted(series["act_std"], key=lambda name: int(name.rsplit("_", 1)[-1]) if name[-1].isdigit() else 1 << 30)


def trained_params(workdir: str) -> dict:
  """{layer: {param: numpy array}} of the run's newest verified latest checkpoint, read as jaxflow reads it (a bare
  orbax restore warned that no sharding was given, in every study that called this)."""
  from jaxflow.training import checkpoints  # deferred: only the studies that look at parameters pay for orbax

  found = checkpoints.read_run_params(workdir)
  if found is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints/latest")
  return {layer: {k: np.asarray(v) for k, v in params.items()} for layer, params in found[0].items()}


def distinct_units(kernel: np.ndarray, bias: np.ndarray, rtol: float = 1e-5) -> int:
  """How many different units a Dense layer has: columns of [kernel; bias] that differ by more than rtol x the
  layer's largest weight count as different units. Constant init gives 1 (every unit the same function)."""
  columns = np.concatenate([kernel, bias[None, :]], axis=0).T  # [units, fan_in + 1]
  tol = rtol * max(float(np.abs(columns).max()), 1e-30)
  representatives: list[np.ndarray] = []
  for c in columns:
    if not any(float(np.abs(c - r).max()) <= tol for r in representatives):
      representatives.append(c)
  return len(representatives)
