"""jaxflow's input pipeline (on-device gather + augmentation) next to the digits CNN train step, in one run.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/input_pipeline.py           # ~1 min on 2 CPU cores
  python benchmarks/input_pipeline.py --repeats 3 --pipeline-calls 100 --steps 50  # quicker
  python benchmarks/input_pipeline.py --augment 'rotate(degrees=10)' --augment 'noise(std=0.03)'

Prints a Markdown table and writes benchmarks/results/input_pipeline.json.
Target (the issue): the input pipeline, augmentation on, delivers >= 3x the examples/s that the digits
CNN's train step consumes, so the pipeline is not the bottleneck.

What jaxflow's input pipeline is. A dataset is loaded whole into device memory once
(`jaxflow.run.assemble.device_data`: tfds array_record -> numpy -> device). Each epoch's
order is drawn on the device (`steps.epoch_indices`, the `Programs.indices` program), and each batch is
gathered by index and augmented on the device inside the jitted train program (`steps.train_chunk`,
which calls `jaxflow.data.augment.augment_batch` with the ops `augment.parse_augment` made from
`config.data.augment`). There is no host-side per-batch work to overlap with the step: the pipeline
runs in the step's own program, on the same device (here, the same 2 CPU cores).

What is timed (all steady state: every program is compiled and run once before timing; compile
seconds are reported apart). A measurement = `--pipeline-calls` (pipeline) or `--steps` (train step)
dispatches issued back to back as jaxflow's loop issues them, then one `jax.block_until_ready`;
examples/s = examples delivered or consumed / wall seconds. Every call gets new inputs: the step
counter advances (so every call folds a new augment key and dropout key), the offset walks through the
epoch's order, and the order itself comes from several epochs' permutations.

- (a) input pipeline: jaxflow's own `steps.train_chunk`, jitted the way `Programs` jits it, with the
  configured augment ops and, in place of `train_step`, a pass-through step that only advances the
  step counter and returns the augmented batch (so nothing is dead code and the per-call keys rotate).
  It is the gather (`inputs[idx]`, `labels[idx]`) + `augment_batch` of one batch of the config's batch
  size, exactly the code the train program runs, plus one dispatch of its own (which the real step
  does not pay separately, so (a) understates the pipeline's rate).
- (a0) the same program without augmentation: gather + dispatch only, the floor under (a).
- (p) the per-epoch permutation, `Programs.indices` (one call per epoch), as examples ordered per second.
  (a+p) combines them: 1 / (1/a + 1/p).
- (b) the digits CNN train step without augmentation, `Programs.chunk` with the dispatch plan of
  `dispatch.dispatch_plan` (on XLA:CPU one step per dispatch: conv gradients inside lax.scan are ~30x
  slower, PITFALLS.md), donating its state or not as `dispatch.donates_state` decides, as `jaxflow.train` runs it.
- (c) the same with the augment ops inside the step: what jaxflow actually runs with augmentation on.
  (c) vs (b) is augmentation's share of a real step.
- (d) host side: `device_data` (tfds read + PNG decode of both splits, float conversion, copy to
  the device), the one-time cost per run; the very first call (which may prepare the dataset) is warm-up.

The measurements are interleaved (`--repeats` rounds, the order rotated every round) because the
machine is shared; the table gives medians and min-max, and the ratio (a)/(b) per round and of medians.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from benchmarks import common  # noqa: E402
from benchmarks.input_pipeline_report import CONFIG_FILE, markdown, stats, summarize  # noqa: E402
from jaxflow import models, rng  # noqa: E402
from jaxflow.data import augment  # noqa: E402
from jaxflow.run.assemble import device_data  # noqa: E402
from jaxflow.run.validate import validate  # noqa: E402
from jaxflow.training import dispatch, optimizers, steps  # noqa: E402
from jaxflow.training import programs as programs_lib  # noqa: E402
from jaxflow.training import state as state_lib  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "input_pipeline.json")
# The distributions whose versions the results record.
VERSIONS = ("jax", "jaxlib", "flax", "dm-pix", "optax", "tensorflow-datasets", "numpy")

# Every op the augmentation module offers, with 0 < p < 1 so each one draws its coin and computes both
# branches (jnp.where): the most an op list of this length can cost. Ranges are mild, for 8x8 digits.
# (Flips do not preserve a digit's label; they are on because the issue asks for all ops, and their
# cost does not depend on p.)
DEFAULT_AUGMENT = (
  "hflip(p=0.5)",
  "vflip(p=0.5)",
  "rotate(degrees=10, p=0.5)",
  "zoom(0.9, 1.1, p=0.5)",
  "crop(padding=1, p=0.5)",
  "translate(1, 1, p=0.5)",
  "noise(std=0.03, p=0.5)",
  "brightness(max_delta=0.1, p=0.5)",
  "contrast(0.8, 1.2, p=0.5)",
  "clip()",
)
EPOCHS_OF_ORDER = 4  # distinct epoch permutations the timed calls walk through


@struct.dataclass
class _Counter:
  """The only state the pass-through step carries: `train_chunk` keys augmentation by `state.step`."""

  step: jax.Array


def _pass_through_step(state, batch, dropout_key):
  """Stands in for `train_step` in (a): returns the augmented batch, so the pipeline is all there is."""
  del dropout_key
  return state.replace(step=state.step + 1), {"inputs": batch["inputs"], "labels": batch["labels"]}


# --------------------------------------------------------------------------------------------------
# Setup: the config, the data on the device, and the programs


def load_benchmark_config(*, batch_size: int | None, augment_specs, overrides):
  config = jaxflow.load_config(os.path.join(ROOT, CONFIG_FILE), list(overrides))
  if batch_size:
    config.train.batch_size = batch_size
  config.data.augment = tuple(augment_specs)
  return config


class Bench:
  """Everything the measurements need, built once; each `measure_*` returns one timing dict."""

  def __init__(self, config, *, pipeline_calls: int, steps_count: int):
    self.config = config
    self.pipeline_calls, self.steps_count = pipeline_calls, steps_count
    t0 = time.perf_counter()
    self.problem = validate(config)
    self.streams = rng.streams(config)
    self.first_load_seconds = self._load_once()[1]  # warm-up: tfds first use (may prepare the dataset)
    self.data = device_data(config, self.problem, self.streams)
    self.train_size = self.problem.train_size
    self.eval_size = int(np.asarray(self.data.eval_batches["mask"]).sum())
    self.batch_size = config.train.batch_size
    self.steps_per_epoch = self.train_size // self.batch_size
    self.per_dispatch, self.unroll = dispatch.dispatch_plan(config, self.steps_per_epoch)
    self.ops = augment.parse_augment(tuple(config.data.augment), "config.data.augment")
    total_steps = self.steps_per_epoch * config.train.epochs
    lr_fn = optimizers.create_schedule(config.optim, total_steps=total_steps, steps_per_epoch=self.steps_per_epoch)
    tx = optimizers.create_optimizer(config.optim, lr_fn)  # one optimizer for both programs (PITFALLS: jit cache)
    model = models.create_model(config.model, output_dim=self.problem.output_dim)
    init = state_lib.init_fn(model, tx, self.problem.input_structure)
    common = dict(
      problem=self.problem,
      batch_size=self.batch_size,
      lr_fn=lr_fn,
      steps_per_epoch=self.steps_per_epoch,
      unroll=self.unroll,
      focal_gamma=config.focal_gamma,
      class_weights=self.data.class_weights,
    )
    self.programs = {
      "step": programs_lib.Programs(**common, augment_ops=()),
      "step_aug": programs_lib.Programs(**common, augment_ops=self.ops),
    }
    self.states = {name: p.init_state(init, self.streams["init"]) for name, p in self.programs.items()}
    self.compile_seconds = {"init": self.programs["step"].compile_seconds}
    # The epochs' orders, from jaxflow's own permutation program (also timed, as (p)).
    before = self.programs["step"].compile_seconds
    self.orders = [self.programs["step"].indices(self.data, self.streams, e) for e in range(EPOCHS_OF_ORDER)]
    self.compile_seconds["indices"] = self.programs["step"].compile_seconds - before
    for name, programs in self.programs.items():  # compile + one step each, untimed
      before = programs.compile_seconds
      self.states[name] = self._train(name, 1)[0]
      self.compile_seconds[name] = programs.compile_seconds - before
    # (a) and (a0): train_chunk with the pass-through step, jitted as Programs jits its chunk program.
    self.pipelines, self.counters = {}, {}
    for name, ops in (("pipeline", self.ops), ("gather", ())):
      jitted = jax.jit(
        functools.partial(steps.train_chunk, step_fn=_pass_through_step, augment_ops=ops, unroll=self.unroll),
        static_argnames="num_steps",
        donate_argnums=0,
      )
      counter = _Counter(step=jnp.asarray(0, jnp.int32))
      start = time.perf_counter()
      self.pipelines[name] = jitted.lower(counter, *self._chunk_args(0, 0), num_steps=self.per_dispatch).compile()
      self.compile_seconds[name] = time.perf_counter() - start
      self.counters[name] = counter
      self._pipeline(name, 1)
    self.setup_seconds = time.perf_counter() - t0

  def _load_once(self):
    start = time.perf_counter()
    data = device_data(self.config, self.problem, self.streams)
    jax.block_until_ready((data.train_inputs, data.train_labels, data.eval_batches))
    return data, time.perf_counter() - start

  def _offset(self, call: int) -> int:
    return (call * self.per_dispatch) % (self.steps_per_epoch - self.per_dispatch + 1)

  def _chunk_args(self, call: int, offset: int):
    order = self.orders[(call // self.steps_per_epoch) % len(self.orders)]
    d = self.data
    return (d.train_inputs, d.train_labels, order, np.int32(offset), self.streams["dropout"], self.streams["augment"])

  def _pipeline(self, name: str, calls: int, start_call: int = 0):
    counter, compiled, out = self.counters[name], self.pipelines[name], None
    for call in range(start_call, start_call + calls):
      counter, out = compiled(counter, *self._chunk_args(call, self._offset(call)))
    jax.block_until_ready((counter, out))
    self.counters[name] = counter
    return out

  def _train(self, name: str, calls: int, start_call: int = 0):
    programs, state, metrics = self.programs[name], self.states[name], None
    for call in range(start_call, start_call + calls):
      order = self.orders[(call // self.steps_per_epoch) % len(self.orders)]
      state, metrics = programs.chunk(
        state,
        data=self.data,
        epoch_indices=order,
        offset=self._offset(call),
        num_steps=self.per_dispatch,
        streams=self.streams,
      )
    jax.block_until_ready((state, metrics))
    self.states[name] = state
    return state, metrics

  # ---- measurements: each returns {"seconds", "examples", "examples_per_second", ...}

  def measure(self, what: str, rep: int) -> dict:
    start_call = 1 + rep * max(self.pipeline_calls, self.steps_count)  # new offsets, orders and keys each round
    if what in ("pipeline", "gather"):
      start = time.perf_counter()
      self._pipeline(what, self.pipeline_calls, start_call)
      seconds, calls = time.perf_counter() - start, self.pipeline_calls
      examples = calls * self.per_dispatch * self.batch_size
    elif what in ("step", "step_aug"):
      start = time.perf_counter()
      self._train(what, self.steps_count, start_call)
      seconds, calls = time.perf_counter() - start, self.steps_count
      examples = calls * self.per_dispatch * self.batch_size
    elif what == "indices":
      calls = max(1, self.pipeline_calls // 10)
      programs, out = self.programs["step"], None
      start = time.perf_counter()
      for e in range(calls):
        out = programs.indices(self.data, self.streams, EPOCHS_OF_ORDER + rep * calls + e)
      jax.block_until_ready(out)
      seconds = time.perf_counter() - start
      examples = calls * self.steps_per_epoch * self.batch_size
    elif what == "load":
      calls, (_, seconds) = 1, self._load_once()
      examples = self.train_size + self.eval_size
    else:
      raise ValueError(what)
    return {
      "seconds": seconds,
      "calls": calls,
      "examples": examples,
      "examples_per_second": examples / seconds,
      "microseconds_per_call": 1e6 * seconds / calls,
    }


class PerOp:
  """Each augment op alone, and the whole chain, as `augment_batch` on one gathered batch (no gather).

  Where the pipeline's time goes. Same timing as (a): `calls` dispatches back to back, a new key per
  call, one block_until_ready; microseconds per batch. The chain's time next to the sum of the ops'
  times shows whether chaining costs more (or less) than the parts.
  """

  def __init__(self, bench: Bench, *, calls: int):
    self.calls = calls
    self.batch = bench.data.train_inputs[: bench.batch_size]
    self.ids = jnp.arange(bench.batch_size)
    self.key = bench.streams["augment"]
    jitted = jax.jit(augment.augment_batch, static_argnames="ops")
    specs = [
      (spec if list(bench.config.data.augment).count(spec) == 1 else f"{spec} #{i}", (op,))
      for i, (spec, op) in enumerate(zip(bench.config.data.augment, bench.ops))
    ] + [("chain", bench.ops)]
    self.compiled, self.compile_seconds = {}, {}
    for spec, ops in specs:
      start = time.perf_counter()
      self.compiled[spec] = jitted.lower(self.key, self.batch, ops, self.ids).compile()
      self.compile_seconds[spec] = time.perf_counter() - start
      jax.block_until_ready(self.compiled[spec](self.key, self.batch, self.ids))
    self.names = list(self.compiled)

  def measure(self, spec: str, rep: int) -> float:
    compiled, out = self.compiled[spec], None
    keys = [rng.step_key(self.key, rep * self.calls + i) for i in range(self.calls)]  # made before the clock
    start = time.perf_counter()
    for key in keys:
      out = compiled(key, self.batch, self.ids)
    jax.block_until_ready(out)
    return 1e6 * (time.perf_counter() - start) / self.calls


MEASUREMENTS = ("pipeline", "gather", "indices", "step", "step_aug", "load")


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--repeats", type=int, default=7, help="interleaved repetitions of every measurement (default 7)")
  parser.add_argument("--batch-size", type=int, default=None, help="override the CNN config's batch size (64)")
  parser.add_argument(
    "--pipeline-calls", type=int, default=400, help="pipeline dispatches per measurement (default 400)"
  )
  parser.add_argument("--steps", type=int, default=150, help="train-step dispatches per measurement (default 150)")
  parser.add_argument(
    "--augment",
    action="append",
    default=None,
    metavar="OP",
    help="an augment op spec, repeatable, replacing the default list (all ten ops, p=0.5; see the module docstring)",
  )
  parser.add_argument(
    "--per-op-calls", type=int, default=100, help="calls per per-op measurement; 0 skips the per-op table (default 100)"
  )
  parser.add_argument(
    "--override", action="append", default=[], metavar="FIELD=VALUE", help="config override (repeatable)"
  )
  parser.add_argument(
    "--out", default=DEFAULT_OUT, help="JSON output path (default benchmarks/results/input_pipeline.json)"
  )
  args = parser.parse_args(argv)
  if args.repeats < 1 or args.pipeline_calls < 1 or args.steps < 1:
    raise SystemExit("--repeats, --pipeline-calls and --steps must be >= 1")
  return args


def run_repetitions(bench: Bench, per_op: PerOp | None, repeats: int) -> tuple[dict, dict]:
  """Every measurement once per repetition, the order rotating; (runs, per-op runs) by name."""
  runs = {name: [] for name in MEASUREMENTS}
  per_op_runs = {name: [] for name in per_op.names} if per_op else {}
  for rep in range(repeats):
    for name in common.rotated(MEASUREMENTS, rep):
      runs[name].append(bench.measure(name, rep))
    for spec in per_op_runs:
      per_op_runs[spec].append(per_op.measure(spec, rep))
    common.log(
      f"rep {rep + 1}/{repeats}: "
      + "  ".join(f"{n} {runs[n][-1]['examples_per_second']:,.0f}" for n in MEASUREMENTS)
      + " ex/s"
    )
  return runs, per_op_runs


def report_meta(args, config, bench: Bench, per_op: PerOp | None, per_op_runs: dict, runtime: float) -> dict:
  """What the Markdown report says beside the table: device, settings, calls, compile seconds, per-op stats."""
  device = jax.devices()[0]
  return {
    "timestamp": datetime.datetime.now().isoformat(timespec="seconds"),
    "device": f"{device.platform} / {device.device_kind} x{jax.device_count()}, {os.cpu_count()} CPU cores",
    "repeats": args.repeats,
    "runtime_seconds": runtime,
    "batch_size": bench.batch_size,
    "augment": list(config.data.augment),
    "steps_per_dispatch": bench.per_dispatch,
    "compile_seconds": bench.compile_seconds,
    "first_load_seconds": bench.first_load_seconds,
    "calls": {
      "pipeline": args.pipeline_calls,
      "gather": args.pipeline_calls,
      "indices": max(1, args.pipeline_calls // 10),
      "step": args.steps,
      "step_aug": args.steps,
      "load": 1,
    },
    "per_op": None
    if per_op is None
    else {
      "calls": per_op.calls,
      "names": per_op.names,
      "compile_seconds": per_op.compile_seconds,
      "summary": {spec: stats(values) for spec, values in per_op_runs.items()},
    },
  }


def main(argv=None) -> None:
  args = parse_args(argv)
  start = time.perf_counter()
  config = load_benchmark_config(
    batch_size=args.batch_size, augment_specs=args.augment or DEFAULT_AUGMENT, overrides=args.override
  )
  bench = Bench(config, pipeline_calls=args.pipeline_calls, steps_count=args.steps)
  common.log(
    f"setup (load, init, compile, warm-up) {bench.setup_seconds:.1f} s; compile s: "
    + ", ".join(f"{k} {v:.2f}" for k, v in bench.compile_seconds.items())
  )
  per_op = PerOp(bench, calls=args.per_op_calls) if args.per_op_calls > 0 else None
  runs, per_op_runs = run_repetitions(bench, per_op, args.repeats)
  runtime = time.perf_counter() - start
  summary = summarize(runs)
  meta = report_meta(args, config, bench, per_op, per_op_runs, runtime)
  report = markdown(summary, meta)
  print(report)
  payload = {
    **common.header("input_pipeline", args, versions=VERSIONS),
    "config": CONFIG_FILE,
    "augment": list(config.data.augment),
    "batch_size": bench.batch_size,
    "train_examples": bench.train_size,
    "eval_examples": bench.eval_size,
    "steps_per_epoch": bench.steps_per_epoch,
    "steps_per_dispatch": bench.per_dispatch,
    "scan_unroll": bench.unroll,
    "compile_seconds": bench.compile_seconds,
    "setup_seconds": bench.setup_seconds,
    "first_load_seconds": bench.first_load_seconds,
    "runtime_seconds": runtime,
    "runs": runs,
    "summary": summary,
    "per_op_microseconds_per_batch": meta["per_op"],
    "markdown": report,
  }
  common.write_payload(args.out, payload)
  common.log(f"wrote {args.out}")


if __name__ == "__main__":
  main()
