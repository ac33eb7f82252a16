"""Ctrl-C and SIGTERM end a run cleanly: a checkpoint at the next step boundary, logs flushed, one line.

SIGTERM is what SLURM, Kubernetes and cloud preemption send before they kill. While a run trains, both
signals only record the request (`StopRequest`); the loop checks it at its next boundary where the logs
are whole (an epoch's end for a fused epoch; a log point or the epoch's end for one-step dispatches),
saves a checkpoint there, and raises `Interrupted`, which the CLI turns into one line and exit status
128 + the signal (130 for SIGINT, 143 for SIGTERM). A second Ctrl-C while it saves stops at once.
On several processes, all stop at the same boundary: each one's request is shared at every epoch's end.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import jax
import numpy as np
from jax.experimental import multihost_utils

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(Exception):
  """The run stopped on a signal, after saving a checkpoint at `step`."""

  def __init__(self, signum: int, step: int, epochs_done: int):
    self.signum, self.step, self.epochs_done = signum, step, epochs_done
    saved = "a checkpoint was saved there" if step else "nothing was trained yet"
    super().__init__(
      f"stopped by {signal.Signals(signum).name} at step {step} ({epochs_done} epoch(s) done); {saved}: "
      "rerun the same command to resume"
    )

  @property
  def exit_status(self) -> int:
    return 128 + self.signum


class StopRequest:
  """The signal received (or None); `shared()` agrees on it across the processes of a job."""

  def __init__(self):
    self.signum: int | None = None

  def _handle(self, signum, frame) -> None:
    if self.signum is not None and signum == signal.SIGINT:
      raise KeyboardInterrupt  # a second Ctrl-C: the user does not want to wait for the save
    self.signum = signum

  def pending(self, *, collective: bool = False) -> int | None:
    """The signal to stop on; `collective`: agreed by every process (one tiny all-gather; call it at the
    same point on every process)."""
    if not collective or jax.process_count() == 1:
      return self.signum
    signals = np.asarray(multihost_utils.process_allgather(np.int32(self.signum or 0)))
    received = signals[signals > 0]
    return int(received[0]) if received.size else None


@contextlib.contextmanager
def stop_on_signals():
  """Installs the handlers for the body (main thread only; elsewhere the signals keep their handlers)."""
  request = StopRequest()
  if threading.current_thread() is not threading.main_thread():
    yield request
    return
  previous = {s: signal.getsignal(s) for s in SIGNALS}
  for s in SIGNALS:
    signal.signal(s, request._handle)
  try:
    yield request
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)
