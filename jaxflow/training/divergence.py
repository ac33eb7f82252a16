"""A run that diverges without a NaN: its training loss far above the loss it started from.

Measured on the digits MLP and CNN (Adam and SGD, lr 1e-3 to 1e6, 20 epochs; the measurement is in the
README's "What survives what"): every run that learned stayed at or below its first step's loss at every
log point, while every run with a loss above 10x its first step's ended at chance accuracy (0.10), often
with a huge but finite loss (Adam at lr=1e6: 5369). 10x leaves an order of magnitude between the two.
A run whose loss merely stays where it started (a dead network at chance) is not diverging; its summary
says "did not decrease" instead.
"""

from __future__ import annotations

import numpy as np

DIVERGENCE_FACTOR = 10.0  # train.stop_on_divergence: stop when a logged train loss exceeds 10x the first step's
NO_PROGRESS_FRACTION = 0.9  # a final train loss above 90% of the first step's: "did not decrease"


def per_step_losses(host_metrics: list[dict[str, np.ndarray]]) -> np.ndarray:
  """The mean loss of every step in `host_metrics` (per-step sums and counts), in order."""
  return np.concatenate([np.atleast_1d(m["loss"] / np.maximum(m["count"], 1)) for m in host_metrics])


def is_diverging(loss: float, initial: float | None, factor: float = DIVERGENCE_FACTOR) -> bool:
  """A logged loss above `factor` x the first step's (positive) loss."""
  return initial is not None and initial > 0 and loss > factor * initial


def trend(initial: float | None, final: float | None, peak: float | None) -> dict:
  """summary.json's `loss_trend`: the first step's loss, the last logged and the highest logged train loss,
  and the verdict: "diverged", "did not decrease" or "decreased"."""
  if initial is None or final is None or not initial > 0:
    return {"initial": initial, "final": final, "peak": peak, "verdict": "unknown"}
  if not np.isfinite(final) or is_diverging(final, initial):
    verdict = "diverged"
  elif final > NO_PROGRESS_FRACTION * initial:
    verdict = "did not decrease"
  else:
    verdict = "decreased"
  return {"initial": initial, "final": final, "peak": peak, "verdict": verdict}
