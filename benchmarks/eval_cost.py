"""What evaluating every epoch costs a fused epoch on this backend, and whether it can hide beside training.

Issue 17 asks jaxflow's digits MLP, evaluating every epoch, for 0.95x of the *bare* `lax.scan` epoch (no
evaluation). This measures the ceiling that leaves, in one process, the programs compiled once up front and
the contenders interleaved per round (order alternating), each 40 epochs dispatched one ahead and fetched one
behind as jaxflow's loop does:

- **bare**: the train-only epoch (shuffle + every step in one `lax.scan`): the issue's ceiling.
- **fused**: jaxflow's own epoch program (`Programs.epoch`: the same + evaluation of the epoch's state).
- **pipelined**: one program that trains epoch e and evaluates epoch e-1's state, two independent computations
  XLA could run side by side (XLA:CPU's thunk executor runs independent thunks concurrently).
- **two_threads**: the train-only program from the main thread and the eval program of the previous epoch's
  state from a second thread, as two dispatches the runtime could overlap.

Steady-state steps/s (epochs 2..E) and, per round, each contender's rate over bare's: a contender at 0.93x
says evaluation costs 7% that does not hide. `python benchmarks/eval_cost.py [--rounds 9] [--out FILE]`.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import loops  # noqa: E402
import numpy as np  # noqa: E402
import train_overhead  # noqa: E402

from jaxflow.training import programs as programs_lib  # noqa: E402
from jaxflow.training import steps  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "eval_cost.json")
CONTENDERS = ("bare", "fused", "pipelined", "two_threads")


def build(config) -> dict:
  """name -> a function running 40 epochs from the same initial state, returning each epoch's end time."""
  problem, streams, data, steps_per_epoch, lr_fn, init = loops._setup(config)
  batch_size, loss = config.train.batch_size, dict(loss_name=problem.loss, kind=problem.kind)
  step_fn = functools.partial(steps.train_step, **loss, lr_fn=lr_fn)
  eval_fn = functools.partial(steps.eval_step, **loss, num_classes=problem.num_classes)
  order = dict(num_examples=problem.train_size, steps=steps_per_epoch, batch_size=batch_size)

  def train(state, inputs, labels, data_stream, dropout_stream, epoch):
    indices = steps.epoch_indices(data_stream, epoch, **order)
    return steps.train_chunk(
      state, inputs, labels, indices, jnp.int32(0), dropout_stream, num_steps=steps_per_epoch, step_fn=step_fn
    )

  def evaluate(state, eval_batches):
    return steps.eval_chunk(state, eval_batches, eval_fn=eval_fn)

  def pipelined(state, inputs, labels, eval_batches, data_stream, dropout_stream, epoch):
    return (*train(state, inputs, labels, data_stream, dropout_stream, epoch), evaluate(state, eval_batches))

  state0 = jax.block_until_ready(jax.jit(init)(streams["init"]))
  args = (data.train_inputs, data.train_labels, streams["data"], streams["dropout"])
  train_program = jax.jit(train).lower(state0, *args, np.int32(0)).compile()
  eval_program = jax.jit(evaluate).lower(state0, data.eval_batches).compile()
  pipelined_args = (data.train_inputs, data.train_labels, data.eval_batches, *args[2:])
  pipelined_program = jax.jit(pipelined).lower(state0, *pipelined_args, np.int32(0)).compile()
  fused = programs_lib.Programs(
    problem=problem, batch_size=batch_size, lr_fn=lr_fn, steps_per_epoch=steps_per_epoch, unroll=1
  )
  fused.epoch(state0, data, streams, 0)  # compiled (and run once) before any timing
  epochs = config.train.epochs

  def one_ahead(dispatch) -> list[float]:
    """Epoch e+1 dispatched before epoch e's outputs are fetched, as jaxflow's loop does."""
    state, pending, ends = state0, None, []
    for epoch in range(epochs):
      state, outputs = dispatch(state, epoch)
      if pending is not None:
        jax.device_get(pending)
      pending = outputs
      ends.append(time.perf_counter())
    jax.device_get(pending)
    return ends

  def bare(state, epoch):
    return train_program(state, *args, np.int32(epoch))

  def fused_epoch(state, epoch):
    return fused.epoch(state, data, streams, epoch)

  def pipelined_epoch(state, epoch):
    new_state, metrics, sums = pipelined_program(state, *pipelined_args, np.int32(epoch))
    return new_state, (metrics, sums)

  def two_threads() -> list[float]:
    """The train-only program from this thread, each previous state's evaluation from a second one."""
    work, ready, done = [], threading.Semaphore(0), threading.Semaphore(0)

    def evaluator():
      while True:
        ready.acquire()
        state = work.pop(0)
        if state is None:
          return
        jax.device_get(eval_program(state, data.eval_batches))
        done.release()

    thread = threading.Thread(target=evaluator, daemon=True)
    thread.start()
    state, pending, ends = state0, None, []
    for epoch in range(epochs):
      new_state, metrics = train_program(state, *args, np.int32(epoch))
      work.append(state)
      ready.release()
      if pending is not None:
        jax.device_get(pending)
        done.acquire()  # the previous state's evaluation fetched too
      pending, state = metrics, new_state
      ends.append(time.perf_counter())
    jax.device_get(pending)
    done.acquire()
    work.append(None)
    ready.release()
    thread.join()
    return ends

  runs = {
    "bare": lambda: one_ahead(bare),
    "fused": lambda: one_ahead(fused_epoch),
    "pipelined": lambda: one_ahead(pipelined_epoch),
    "two_threads": two_threads,
  }
  rate = loops.steady_rate
  return {name: (lambda run=run: rate(run(), steps_per_epoch)["steps_per_second"]) for name, run in runs.items()}


def dispatch_concurrency(repeats: int = 7) -> dict:
  """Whether XLA:CPU runs independent programs side by side: one ~20-ms program alone, two dispatched from one
  thread, two from two threads (milliseconds, medians)."""

  @jax.jit
  def work(x):
    return jax.lax.scan(lambda c, _: (jnp.tanh(c @ c.T @ c * 0.01), None), x, None, length=30)[0]

  a, b = jnp.ones((256, 256)), jnp.full((256, 256), 2.0)
  jax.block_until_ready((work(a), work(b)))

  def two_threads():
    threads = [threading.Thread(target=lambda v=v: work(v).block_until_ready()) for v in (a, b)]
    for thread in threads:
      thread.start()
    for thread in threads:
      thread.join()

  cases = {
    "one": lambda: work(a).block_until_ready(),
    "two_from_one_thread": lambda: jax.block_until_ready((work(a), work(b))),
    "two_from_two_threads": two_threads,
  }
  times = {name: [] for name in cases}
  for _ in range(repeats):
    for name, case in cases.items():
      start = time.perf_counter()
      case()
      times[name].append(1000 * (time.perf_counter() - start))
  return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
  parser.add_argument("--epochs", type=int, default=40, help="epochs per run (default 40, the issue's)")
  parser.add_argument("--out", default=DEFAULT_OUT, help="JSON output (default results/eval_cost.json)")
  args = parser.parse_args(argv)
  config = train_overhead.load_config("configs/digits_mlp.py", epochs=args.epochs, batch_size=None)
  runs = build(config)
  for run in runs.values():  # untimed: first-use costs
    run()
  rates = {name: [] for name in CONTENDERS}
  for r in range(args.rounds):
    for name in CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]:
      rates[name].append(runs[name]())
    common.log(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()))
  summary = {}
  for name, values in rates.items():
    per_round = [a / b for a, b in zip(values, rates["bare"])]
    summary[name] = {
      "steps_per_second_median": statistics.median(values),
      "per_round_ratio_to_bare": per_round,
      "median_ratio_to_bare": statistics.median(per_round),
    }
  lines = ["| contender | steps/s, median | / bare, median of rounds | per round |", "|---|---:|---:|---|"]
  for name, s in summary.items():
    rounds = ", ".join(f"{v:.2f}" for v in s["per_round_ratio_to_bare"])
    lines.append(f"| {name} | {s['steps_per_second_median']:,.0f} | {s['median_ratio_to_bare']:.3f} | {rounds} |")
  concurrency = dispatch_concurrency()
  lines.append("")
  lines.append(
    "Independent programs on this backend (ms, medians): " + ", ".join(f"{k} {v:.1f}" for k, v in concurrency.items())
  )
  print("\n".join(lines))
  header = common.header("eval_cost", args, versions=("jax", "jaxlib", "flax", "optax"))
  payload = {**header, "rates": rates, "summary": summary, "concurrency_ms": concurrency}
  print(common.write_payload(args.out, payload))


if __name__ == "__main__":
  main()
