"""jaxflow's training loop against a minimal hand-written flax + optax loop: same model, same work.

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/train_overhead.py              # ~2-3 min
  python benchmarks/train_overhead.py --epochs 20 --repeats 3 --cnn-repeats 0    # quicker, MLP only

Prints a Markdown table per model and writes benchmarks/results/train_overhead.json.
Target (the issue): jaxflow >= 1.1x the hand-written loop's examples/s, steady state.

What is shared. Both sides get the config of configs/digits_mlp.py (and configs/digits_cnn.py for the
optional CNN row), the model from `jaxflow.models.create_model`, the optimizer and lr schedule from
`jaxflow.training.optimizers.create_schedule/create_optimizer` (same total steps), the data from
`jaxflow.data.load_split`, the same batch size, number of epochs and steps per epoch (the last partial
batch of an epoch is dropped on both sides), and the initial parameters (jaxflow's `init` PRNG stream).
The shuffle order and the dropout keys differ (numpy permutation vs jaxflow's `data` stream), so final
accuracies agree in ballpark, not bitwise.

Hand-written side (the flax mnist example's pattern, `train_epoch` + `apply_model`): per epoch a numpy
permutation, batches sliced on the host (`images[perm]`), one `jax.jit` train step per batch
(`value_and_grad`, `apply_gradients`, per-step loss and accuracy; flax's example jits `apply_model` and
`update_model` separately, here they are fused into one step, which only makes the baseline faster),
per-epoch train loss/accuracy gathered on the host, then one jitted forward-only evaluation on the
whole test split per epoch. Metrics are kept in a Python list: no files, no checkpoints.

jaxflow side: `jaxflow.train(config, workdir, quiet=True)` in a fresh temporary workdir, i.e. everything
a real run does per epoch: train chunks (MLP: a whole epoch in one `lax.scan` dispatch on device-resident
data; CNN on CPU: one step per dispatch), train metrics to metrics.jsonl + TensorBoard, one evaluation,
parameter histograms to TensorBoard, orbax checkpoints as the config says (`checkpoint.every_epochs`,
plus every new best), the early-stopping monitor (disabled in these configs; its bookkeeping runs).

Two throughputs are reported, both steady state, compile time apart (reported on its own):
- **epoch** examples/s (the headline; the target is about this one): everything each side does per
  epoch, timed from the end of epoch 1 (whose time holds all compilation) to the end of epoch E, divided
  by E - 1. An epoch ends when its evaluation metrics are on the host: hand-written, right after its
  eval; jaxflow, when its loop writes the epoch's eval record (`MetricWriter.write(..., "eval", ...)` is
  wrapped to timestamp it, nothing else changes). So jaxflow's epoch includes the previous epoch's
  histograms and checkpoint save, which the summary's `train_seconds` does not cover.
- **train-phase** examples/s: the training steps plus the per-epoch train-metric gathering, all epochs,
  compile excluded. jaxflow: the summary's `examples_per_second` (steps * batch / `train_seconds`, which
  also covers drawing the epoch's permutation and writing train metrics); hand-written: its step loop
  (host permutation and slicing included) minus its first step. Compile: hand-written = its first train
  step + first eval call + parameter/optimizer init, timed apart; jaxflow = the summary's
  `compile_seconds` (AOT lower + compile of its init, permutation, train-chunk and eval programs).

Noise: the machine is shared, so the sides run alternately (`--repeats` times, the order flipping every
repetition) after one untimed 2-epoch warm-up of each (before the MLP, which runs first); the table gives
medians and min-max, and the ratio of medians plus the per-repetition ratios.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging as absl_logging
from flax.training import train_state

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from benchmarks import common  # noqa: E402
from jaxflow import data as data_lib  # noqa: E402
from jaxflow import models, rng  # noqa: E402
from jaxflow.training import optimizers  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "train_overhead.json")
# The distributions whose versions the results record.
VERSIONS = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint")
TARGET_RATIO = 1.1  # the target: jaxflow >= 1.1x the hand-written loop (epoch examples/s)


# --------------------------------------------------------------------------------------------------
# Shared inputs


def load_benchmark_config(config_file: str, *, epochs: int, batch_size: int | None, overrides=()):
  """The experiment's config with the benchmark's epochs (and batch size, and `--override`s, when given)."""
  overrides = [f"train.epochs={epochs}"] + ([f"train.batch_size={batch_size}"] if batch_size else []) + list(overrides)
  return jaxflow.load_config(os.path.join(ROOT, config_file), overrides)


def load_arrays(config):
  """(train images [n, h, w, c] f32, train labels [n] i32, test images, test labels, num_classes)."""
  d = config.data
  read = dict(data_dir=d.data_dir, input_feature=d.input_feature, label_feature=d.label_feature)
  train = data_lib.load_split(d.name, d.train_split, **read)
  test = data_lib.load_split(d.name, d.eval_split, **read)
  num_classes = data_lib.dataset_spec(d.name, **read).num_classes
  return train.inputs, train.labels, test.inputs, test.labels, num_classes


# --------------------------------------------------------------------------------------------------
# Hand-written side: the flax mnist example's loop


def handwritten_run(config, arrays, *, epochs: int) -> dict:
  """Trains `config`'s model for `epochs` epochs the flax-examples way; returns timings and metrics."""
  train_x, train_y, test_x, test_y, num_classes = arrays
  batch_size = config.train.batch_size
  steps_per_epoch = train_x.shape[0] // batch_size
  lr_fn = optimizers.create_schedule(
    config.optim, total_steps=steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch
  )
  tx = optimizers.create_optimizer(config.optim, lr_fn)
  model = models.create_model(config.model, output_dim=num_classes)
  streams = rng.streams(config)  # same init as jaxflow; dropout keys from its stream too
  init_start = time.perf_counter()
  params = jax.jit(model.init)(streams["init"], jnp.zeros((1, *train_x.shape[1:]), jnp.float32))["params"]
  state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
  # TrainState.create starts `step` as the Python int 0; the step returns an int32 array, so the second
  # call would retrace and compile again (flax's mnist example pays that too). Start from an array.
  state = jax.block_until_ready(state.replace(step=jnp.asarray(0, jnp.int32)))
  init_s = time.perf_counter() - init_start
  dropout_stream = streams["dropout"]

  @jax.jit
  def train_step(state, images, labels):
    def loss_fn(params):
      key = jax.random.fold_in(dropout_stream, state.step)
      logits = state.apply_fn({"params": params}, images, train=True, rngs={"dropout": key})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return state.apply_gradients(grads=grads), loss, accuracy

  @jax.jit
  def eval_step(params, images, labels):
    logits = model.apply({"params": params}, images, train=False)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.mean(jnp.argmax(logits, -1) == labels)

  np_rng = np.random.RandomState(config.seed)
  history, epoch_ends = [], []
  compile_train_s = compile_eval_s = train_s = 0.0
  for epoch in range(epochs):
    t0 = time.perf_counter()
    perms = np_rng.permutation(train_x.shape[0])[: steps_per_epoch * batch_size].reshape(steps_per_epoch, batch_size)
    losses, accuracies = [], []
    for i, perm in enumerate(perms):
      if epoch == 0 and i == 0:  # first call = trace + compile (+ one step): its time is the compile time
        tc = time.perf_counter()
        state, loss, accuracy = jax.block_until_ready(train_step(state, train_x[perm], train_y[perm]))
        compile_train_s = time.perf_counter() - tc
      else:
        state, loss, accuracy = train_step(state, train_x[perm], train_y[perm])
      losses.append(loss)
      accuracies.append(accuracy)
    train_loss, train_accuracy = (float(np.mean(v)) for v in jax.device_get((losses, accuracies)))
    train_s += time.perf_counter() - t0
    if epoch == 0:
      tc = time.perf_counter()
      test_loss, test_accuracy = jax.block_until_ready(eval_step(state.params, test_x, test_y))
      compile_eval_s = time.perf_counter() - tc
    else:
      test_loss, test_accuracy = eval_step(state.params, test_x, test_y)
    history.append(
      {
        "epoch": epoch + 1,
        "train_loss": train_loss,
        "train_accuracy": train_accuracy,
        "test_loss": float(test_loss),
        "test_accuracy": float(test_accuracy),
      }
    )
    epoch_ends.append(time.perf_counter())  # the epoch's eval metrics are on the host
  train_s -= compile_train_s
  return {
    **_throughputs(epoch_ends, train_s, steps_per_epoch * batch_size),
    # jaxflow's compile_seconds covers its init program too (params + optimizer state), so init is added.
    "compile_seconds": init_s + compile_train_s + compile_eval_s,
    "init_seconds": init_s,
    "first_train_step_seconds": compile_train_s,
    "first_eval_seconds": compile_eval_s,
    "steps": int(jax.device_get(state.step)),
    "final_test_accuracy": history[-1]["test_accuracy"],
    "final_train_loss": history[-1]["train_loss"],
    "train_step_compilations": train_step._cache_size(),
  }


def _throughputs(epoch_ends: list[float], train_seconds: float, examples_per_epoch: int) -> dict:
  """Steady-state epoch throughput from the end times of epochs 1..E: epochs 2..E (epoch 1 compiles)."""
  if len(epoch_ends) < 2:
    raise RuntimeError("need at least 2 epochs to time the steady state")
  epoch_seconds = (epoch_ends[-1] - epoch_ends[0]) / (len(epoch_ends) - 1)
  return {
    "epoch_seconds_median": statistics.median(np.diff(epoch_ends).tolist()),
    "epoch_seconds_mean": epoch_seconds,
    "epoch_examples_per_second": examples_per_epoch / epoch_seconds,
    "train_seconds": train_seconds,
    "train_examples_per_second": examples_per_epoch * len(epoch_ends) / train_seconds,
  }


# --------------------------------------------------------------------------------------------------
# jaxflow side


class _EvalClock:
  """Timestamps jaxflow's per-epoch eval record, `MetricWriter.write(step, epoch, "eval", metrics)`.

  Instrumentation only (the wrapped method runs unchanged): the loop writes that record right after the
  epoch's evaluation reached the host, so the time between two of them is one whole epoch as jaxflow
  runs it: train chunks, train-metric logs, evaluation, histograms, checkpoint save and the monitor.
  """

  def __enter__(self):
    from jaxflow.training import writers

    self._cls, self._original = writers.MetricWriter, writers.MetricWriter.write
    self.stamps: dict[int, float] = {}
    original, stamps = self._original, self.stamps

    def write(writer, step, epoch, split, *args, **kwargs):
      out = original(writer, step, epoch, split, *args, **kwargs)
      if split == "eval":
        stamps.setdefault(int(epoch), time.perf_counter())  # first record per epoch: not a final re-eval
      return out

    self._cls.write = write
    return self

  def __exit__(self, *exc):
    self._cls.write = self._original


def jaxflow_run(config) -> dict:
  """One `jaxflow.train` call in a fresh temporary workdir (checkpoints and TensorBoard logs included)."""
  epochs = config.train.epochs
  with tempfile.TemporaryDirectory(prefix="jaxflow_bench_") as workdir, _EvalClock() as clock:
    start = time.perf_counter()
    summary = jaxflow.train(config, workdir, quiet=True)
    call_s = time.perf_counter() - start
  if sorted(clock.stamps) != list(range(1, epochs + 1)):
    raise RuntimeError(
      f"expected one eval record per epoch 1..{epochs} from jaxflow's MetricWriter.write, saw epochs "
      f"{sorted(clock.stamps)}: the instrumentation hook no longer matches jaxflow's loop"
    )
  steps_per_epoch = summary["steps"] // epochs
  return {
    **_throughputs(
      [clock.stamps[e] for e in range(1, epochs + 1)],
      summary["train_seconds"],
      steps_per_epoch * config.train.batch_size,
    ),
    "jaxflow_examples_per_second": summary["examples_per_second"],
    "compile_seconds": summary["compile_seconds"],
    "steps": summary["steps"],
    "final_test_accuracy": summary["final"]["eval"]["accuracy"],
    "final_train_loss": summary["final"]["train"]["loss"],
    "steps_per_dispatch": summary["steps_per_dispatch"],
    "call_seconds": call_s,
    "wall_seconds": summary["wall_seconds"],
    "until_first_epoch_end_seconds": clock.stamps[1] - start,  # setup + compile + epoch 1
    "after_last_epoch_end_seconds": start + call_s - clock.stamps[epochs],  # last checkpoint, final eval, summary
  }


# --------------------------------------------------------------------------------------------------
# Ceiling: jaxflow's compiled epoch program with no loop around it


def ceiling_run(config) -> dict:
  """jaxflow's fused epoch program (shuffle + steps + eval) dispatched back to back, with no host work.

  No metric fetch, no logs, no checkpoints, no monitor: one `block_until_ready` per epoch, only to
  timestamp it like the other two sides. No loop design can beat this with the same step function, so
  ceiling / hand-written is the most any loop could gain over the hand-written one on this model and machine.
  """
  from jaxflow.run.assemble import device_data
  from jaxflow.run.validate import validate
  from jaxflow.training import programs as programs_lib
  from jaxflow.training import state as state_lib

  epochs, batch_size = config.train.epochs, config.train.batch_size
  problem = validate(config)
  streams = rng.streams(config)
  data = device_data(config, problem, streams)
  steps_per_epoch = problem.train_size // batch_size
  lr_fn = optimizers.create_schedule(
    config.optim, total_steps=steps_per_epoch * epochs, steps_per_epoch=steps_per_epoch
  )
  tx = optimizers.create_optimizer(config.optim, lr_fn)
  model = models.create_model(config.model, output_dim=problem.output_dim)
  progs = programs_lib.Programs(
    problem=problem, batch_size=batch_size, lr_fn=lr_fn, steps_per_epoch=steps_per_epoch, unroll=1
  )
  state = progs.init_state(state_lib.init_fn(model, tx, problem.input_structure), streams["init"])
  epoch_ends = []
  start, compile_before = time.perf_counter(), progs.compile_seconds
  for epoch in range(epochs):
    state, packed = progs.epoch(state, data, streams, epoch)
    progs.unpack_epoch(packed)  # the epoch's metrics on the host, as the loop has them
    epoch_ends.append(time.perf_counter())
  eval_metrics = progs.evaluate(state, data)
  return {
    **_throughputs(
      epoch_ends, epoch_ends[-1] - start - (progs.compile_seconds - compile_before), steps_per_epoch * batch_size
    ),
    "compile_seconds": progs.compile_seconds,
    "steps": int(jax.device_get(state.step)),
    "final_test_accuracy": eval_metrics["accuracy"],
  }


# --------------------------------------------------------------------------------------------------
# Driver and report


def bench_model(
  name: str, config_file: str, *, epochs: int, repeats: int, batch_size: int | None, overrides, warmup: bool, log
) -> dict:
  if epochs < 3:
    raise SystemExit("--epochs must be at least 3: the steady state is timed over epochs 2..E")
  config = load_benchmark_config(config_file, epochs=epochs, batch_size=batch_size, overrides=overrides)
  arrays = load_arrays(config)
  if warmup:  # untimed, 2 epochs of each side: lazy imports, thread pools, tfds and orbax first-use costs
    short = load_benchmark_config(config_file, epochs=2, batch_size=batch_size, overrides=overrides)
    handwritten_run(short, arrays, epochs=2)
    jaxflow_run(short)
  with_ceiling = not models.has_conv(config.model)  # a conv model on CPU runs chunked, not fused
  runs = {"hand-written": [], "jaxflow": []} | ({"ceiling": []} if with_ceiling else {})
  for rep in range(repeats):
    order = ["hand-written", "jaxflow"] if rep % 2 == 0 else ["jaxflow", "hand-written"]
    order += ["ceiling"] if with_ceiling else []
    for side in order:
      if side == "jaxflow":
        result = jaxflow_run(config)
      elif side == "ceiling":
        result = ceiling_run(config)
      else:
        result = handwritten_run(config, arrays, epochs=epochs)
      runs[side].append(result)
      if result.get("train_step_compilations", 1) != 1:
        log(f"[{name}] warning: the hand-written train step compiled {result['train_step_compilations']} times")
      log(
        f"[{name}] rep {rep + 1}/{repeats} {side:12s} epoch {result['epoch_examples_per_second']:9.0f} ex/s  "
        f"train-phase {result['train_examples_per_second']:9.0f} ex/s  compile {result['compile_seconds']:.2f} s  "
        f"test acc {result['final_test_accuracy']:.4f}"
      )
  return {
    "config": config_file,
    "overrides": list(overrides),
    "model": config.model.name,
    "epochs": epochs,
    "batch_size": config.train.batch_size,
    "steps_per_epoch": runs["jaxflow"][0]["steps"] // epochs,
    "runs": runs,
    "summary": summarize(runs),
  }


def _stats(values: list[float]) -> dict:
  return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def summarize(runs: dict) -> dict:
  out = {}
  for side, results in runs.items():
    out[side] = {
      "epoch_examples_per_second": _stats([r["epoch_examples_per_second"] for r in results]),
      "train_examples_per_second": _stats([r["train_examples_per_second"] for r in results]),
      "compile_seconds": _stats([r["compile_seconds"] for r in results]),
      "final_test_accuracy": _stats([r["final_test_accuracy"] for r in results]),
      "steps": results[0]["steps"],
    }
  for metric in ("epoch_examples_per_second", "train_examples_per_second"):
    jf, hw = out["jaxflow"][metric], out["hand-written"][metric]
    per_rep = [j / h for j, h in zip(jf["values"], hw["values"])]
    out[f"ratio_{metric}"] = {"of_medians": jf["median"] / hw["median"], "per_repetition": per_rep}
  if "ceiling" in out:
    ce, hw = out["ceiling"]["epoch_examples_per_second"], out["hand-written"]["epoch_examples_per_second"]
    out["ratio_ceiling_epoch_examples_per_second"] = {
      "of_medians": ce["median"] / hw["median"],
      "per_repetition": [c / h for c, h in zip(ce["values"], hw["values"])],
    }
  return out


def markdown(result: dict) -> str:
  s = result["summary"]
  lines = [
    f"### {result['model'].upper()} ({result['config']}): "
    f"{result['epochs']} epochs x {result['steps_per_epoch']} steps, "
    f"batch {result['batch_size']}, {len(result['runs']['jaxflow'])} repetitions"
    + (f", overrides {' '.join(result['overrides'])}" if result["overrides"] else ""),
    "",
    "| loop | epoch ex/s, median | min-max | train-phase ex/s, median | min-max | compile s | final test acc | steps |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
  ]
  for side in [k for k in ("hand-written", "jaxflow", "ceiling") if k in s]:
    r = s[side]
    e, t = r["epoch_examples_per_second"], r["train_examples_per_second"]
    lines.append(
      f"| {side} | {e['median']:,.0f} | {e['min']:,.0f}-{e['max']:,.0f} | {t['median']:,.0f} | "
      f"{t['min']:,.0f}-{t['max']:,.0f} | {r['compile_seconds']['median']:.2f} | "
      f"{r['final_test_accuracy']['median']:.4f} | {r['steps']} |"
    )
  for metric, label in (
    ("epoch_examples_per_second", "epoch (headline)"),
    ("train_examples_per_second", "train-phase"),
  ):
    ratio = s[f"ratio_{metric}"]
    per_rep = ", ".join(f"{v:.2f}" for v in ratio["per_repetition"])
    lines.append("")
    verdict = ""
    if metric == "epoch_examples_per_second":
      verdict = f"; target >= {TARGET_RATIO}x: {'met' if ratio['of_medians'] >= TARGET_RATIO else 'NOT met'}"
    lines.append(
      f"jaxflow / hand-written, {label}: **{ratio['of_medians']:.2f}x** "
      f"(ratio of medians; per repetition: {per_rep}){verdict}"
    )
  if "ratio_ceiling_epoch_examples_per_second" in s:
    ratio = s["ratio_ceiling_epoch_examples_per_second"]
    per_rep = ", ".join(f"{v:.2f}" for v in ratio["per_repetition"])
    lines += [
      "",
      f"ceiling / hand-written, epoch: **{ratio['of_medians']:.2f}x** "
      f"(the most any loop around this step could gain; per repetition: {per_rep})",
    ]
  return "\n".join(lines)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--epochs", type=int, default=40, help="MLP epochs per run (default 40)")
  parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions per side (default 5)")
  parser.add_argument("--batch-size", type=int, default=None, help="override the configs' batch size (MLP 128, CNN 64)")
  parser.add_argument("--cnn-epochs", type=int, default=6, help="CNN epochs per run (default 6)")
  parser.add_argument("--cnn-repeats", type=int, default=3, help="CNN repetitions; 0 skips the CNN row (default 3)")
  parser.add_argument(
    "--out", default=DEFAULT_OUT, help="JSON output path (default benchmarks/results/train_overhead.json)"
  )
  parser.add_argument(
    "--override",
    action="append",
    default=[],
    metavar="FIELD=VALUE",
    help="config override for both models and both sides, as --config.FIELD=VALUE would (repeatable); "
    "e.g. checkpoint.every_epochs=1000 to see what per-epoch checkpoints cost jaxflow",
  )
  args = parser.parse_args(argv)
  # orbax logs an absl WARNING for every checkpoint saved without metrics (every non-best epoch):
  # silenced so the table stays readable; the time to log them is negligible next to the saves.
  absl_logging.set_verbosity(absl_logging.ERROR)

  start = time.perf_counter()
  log = common.log
  device = jax.devices()[0]
  results = {
    "mlp": bench_model(
      "mlp",
      "configs/digits_mlp.py",
      epochs=args.epochs,
      repeats=args.repeats,
      batch_size=args.batch_size,
      overrides=args.override,
      warmup=True,
      log=log,
    )
  }
  if args.cnn_repeats > 0:
    results["cnn"] = bench_model(
      "cnn",
      "configs/digits_cnn.py",
      epochs=args.cnn_epochs,
      repeats=args.cnn_repeats,
      batch_size=args.batch_size,
      overrides=args.override,
      warmup=False,
      log=log,
    )
  runtime = time.perf_counter() - start

  header = (
    f"## jaxflow training loop vs hand-written flax+optax loop\n\n"
    f"{device.platform} / {device.device_kind} x{jax.device_count()}, {os.cpu_count()} CPU cores, "
    f"jax {jax.__version__}; "
    f"{datetime.datetime.now().isoformat(timespec='seconds')}; script runtime {runtime:.0f} s.\n"
    f"epoch ex/s: everything per epoch (jaxflow: + JSONL/TensorBoard logs, histograms, orbax checkpoints); "
    f"train-phase ex/s: training steps + train metrics only. Compile time excluded from both, shown apart."
  )
  report = "\n\n".join([header] + [markdown(r) for r in results.values()])
  print(report)

  payload = {
    **common.header("train_overhead", args, versions=VERSIONS),
    "runtime_seconds": runtime,
    "models": results,
    "markdown": report,
  }
  common.write_payload(args.out, payload)
  log(f"wrote {args.out}")


if __name__ == "__main__":
  main()
