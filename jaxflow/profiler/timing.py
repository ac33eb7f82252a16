"""The one measurement protocol: warm-up, synchronize, repeat, median with p10/p90, rotated inputs.

Every time in a profile report comes from `time_calls` (or `time_interleaved`, the same protocol with
the variants taking turns so that a noisy neighbour on a shared machine hits all of them alike):

- **warm-up**: `protocol.warmup` untimed calls first (the first call compiles, fills caches, allocates);
- **synchronized**: the timed callable must *return the arrays its work produces*; the timer itself
  calls `jax.block_until_ready` on them before it stops the clock. JAX dispatches asynchronously, so a
  function that starts device work and returns before it is done would otherwise time the dispatch
  only. The timer refuses (raises `UnsynchronizedError`) a callable that returns no jax.Array, one that
  returns only the arrays it was given, and one that leaves arrays it created still computing after the
  returned ones are ready (checked on every warm-up call and on the first timed call, outside the timed
  interval). What it cannot see: work whose results are dropped on the floor while the
  callable returns some other, already finished array; the rule "return your work" is what covers that.
- **repeats**: up to `protocol.repeats` timed calls, at least `min_repeats`, stopping early once
  `max_seconds` of timed work is reached (slow variants get fewer samples, never fewer than the minimum);
- **statistics**: median, p10, p90 (numpy's linear percentiles), min, mean, count;
- **rotated inputs**: the caller passes several distinct argument tuples and call i uses tuple
  i mod n, so the same batch is never timed twice in a row out of a warm cache. `rotations` picks n from
  the batch size: enough distinct batches to exceed `rotate_bytes` (sized past a last-level cache),
  capped at `max_rotations`. Weights are not rotated: a served model's weights are reused by every call.

`time.perf_counter` is the clock (monotonic, ns resolution on Linux).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np


class UnsynchronizedError(RuntimeError):
  """The timed work was not synchronized, so no honest time can be reported for it."""


@dataclasses.dataclass(frozen=True)
class Protocol:
  warmup: int = 3
  repeats: int = 30
  min_repeats: int = 5
  max_seconds: float = 1.5  # timed work per measurement before stopping early (after min_repeats)
  rotate_bytes: int = 64 << 20  # distinct input batches until their total size reaches this ...
  max_rotations: int = 16  # ... but at most this many
  rounds: int = 3  # interleaved rounds in time_interleaved

  def __post_init__(self):
    if self.warmup < 1:
      raise ValueError("warmup must be >= 1: the first call compiles and would be timed otherwise")
    if not 1 <= self.min_repeats <= self.repeats or self.rounds < 1:
      raise ValueError(f"need 1 <= min_repeats <= repeats and rounds >= 1, got {self}")

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {
      "statistic": "median with p10/p90 over the timed calls",
      "clock": "time.perf_counter",
      "sync": "jax.block_until_ready on the callable's returned arrays, inside the timed interval",
    }


QUICK = Protocol(warmup=1, repeats=5, min_repeats=3, max_seconds=0.3, max_rotations=4, rounds=1)


@dataclasses.dataclass
class Timing:
  """The timed calls of one measurement, in seconds."""

  seconds: list[float]
  rotations: int = 1

  @property
  def median(self) -> float:
    return float(np.median(self.seconds))

  def percentile(self, q: float) -> float:
    return float(np.percentile(self.seconds, q))

  def to_dict(self) -> dict:
    s = np.asarray(self.seconds)
    return {
      "median_s": float(np.median(s)),
      "p10_s": float(np.percentile(s, 10)),
      "p90_s": float(np.percentile(s, 90)),
      "min_s": float(s.min()),
      "mean_s": float(s.mean()),
      "n": int(s.size),
      "rotations": self.rotations,
    }


def rotations(batch_bytes: int, protocol: Protocol) -> int:
  """How many distinct input batches to rotate through (at least 2, so no call reuses the last one's)."""
  if batch_bytes <= 0:
    return min(2, protocol.max_rotations)
  return int(
    max(min(2, protocol.max_rotations), min(protocol.max_rotations, math.ceil(protocol.rotate_bytes / batch_bytes)))
  )


def tree_bytes(tree) -> int:
  return int(sum(getattr(leaf, "nbytes", None) or np.asarray(leaf).nbytes for leaf in jax.tree.leaves(tree)))


def _jax_arrays(tree) -> list[jax.Array]:
  return [leaf for leaf in jax.tree.leaves(tree) if isinstance(leaf, jax.Array)]


def _live_ids() -> set[int]:
  return {id(a) for a in jax.live_arrays()}


def _unready_new(before: set[int], returned: set[int]) -> int:
  count = 0
  for a in jax.live_arrays():
    if id(a) in before or id(a) in returned:
      continue
    try:
      if not a.is_deleted() and not a.is_ready():
        count += 1
    except RuntimeError:  # a donated or deleted buffer
      continue
  return count


def timed_call(fn: Callable, args: tuple, *, check: bool, name: str = "the timed function") -> tuple[float, object]:
  """(seconds from the call until its returned arrays are ready, the outputs). Raises
  UnsynchronizedError when the outputs say the work was not synchronized (module docstring)."""
  before = _live_ids() if check else None
  start = time.perf_counter()
  outputs = fn(*args)
  arrays = _jax_arrays(outputs)
  if not arrays:
    raise UnsynchronizedError(
      f"{name} returned no jax.Array ({type(outputs).__name__}): there is nothing to synchronize on, so its "
      "device work may still be running; return the arrays the work produces"
    )
  jax.block_until_ready(arrays)
  elapsed = time.perf_counter() - start
  if check:
    given = {id(a) for a in _jax_arrays(args)}
    if all(id(a) in given for a in arrays):
      raise UnsynchronizedError(
        f"{name} returned only arrays it was given: "
        "its own work is not among its outputs, so the timer cannot wait for it"
      )
    leaked = _unready_new(before, {id(a) for a in arrays})
    if leaked:
      raise UnsynchronizedError(
        f"{name} left {leaked} array(s) it created still computing after its returned arrays were ready: "
        "that work is not synchronized; return it"
      )
  return elapsed, outputs


def warm_up(fn: Callable, inputs: Sequence[tuple], protocol: Protocol, name: str) -> None:
  for i in range(protocol.warmup):
    timed_call(fn, inputs[i % len(inputs)], check=True, name=name)


def time_calls(
  fn: Callable, inputs: Sequence[tuple], protocol: Protocol, *, name: str = "the timed function", warm: bool = True
) -> Timing:
  """Times `fn(*inputs[i % len(inputs)])` by the protocol. `inputs`: distinct argument tuples."""
  if not inputs:
    raise ValueError("time_calls needs at least one argument tuple")
  if warm:
    warm_up(fn, inputs, protocol, name)
  seconds: list[float] = []
  total = 0.0
  while len(seconds) < protocol.repeats:
    elapsed, _ = timed_call(fn, inputs[len(seconds) % len(inputs)], check=not seconds, name=name)
    seconds.append(elapsed)
    total += elapsed
    if len(seconds) >= protocol.min_repeats and total >= protocol.max_seconds:
      break
  return Timing(seconds, rotations=len(inputs))


def time_interleaved(cases: dict[str, tuple[Callable, Sequence[tuple]]], protocol: Protocol) -> dict[str, Timing]:
  """The protocol for several variants at once: each warmed up, then `rounds` rounds in which every
  variant takes its share of the repeats (the order reversed every other round), pooled."""
  for name, (fn, inputs) in cases.items():
    warm_up(fn, inputs, protocol, name)
  names = list(cases)
  per_round = max(1, math.ceil(protocol.repeats / protocol.rounds))
  min_round = max(1, math.ceil(protocol.min_repeats / protocol.rounds))
  budget = protocol.max_seconds / protocol.rounds
  pooled: dict[str, list[float]] = {n: [] for n in names}
  for r in range(protocol.rounds):
    for name in names if r % 2 == 0 else names[::-1]:
      fn, inputs = cases[name]
      round_protocol = dataclasses.replace(
        protocol, repeats=per_round, min_repeats=min(min_round, per_round), max_seconds=budget
      )
      pooled[name] += time_calls(fn, inputs, round_protocol, name=name, warm=False).seconds
  return {n: Timing(pooled[n], rotations=len(cases[n][1])) for n in names}
