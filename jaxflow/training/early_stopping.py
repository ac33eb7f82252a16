"""Early stopping and "best": one monitor of `train.monitor` decides the best checkpoint, when to stop
and which state `restore_best` gives back.

`train.early_stopping.{enabled,patience,min_delta,restore_best}`: an epoch counts as progress only when it
beats the reference by more than `min_delta`; after `patience` epochs without progress the run stops. The
best checkpoint is simply the best value seen (strictly better than every earlier one). The monitor's state
is saved in every checkpoint, so a resumed run stops where the uninterrupted one would have.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Monitor:
  """Tracks `train.monitor` across epochs: the best value (strict) and early stopping's patience.

  Early stopping counts an epoch as progress only when it beats the reference by more than
  `min_delta`; the best checkpoint is simply the best value seen.
  """

  mode: str
  min_delta: float
  best_value: float | None = None
  best_epoch: int = 0
  best_step: int = 0
  reference: float | None = None
  bad_epochs: int = 0

  def _gain(self, value: float, than: float) -> float:
    return value - than if self.mode == "max" else than - value

  def update(self, value: float, *, epoch: int, step: int) -> bool:
    """Records one epoch's value; returns whether it is a new best."""
    is_best = self.best_value is None or self._gain(value, self.best_value) > 0
    if is_best:
      self.best_value, self.best_epoch, self.best_step = value, epoch, step
    if self.reference is None or self._gain(value, self.reference) > self.min_delta:
      self.reference, self.bad_epochs = value, 0
    else:
      self.bad_epochs += 1
    return is_best


def should_stop(monitor: Monitor, *, enabled: bool, patience: int) -> bool:
  """Whether early stopping ends the run after the epoch the monitor has just seen."""
  return enabled and monitor.bad_epochs >= patience
