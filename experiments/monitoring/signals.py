"""What a monitor reads from a run's TensorBoard event files, and the alerts it would raise.

Why TensorBoard's own reader (`EventAccumulator`) and not jaxflow's metrics.jsonl: the study asks what
TensorBoard shows, so the numbers behind each alert are the ones TensorBoard itself loads from WORKDIR/tb
(scalars, the parameter histograms, the confusion image), the same events the screenshots draw.

The alerts, each a rule a person watching the dashboards applies by eye, written down so that it fires at
a step:
- divergence: a logged training loss that is not finite or above 10x the first logged one (jaxflow's own
  `train.stop_on_divergence` rule, jaxflow/training/divergence.py, applied to the logged curve);
- overfitting: the eval loss 10% above its best so far at 3 evaluations in a row while the training loss
  sits below its value at that best (the eval curve turns up while the training curve keeps falling);
- gradient spike: a logged gradient norm above 10x the first logged one (the same rule on train/grad_norm);
- stuck at chance: the eval loss within 0.05 of ln(classes) at 3 evaluations in a row (a network that predicts
  the same distribution for every input) - the plateau a diverged run often lands on.
"""

from __future__ import annotations

import math
import os

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

DIVERGENCE_FACTOR = 10.0  # jaxflow's train.stop_on_divergence factor
OVERFIT_RISE = 0.10  # eval loss this far above its best so far ...
PATIENCE = 3  # ... at this many evaluations in a row
CHANCE_TOLERANCE = 0.05  # |eval loss - ln(classes)| below this: stuck at chance
SCALARS = ("train/loss", "train/accuracy", "train/grad_norm", "train/lr", "eval/loss", "eval/accuracy")


def load(tb_dir: str) -> event_accumulator.EventAccumulator:
  """Every event of the run (size_guidance 0: keep all, not TensorBoard's default reservoir sample)."""
  guidance = {event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0, event_accumulator.IMAGES: 0}
  acc = event_accumulator.EventAccumulator(tb_dir, size_guidance=guidance)
  acc.Reload()
  return acc


def scalars(acc) -> dict[str, list[list[float]]]:
  """[[step, value], ...] per tag of SCALARS that the run logged."""
  logged = set(acc.Tags()["scalars"])
  return {tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in SCALARS if tag in logged}


def kernel_std(acc) -> list[list[float]]:
  """[[step, std], ...]: the standard deviation of all kernel weights together at each histogram step, from
  the histogram events' count, sum and sum of squares (what the Histograms dashboard draws, in one number)."""
  tags = [t for t in acc.Tags()["histograms"] if t.endswith("/kernel")]
  by_step: dict[int, list[float]] = {}
  for tag in tags:
    for e in acc.Histograms(tag):
      h = e.histogram_value
      n, s, sq = by_step.get(e.step, [0.0, 0.0, 0.0])
      by_step[e.step] = [n + h.num, s + h.sum, sq + h.sum_squares]
  out = []
  for step in sorted(by_step):
    n, s, sq = by_step[step]
    out.append([step, math.sqrt(max(sq / n - (s / n) ** 2, 0.0)) if n else float("nan")])
  return out


def divergence_step(train_loss: list[list[float]]) -> int | None:
  """The first logged step whose training loss is not finite or above 10x the first logged loss."""
  return spike_step(train_loss)


def spike_step(curve: list[list[float]], factor: float = DIVERGENCE_FACTOR) -> int | None:
  """The first logged step whose value is not finite or above `factor` x the first logged value."""
  if not curve:
    return None
  first = curve[0][1]
  for step, value in curve:
    if not math.isfinite(value) or (first > 0 and value > factor * first):
      return int(step)
  return None


def chance_step(eval_loss: list[list[float]], classes: int) -> int | None:
  """The eval step at which the eval loss has been within CHANCE_TOLERANCE of ln(classes) for PATIENCE
  evaluations in a row."""
  streak = 0
  for step, value in eval_loss:
    streak = streak + 1 if abs(value - math.log(classes)) < CHANCE_TOLERANCE else 0
    if streak >= PATIENCE:
      return int(step)
  return None


def _train_loss_at(train_loss: list[list[float]], step: float) -> float | None:
  """The last training loss logged at or before `step`."""
  before = [v for s, v in train_loss if s <= step]
  return before[-1] if before else None


def overfit_step(eval_loss: list[list[float]], train_loss: list[list[float]]) -> int | None:
  """The eval step at which the eval loss has stood OVERFIT_RISE above its best so far for PATIENCE evaluations
  in a row while the training loss is below its value at that best step (the step the alert fires, not the
  step the curve turned: a monitor needs the patience to tell a trend from one noisy evaluation)."""
  best_step, best, streak = None, math.inf, 0
  for step, value in eval_loss:
    if not math.isfinite(value):
      continue
    if value < best:
      best_step, best, streak = step, value, 0
      continue
    now, then = _train_loss_at(train_loss, step), _train_loss_at(train_loss, best_step)
    rising = value > (1 + OVERFIT_RISE) * best and now is not None and then is not None and now < then
    streak = streak + 1 if rising else 0
    if streak >= PATIENCE:
      return int(step)
  return None


def last_epoch_mean(curve: list[list[float]], steps_per_epoch: int) -> float | None:
  """The mean of the values logged in the last epoch: an epoch's figure whether the run logs every step or
  once an epoch (a single step's batch accuracy says little)."""
  if not curve:
    return None
  end = curve[-1][0]
  values = [v for s, v in curve if s > end - steps_per_epoch]
  return float(np.mean(values))


def read_run(workdir: str, summary: dict | None, classes: int = 10) -> dict:
  """One seed's monitoring record: its curves, alerts and headline numbers, from WORKDIR/tb (and, for the
  predicted classes, the final confusion matrix summary.json holds, which the confusion image draws)."""
  acc = load(os.path.join(workdir, "tb"))
  curves = scalars(acc)
  train_loss, eval_loss = curves.get("train/loss", []), curves.get("eval/loss", [])
  std = kernel_std(acc)
  steps = int(train_loss[-1][0]) if train_loss else 0
  epochs = (summary or {}).get("epochs_completed") or max(1, len(eval_loss))
  per_epoch = max(1, steps // max(1, epochs))
  best = min(eval_loss, key=lambda p: p[1]) if eval_loss else [None, None]
  final_eval = eval_loss[-1][1] if eval_loss else None
  eval_acc = curves.get("eval/accuracy", [])
  confusion = (summary or {}).get("final", {}).get("confusion")
  row = {
    "steps": steps,
    "final_test_accuracy": eval_acc[-1][1] if eval_acc else None,
    "best_test_accuracy": max(v for _, v in eval_acc) if eval_acc else None,
    "final_train_accuracy": last_epoch_mean(curves.get("train/accuracy", []), per_epoch),
    "final_train_loss": last_epoch_mean(train_loss, per_epoch),
    "final_eval_loss": final_eval,
    "best_eval_loss_step": best[0],
    "eval_loss_rise": (final_eval / best[1] - 1) if best[1] else None,
    "peak_loss_ratio": max(v for _, v in train_loss) / train_loss[0][1] if train_loss else None,
    "peak_grad_norm": max((v for _, v in curves.get("train/grad_norm", [])), default=None),
    "kernel_std_first": std[0][1] if std else None,
    "kernel_std_final": std[-1][1] if std else None,
    "divergence_step": divergence_step(train_loss),
    "overfit_step": overfit_step(eval_loss, train_loss),
    "grad_spike_step": spike_step(curves.get("train/grad_norm", [])),
    "chance_step": chance_step(eval_loss, classes),
    "predicted_classes": int(np.count_nonzero(np.asarray(confusion).sum(axis=0))) if confusion else None,
    "images": len(acc.Images("eval/confusion_matrix")) if "eval/confusion_matrix" in acc.Tags()["images"] else 0,
    "histogram_steps": len(std),
    "curves": {**curves, "kernel_std": std},
  }
  row["accuracy_gap"] = (
    row["final_train_accuracy"] - row["final_test_accuracy"]
    if row["final_train_accuracy"] is not None and row["final_test_accuracy"] is not None
    else None
  )
  return row
