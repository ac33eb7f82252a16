"""One trial of a study: its record (trial.json), its config, and the values read back from its runs.

A trial's workdir (`WORKDIR/trials/trial_0007/`) is a normal run workdir plus trial.json: params, status
(pending | completed | failed | stopped), objective, error, rungs. The study loop (`study_loop`) and the
report (`report`, `best_config`) both build a trial's config with `trial_config`.
"""

from __future__ import annotations

import dataclasses
import math
import os

import ml_collections

from jaxflow.tuning.overrides import apply
from jaxflow.tuning.space import Space
from jaxflow.workdir import read_json, read_metrics, write_json

STATUSES = ("pending", "completed", "failed", "stopped")


@dataclasses.dataclass
class Trial:
  index: int
  params: dict
  workdir: str
  status: str = "pending"
  value: float | None = None  # the objective in the metric's own direction (completed trials)
  error: str | None = None
  config_hash: str | None = None
  rungs: list[dict] = dataclasses.field(default_factory=list)  # {"epochs", "value", "workdir", "curve", "went_on"}
  seconds: float = 0.0
  group: int = 1  # runs in the vmapped program its last run trained in

  def save(self) -> None:
    write_json(os.path.join(self.workdir, "trial.json"), dataclasses.asdict(self), indent=2)

  @classmethod
  def load(cls, path: str) -> Trial:
    data = read_json(path)
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in fields})


def trial_config(
  config: ml_collections.ConfigDict, space: Space, params: dict, *, epochs: int | None = None
) -> ml_collections.ConfigDict:
  """The base config with one trial's overrides (and a rung's epoch budget)."""
  trial = config.copy_and_resolve_references()
  apply(trial, space.overrides(params))
  if epochs is not None:
    trial.train.epochs = epochs
  return trial


def eval_curve(workdir: str, metric: str) -> list[float]:
  """The run's `metric` (e.g. "accuracy") at every evaluation, in order, from its metrics.jsonl."""
  return [float(r[metric]) for r in read_metrics(workdir, "eval") if isinstance(r.get(metric), (int, float))]


def probe_value(curve: list[float], objective: str, mode: str) -> float | None:
  """A probe rung's value from its learning curve: the last evaluation, or the best one."""
  finite = [v for v in curve if math.isfinite(v)]
  if not curve or not finite or (objective == "final" and not math.isfinite(curve[-1])):
    return None
  if objective == "final":
    return curve[-1]
  return max(finite) if mode == "max" else min(finite)


def objective_value(summary: dict, config: ml_collections.ConfigDict, objective: str) -> float | None:
  """A finished run's objective from its summary.json: the final evaluation's metric, or the best epoch's."""
  metric = config.train.monitor.split("/")[1]
  value = summary["final"]["eval"].get(metric) if objective == "final" else summary["best"]["value"]
  return float(value) if value is not None and math.isfinite(value) else None
