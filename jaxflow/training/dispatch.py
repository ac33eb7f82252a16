"""How the loop feeds the device: steps per dispatch, and how many dispatches may be in flight.

Auto: a whole epoch per dispatch (`lax.scan`), which removes the host's per-step overhead; but a
convolutional model on XLA:CPU runs one step per dispatch, because conv weight-gradients inside a
scan/while loop are ~30x slower there (jax-ml/jax#12868, PITFALLS.md). A user-chosen K > 1 for such a
model is fully unrolled for the same reason.
"""

from __future__ import annotations

import collections

import jax
import ml_collections

from jaxflow import models
from jaxflow.training.parallel import Layout

UNBOUNDED = 1 << 30


def dispatch_plan(config: ml_collections.ConfigDict, steps_per_epoch: int) -> tuple[int, bool | int]:
  """(steps per dispatch, scan unroll)."""
  conv_on_cpu = models.has_conv(config.model) and jax.default_backend() == "cpu"
  k = config.train.steps_per_dispatch or (1 if conv_on_cpu else steps_per_epoch)
  return min(k, steps_per_epoch), (True if conv_on_cpu else 1)


# On XLA:CPU, a state of at least this many elements is donated (see donates_state).
DONATE_ON_CPU_FROM = 1_000_000


def donates_state(state) -> bool:
  """Whether a chunk (and a host step) donates the state it trains on. On accelerators, always (one state's
  memory, not two). On XLA:CPU, only a large state: there donation made the digits CNN's one-step program
  (87k parameters, a 0.26M-element state with Adam's moments) 7% slower (3.32 vs 3.10 ms per step against the
  flax-examples loop's 3.07, interleaved; XLA copies the aliased parameters), but made a 1.3M-parameter conv
  model ~8% and a 17M-parameter one ~25% faster, the latter with ~250 MB less peak memory (a review's runs,
  `train.dispatch_ahead=False`). The same bits either way."""
  if jax.default_backend() != "cpu":
    return True
  return sum(int(getattr(leaf, "size", 0)) for leaf in jax.tree.leaves(state)) >= DONATE_ON_CPU_FROM


def chunk_sizes(steps_per_epoch: int, k: int) -> list[int]:
  """At most two distinct sizes per epoch, so at most two compilations."""
  sizes = [k] * (steps_per_epoch // k)
  return sizes + ([steps_per_epoch % k] if steps_per_epoch % k else [])


def one_device(layout: Layout) -> bool:
  """One device of one process: no collectives, so dispatches need no bound and may come from two threads."""
  return layout.num_devices == 1 and jax.process_count() == 1


def in_flight_limit(config: ml_collections.ConfigDict, layout: Layout) -> int | None:
  """Programs allowed in flight: unbounded on one device, `parallel.max_in_flight` on several."""
  return None if one_device(layout) else config.parallel.max_in_flight


class InFlight:
  """Bounds how many dispatched step programs may be queued ahead of the host.

  Measured on jax 0.10.2 with 2-8 forced CPU devices: long chains of asynchronously dispatched
  multi-device steps deadlocked in XLA:CPU's collectives in about half of the tries ("Termination
  timeout for all reduce"), while blocking after every step never did. Blocking on the oldest of the
  last `limit` dispatches keeps that many in flight: the host still runs ahead (limit 2 hides the
  dispatch latency of the next step) but the chain never grows. `limit=None`: no bound (one device).
  """

  def __init__(self, limit: int | None):
    self.limit = limit if limit is not None else UNBOUNDED
    self._queue = collections.deque()

  def add(self, outputs) -> None:
    if self.limit >= UNBOUNDED:
      return
    self._queue.append(outputs)
    while len(self._queue) >= self.limit:
      jax.block_until_ready(self._queue.popleft())
