"""When a run writes a checkpoint: every N epochs, and so that a kill loses little training time.

`checkpoint.every_seconds` is the most training time a kill at any instant may lose (or one epoch, when an
epoch takes longer): at an epoch's end the run saves if the *next* epoch would end more than that long
after the last save (or the run's start), judging by the epoch just finished. Saves are asynchronous
(orbax writes in the background); the time they take on the loop's own thread is counted in `seconds`
for summary.json.

With several processes (jax.distributed) the decision must be the same in every one: a save is a collective
(orbax meets at barriers), and each process's clock is its own (another start time, a slower host, skew), so
a process that saved alone would wait at orbax's barrier while its peers went on to the next epoch's
collectives: a hang, then a C++ crash. `agree(decision)` turns this process's decision into the one every
process takes (process 0's: `training.parallel.main_decides`); it is called at every epoch's end when
`every_seconds` is set (the only process-local input), never otherwise, so every process calls it equally
often. This module stays a pure policy: it knows nothing of processes.
"""

from __future__ import annotations

import time


def _alone(decision: bool) -> bool:
  """One process: its own decision is everybody's."""
  return decision


class SavePolicy:
  def __init__(self, every_epochs: int, every_seconds: float | None, *, clock=time.monotonic, agree=_alone):
    self.every_epochs, self.every_seconds, self.clock, self.agree = every_epochs, every_seconds, clock, agree
    self.last_save = self.last_epoch_end = clock()
    self.saves, self.seconds = 0, 0.0  # checkpoints written, seconds spent writing them on the loop's thread

  def epoch_ended(self, epoch: int) -> bool:
    """Whether to save after `epoch` (1-based); with `every_seconds`, the decision every process agreed on."""
    now = self.clock()
    epoch_seconds, self.last_epoch_end = now - self.last_epoch_end, now
    by_epochs = bool(self.every_epochs) and epoch % self.every_epochs == 0
    if self.every_seconds is None:  # epochs alone: the same in every process, nothing to agree on
      return by_epochs
    by_time = now - self.last_save + epoch_seconds >= self.every_seconds
    return self.agree(by_epochs or by_time)

  def saved(self, started: float) -> None:
    """A save that began at `started` (this policy's clock) is on its way."""
    now = self.clock()
    self.saves, self.seconds, self.last_save = self.saves + 1, self.seconds + now - started, now
