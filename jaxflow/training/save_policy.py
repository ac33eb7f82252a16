"""When a run writes a checkpoint: every N epochs, and so that a kill loses little training time.

`checkpoint.every_seconds` is the most training time a kill at any instant may lose (or one epoch, when an
epoch takes longer): at an epoch's end the run saves if the *next* epoch would end more than that long
after the last save (or the run's start), judging by the epoch just finished. Saves are asynchronous
(orbax writes in the background); the time they take on the loop's own thread is counted in `seconds`
for summary.json.
"""

from __future__ import annotations

import time


class SavePolicy:
  def __init__(self, every_epochs: int, every_seconds: float | None, *, clock=time.monotonic):
    self.every_epochs, self.every_seconds, self.clock = every_epochs, every_seconds, clock
    self.last_save = self.last_epoch_end = clock()
    self.saves, self.seconds = 0, 0.0  # checkpoints written, seconds spent writing them on the loop's thread

  def epoch_ended(self, epoch: int) -> bool:
    """Whether to save after `epoch` (1-based)."""
    now = self.clock()
    epoch_seconds, self.last_epoch_end = now - self.last_epoch_end, now
    by_epochs = bool(self.every_epochs) and epoch % self.every_epochs == 0
    by_time = self.every_seconds is not None and now - self.last_save + epoch_seconds >= self.every_seconds
    return by_epochs or by_time

  def saved(self, started: float) -> None:
    """A save that began at `started` (this policy's clock) is on its way."""
    now = self.clock()
    self.saves, self.seconds, self.last_save = self.saves + 1, self.seconds + now - started, now
