"""Requests in, a few fixed batch sizes out: why `serve` compiles nothing after its warm-up.

An exported program compiles once per distinct batch size (`artifact.Model`). A server that ran each request
at its own size would compile on the request path (a latency spike per new size) and make one small call per
request. The `Batcher` instead queues the requests; one worker takes what arrived within a short window of
the oldest (or until the largest size is full), runs it as one call padded to the smallest precompiled size
that holds it (several calls when it exceeds the largest), and hands each request its own rows. The model runs
in a worker thread, so the event loop keeps accepting and parsing while it computes, and what arrives
meanwhile is the next batch: the streams of many clients become one stream of full batches.

`CompileCounter` counts XLA compilations from JAX's own monitoring event, so GET /healthz (and the test that
reads it) reports compiles that happened, not what the padding intends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

import jax
import numpy as np

from jaxflow.deploy.artifact import ArtifactError, Model

# jax._src.dispatch.BACKEND_COMPILE_EVENT: recorded around every XLA compile (or persistent-cache load) of a
# jitted program, in whichever thread compiles.
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


def parse_batch_sizes(value: str | Sequence[int]) -> tuple[int, ...]:
  """`"1,8,32,128"` -> (1, 8, 32, 128), sorted and distinct; ArtifactError naming --batch_sizes otherwise."""
  text = value if isinstance(value, str) else ",".join(map(str, value))
  try:
    sizes = sorted({int(part) for part in text.split(",") if part.strip()})
  except ValueError:
    sizes = []
  if not sizes or sizes[0] < 1:
    raise ArtifactError(f"--batch_sizes={text!r}: expected positive integers separated by commas, e.g. 1,8,32,128")
  return tuple(sizes)


def chunks(n: int, sizes: Sequence[int]) -> list[tuple[int, int]]:
  """How `n` rows run: [(rows, padded size)], full calls of the largest size then the rest padded to the
  smallest size that holds it. Every padded size is one of `sizes`."""
  largest, out = sizes[-1], []
  while n > largest:
    out.append((largest, largest))
    n -= largest
  if n:
    out.append((n, next(s for s in sizes if s >= n)))
  return out


def num_rows(x) -> int:
  return len(next(iter(x.values()))) if isinstance(x, dict) else len(x)


def _apply(fn: Callable, x):
  """`fn` on the array, or on each field of a dict input."""
  return {k: fn(v) for k, v in x.items()} if isinstance(x, dict) else fn(x)


def concatenate(xs: list):
  if isinstance(xs[0], dict):
    return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}
  return np.concatenate(xs)


def pad(x, size: int):
  """`x` with its last row repeated up to `size` rows: a real example, so padding can never make a model
  divide by zero (a zero-length sequence) where zeros would; the padded rows' outputs are dropped."""

  def one(a: np.ndarray) -> np.ndarray:
    return a if len(a) == size else np.concatenate([a, np.repeat(a[-1:], size - len(a), axis=0)])

  return _apply(one, x)


def example_batch(card: dict, size: int):
  """Zeros of the card's input shape and dtype, `size` rows: what the warm-up compiles each size with."""
  spec = card["input"]
  if spec.get("fields"):
    return {k: np.zeros([size, *f["shape"]], f["dtype"]) for k, f in spec["fields"].items()}
  return np.zeros([size, *spec["shape"]], spec["dtype"])


class CompileCounter:
  """How many XLA programs this process compiled (or loaded from the persistent cache), from JAX's
  monitoring event; `since_mark()`: how many after the warm-up."""

  def __init__(self):
    self._lock = threading.Lock()
    self.total = 0
    self.marked = 0
    jax.monitoring.register_event_duration_secs_listener(self._on_event)

  def _on_event(self, event: str, duration: float, **kwargs) -> None:
    if event == BACKEND_COMPILE_EVENT:
      with self._lock:
        self.total += 1

  def mark(self) -> None:
    self.marked = self.total

  def since_mark(self) -> int:
    return self.total - self.marked

  def close(self) -> None:
    jax.monitoring.unregister_event_duration_listener(self._on_event)


def warm_up(model: Model, sizes: Sequence[int]) -> float:
  """Runs every batch size once (compiling each); returns the seconds it took."""
  start = time.perf_counter()
  for size in sizes:
    model(example_batch(model.card, size))
  return time.perf_counter() - start


class Batcher:
  """`await batcher.submit(x)` -> the model's outputs for `x`'s rows, run batched with other requests.

  window_s > 0: a batch takes every request already queued (those that arrived while the model ran), then
  waits, until window_s after its oldest request, for as many requests as the last batch had (the clients
  that are sending now) or the largest size's worth of rows. A lone client therefore never waits for others
  that will not come, and many clients fill each batch; until the traffic is known (the first batch) it
  waits for the largest size. window_s == 0: no batching, one request per model call (still padded to a
  precompiled size). Start `run()` as one task on the loop.

  `answer(outputs) -> one item per row`, when given, runs in the model thread on a whole batch's outputs, and
  each request gets its rows' items (a list) instead of its rows of the outputs: what every request needs from
  the outputs (serve's JSON predictions) is then made in one vectorized pass per batch, not once per request
  on the event loop.
  """

  def __init__(self, model: Model, sizes: Sequence[int], window_s: float, answer: Callable | None = None):
    self.model = model
    self.answer = answer
    self.sizes = tuple(sizes)
    self.window_s = window_s
    self.stats = {"requests": 0, "examples": 0, "batches": 0, "model_calls": 0, "padded_examples": 0}
    self.in_flight = 0  # requests submitted and not yet answered
    self._expected = sizes[-1]  # requests the next batch waits for: the last batch's
    self._queue: asyncio.Queue | None = None
    # One thread: calls run one after another (XLA already uses every core within a call); the loop is free.
    self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaxflow-serve-model")

  async def submit(self, x) -> dict[str, np.ndarray] | list:
    loop = asyncio.get_running_loop()
    if self._queue is None:
      self._queue = asyncio.Queue()
    future = loop.create_future()
    self.in_flight += 1
    try:
      self._queue.put_nowait((loop.time(), x, future))
      return await future
    finally:
      self.in_flight -= 1

  async def _collect(self) -> list[tuple]:
    """The next batch: at least one queued request, then what the window and the largest size allow."""
    first = await self._queue.get()
    batch, rows = [first], num_rows(first[1])
    if self.window_s <= 0:
      return batch
    loop, deadline = asyncio.get_running_loop(), first[0] + self.window_s
    while rows < self.sizes[-1]:
      if self._queue.empty():
        if len(batch) >= self._expected:
          break
        timeout = deadline - loop.time()
        if timeout <= 0:
          break
        try:
          item = await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
          break
      else:
        item = self._queue.get_nowait()
      batch.append(item)
      rows += num_rows(item[1])
    self._expected = len(batch)
    return batch

  def _call(self, inputs: list) -> dict[str, np.ndarray] | list:
    """In the model thread: the requests' rows through the model in precompiled sizes, the padding's rows
    dropped."""
    x = concatenate(inputs) if len(inputs) > 1 else inputs[0]
    parts, start = [], 0
    for rows, size in chunks(num_rows(x), self.sizes):
      piece = _apply(lambda a, s=start, r=rows: a[s : s + r], x)
      outputs = self.model(pad(piece, size))
      parts.append({name: value[:rows] for name, value in outputs.items()})
      self.stats["model_calls"] += 1
      self.stats["padded_examples"] += size
      start += rows
    outputs = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]} if len(parts) > 1 else parts[0]
    return self.answer(outputs) if self.answer is not None else outputs

  async def run(self) -> None:
    """The worker: forever, the next batch through the model, each request's future given its rows."""
    loop = asyncio.get_running_loop()
    if self._queue is None:
      self._queue = asyncio.Queue()
    while True:
      batch = await self._collect()
      self.stats["batches"] += 1
      self.stats["requests"] += len(batch)
      try:
        outputs = await loop.run_in_executor(self._executor, self._call, [x for _, x, _ in batch])
      except Exception as e:  # a failure inside the model: the batch's requests get a 500, the server goes on
        traceback.print_exc(file=sys.stderr)
        for _, _, future in batch:
          if not future.done():
            future.set_exception(RuntimeError(f"the model failed on this batch: {type(e).__name__}: {e}"))
        continue
      start = 0
      for _, x, future in batch:
        rows = num_rows(x)
        self.stats["examples"] += rows
        if not future.done():  # a client that went away cancelled its future
          future.set_result(
            outputs[start : start + rows]
            if self.answer is not None
            else {name: value[start : start + rows] for name, value in outputs.items()}
          )
        start += rows

  def close(self) -> None:
    self._executor.shutdown(wait=True)
