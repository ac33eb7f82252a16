"""Pruning poor tuning trials (`jaxflow tune --early_stop=median|asha`): a median rule or successive
halving (ASHA-style) over rungs. Not training's early stopping of one run (train.early_stopping, runbook.Monitor).

Why rungs of *separate* runs. The training loop trains a whole run per call and has no per-epoch hook
(see the README's tuning section for the hook that would allow stopping a run in flight), and a run
cannot be extended: `train.epochs` sets the length of the learning-rate schedule (cosine over the total
steps), and resuming a workdir with another config is refused. So a trial climbs rungs: rung k is a
complete, normal run of the trial's config with `train.epochs = rungs[k]` (its own, shorter schedule), in
`trials/trial_0007/rungs/epochs_003/`; the last rung is the study's budget, in `trials/trial_0007/`
itself. After each rung the trial's objective at that rung (read back from the run's summary.json,
i.e. its metrics.jsonl's final eval) is compared with the *same rung* of earlier trials -- like with
like: every value at a rung comes from the same schedule length.

- `median` (the median stopping rule, between trials): rungs (epochs/4, epochs); a trial is stopped
  after its probe run when it is worse than the median of the earlier trials' probes (once
  `min_history` of them exist).
- `asha` (successive halving, asynchronous promotion): rungs epochs / eta^k (eta = 3, at most three
  rungs, at least 1 epoch); a trial is promoted to the next rung only while it ranks in the top 1/eta
  of the values seen at its rung so far.

Cost: a promoted trial pays its short runs on top of the full one (a hook would make them free); a
stopped one pays only its short runs.
"""

from __future__ import annotations

import dataclasses

from jaxflow.config import ConfigError

RULES = ("none", "median", "asha")


@dataclasses.dataclass(frozen=True)
class Rungs:
  rule: str
  epochs: tuple[int, ...]  # epoch budget per rung; the last is the study's train.epochs
  keep: float  # fraction of a rung's values a trial must rank within to go on
  min_history: int  # earlier values needed at a rung before the rule may stop a trial

  @property
  def probes(self) -> tuple[int, ...]:
    return self.epochs[:-1]


def make_rungs(rule: str, epochs: int, *, eta: int = 3, probe_fraction: float = 0.25, min_history: int = 3) -> Rungs:
  if rule not in RULES:
    raise ConfigError(f"--early_stop={rule!r} is not known; allowed: {', '.join(RULES)}")
  if rule == "median":
    probe = max(1, round(epochs * probe_fraction))
    budgets = (probe, epochs) if probe < epochs else (epochs,)
    return Rungs(rule, budgets, 0.5, min_history)
  if rule == "asha":
    budgets = sorted({max(1, round(epochs / eta**k)) for k in range(3)})
    return Rungs(rule, tuple(budgets), 1.0 / eta, max(min_history, eta))
  return Rungs(rule, (epochs,), 1.0, 0)


def better(a: float, b: float, mode: str) -> bool:
  return a > b if mode == "max" else a < b


def keep_going(value: float, earlier: list[float], *, rungs: Rungs, mode: str) -> bool:
  """Whether a trial with `value` at a rung goes on to the next, given the earlier trials' values there.

  Going on needs fewer than `keep` x n of the n values (the earlier ones and its own) strictly better
  than it: for `keep` = 0.5, at least as good as the median.
  """
  if len(earlier) < rungs.min_history:
    return True
  n_better = sum(better(v, value, mode) for v in earlier)
  return n_better < rungs.keep * (len(earlier) + 1)
