"""jaxflow's training loop side by side with the loops it should beat, in one process (issue 17, points 2 and 6).

  JAXFLOW_DATA_DIR=/tmp/jf_data python benchmarks/train_overhead.py           # MLP + CNN, 3 rounds, 3-4.5 min (2 cores)
  python benchmarks/train_overhead.py --quick                                 # smoke check: 5 epochs, 1 round, MLP
  python benchmarks/train_overhead.py --rounds 5 --no-cnn --override checkpoint.every_epochs=1

The configuration is the issue's: configs/digits_mlp.py (the MLP 64-256-256-10) with model.dropout_rate=0,
optim.name=adam, optim.lr=1e-3, optim.schedule=constant, optim.warmup_steps=0, train.batch_size=128,
train.epochs=40; and configs/digits_cnn.py with the same overrides but its own batch size (64) and
`--cnn-epochs`, against its own per-step ceiling (a conv model on XLA:CPU runs one step per dispatch).
`--override FIELD=VALUE` is applied after them, to every contender.

Contenders (benchmarks/loops.py says exactly what each does):
- **jaxflow**: `jaxflow.train(config, tmp_workdir, quiet=True)` with its defaults (evaluation every epoch,
  metrics.jsonl + TensorBoard, histograms, orbax checkpoints). Twice per round: with an empty persistent
  compilation cache (a fresh temporary directory per run: the first run of a config on a machine) and
  with a warm one (a directory the untimed warm-up run filled: every later run). The ratios use the warm row.
- **per-step loop**: the flax-examples pattern, host batching, one jitted step per batch, eval each epoch.
- **bare scan epoch** (the fused ceiling): jaxflow's own pure train step as one `lax.scan` per epoch,
  data on the device, no evaluation, one `block_until_ready` per epoch and no other host work.
- **scan epoch + eval**: jaxflow's fused `Programs.epoch` (the same + the per-epoch evaluation) back to back.
- **Keras 3 fit** on JAX (optional: `pip install -e ".[bench]"`; "not installed" otherwise).
The CNN rows: jaxflow (cold, warm) and the per-step loop only.

Timing. steps/s is steady state: from the end of epoch 1 (which holds every compilation) to the end of
epoch E, over E - 1 epochs. jaxflow's epoch ends when its loop writes the epoch's eval record
(`jaxflow.training.writers.MetricWriter.write(..., "eval", ...)` is wrapped to timestamp it; nothing
else changes), so its epoch includes everything the loop does on the host. Compile seconds, apart:
jaxflow: summary.json's `compile_seconds` (the epoch programs), and + its `phases.init` (the init program's
compile and run) in the "compile + init" column; per-step loop: its first train step + first eval (+ init);
the scans: AOT lower + compile of the epoch program (+ init); Keras: its first epoch minus a steady one.
The persistent compilation cache is off for every contender but jaxflow's (set through JAX's own
`jax_compilation_cache_dir`, which jaxflow keeps when set, and re-read with jax's `reset_cache()`), so
their compile times are a plain script's. In one process the second compile of anything is cheaper than
a fresh process's (tracing caches, loaded modules): benchmarks/cold_start.py times whole processes.

Noise. Every round runs every contender once, the order rotating per round, after one untimed warm-up of
each; the table gives medians and min-max over rounds, ratios of medians and per-round ratios, and the
load average at each round's start. Writes benchmarks/results/train_overhead.json (`common.write_payload`).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import tempfile
import time

import jax
from absl import logging as absl_logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
  sys.path.insert(0, ROOT)

import jaxflow  # noqa: E402
from benchmarks import common, loops  # noqa: E402
from jaxflow import data as data_lib  # noqa: E402
from jaxflow import models  # noqa: E402
from jaxflow.run import compile_cache  # noqa: E402
from jaxflow.training import writers  # noqa: E402

DEFAULT_OUT = os.path.join(ROOT, "benchmarks", "results", "train_overhead.json")
VERSIONS = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "keras")
ISSUE_OVERRIDES = (
  "model.dropout_rate=0",
  "optim.name=adam",
  "optim.lr=1e-3",
  "optim.schedule=constant",
  "optim.warmup_steps=0",
)
LABELS = {
  "jaxflow_cold": "jaxflow train, empty compilation cache",
  "jaxflow_warm": "jaxflow train, warm compilation cache",
  "per_step": "per-step loop (flax examples)",
  "scan": "bare scan epoch (fused ceiling, no eval)",
  "scan_eval": "scan epoch + eval (jaxflow's fused program, bare)",
  "keras": "Keras 3 fit on JAX",
  "jaxflow_waiting": "jaxflow train, warm cache, train.dispatch_ahead=False (each epoch's end waited for)",
}
# (numerator, denominator, target): the issue's targets on steady-state steps/s.
MLP_RATIOS = (
  ("jaxflow_warm", "scan", 0.95),
  ("jaxflow_warm", "scan_eval", None),
  ("jaxflow_warm", "per_step", 1.1),
  ("jaxflow_warm", "keras", 1.3),
  ("scan_eval", "scan", None),
  ("per_step", "scan", None),
)
CNN_RATIOS = (("jaxflow_warm", "per_step", 0.95), ("jaxflow_waiting", "per_step", None))


# --------------------------------------------------------------------------------------------------
# Inputs and the compilation cache


def load_config(config_file: str, *, epochs: int, batch_size: int | None, overrides=()):
  """The experiment's config with the issue's overrides, the benchmark's epochs and the user's overrides."""
  fields = [*ISSUE_OVERRIDES, f"train.epochs={epochs}"] + ([f"train.batch_size={batch_size}"] if batch_size else [])
  return jaxflow.load_config(os.path.join(ROOT, config_file), fields + list(overrides))


def load_arrays(config):
  """(train images [n, h, w, c] f32, train labels [n] i32, test images, test labels, num_classes)."""
  d = config.data
  read = dict(data_dir=d.data_dir, input_feature=d.input_feature, label_feature=d.label_feature)
  train = data_lib.load_split(d.name, d.train_split, **read)
  test = data_lib.load_split(d.name, d.eval_split, **read)
  num_classes = data_lib.dataset_spec(d.name, **read).num_classes
  return train.inputs, train.labels, test.inputs, test.labels, num_classes


@contextlib.contextmanager
def compilation_cache(directory: str | None):
  """JAX's persistent compilation cache in `directory` for the block (None: off), with jaxflow's settings.

  jaxflow.train keeps a cache directory set in JAX itself, so this decides where jaxflow's runs cache too.
  JAX reads the setting once per process unless its cache is reset: `reset_cache` (jax._src, no public
  equivalent) makes the next compilation read it again.
  """
  from jax._src import compilation_cache as jax_cache  # deferred: private, only here

  previous = jax.config.jax_compilation_cache_dir
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", compile_cache.MIN_COMPILE_SECONDS)
  jax_cache.reset_cache()
  try:
    yield directory
  finally:
    jax.config.update("jax_compilation_cache_dir", previous)
    jax_cache.reset_cache()


# --------------------------------------------------------------------------------------------------
# jaxflow


class _EvalClock:
  """Timestamps jaxflow's per-epoch eval record, `MetricWriter.write(step, epoch, "eval", metrics)`.

  Instrumentation only (the wrapped method runs unchanged): the loop writes that record once the epoch's
  evaluation reached the host, so the time between two of them is one whole epoch as jaxflow runs it:
  train steps, train-metric logs, evaluation, histograms, checkpoints and the monitor.
  """

  def __enter__(self):
    self._original = writers.MetricWriter.write
    self.stamps: dict[int, float] = {}
    original, stamps = self._original, self.stamps

    def write(writer, step, epoch, split, *args, **kwargs):
      out = original(writer, step, epoch, split, *args, **kwargs)
      if split == "eval":
        stamps.setdefault(int(epoch), time.perf_counter())  # first record per epoch: not a final re-eval
      return out

    writers.MetricWriter.write = write
    return self

  def __exit__(self, *exc):
    writers.MetricWriter.write = self._original


def jaxflow_run(config, cache_dir: str | None) -> dict:
  """One `jaxflow.train` call in a fresh temporary workdir; `cache_dir` None: a fresh, empty cache."""
  epochs = config.train.epochs
  with contextlib.ExitStack() as stack:
    cache_dir = cache_dir or stack.enter_context(tempfile.TemporaryDirectory(prefix="jaxflow_bench_cache_"))
    workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="jaxflow_bench_"))
    stack.enter_context(compilation_cache(cache_dir))
    clock = stack.enter_context(_EvalClock())
    start = time.perf_counter()
    summary = jaxflow.train(config, workdir, quiet=True)
    call_s = time.perf_counter() - start
  if sorted(clock.stamps) != list(range(1, epochs + 1)):
    raise RuntimeError(
      f"expected one eval record per epoch 1..{epochs} from jaxflow's MetricWriter.write, saw epochs "
      f"{sorted(clock.stamps)}: the instrumentation hook no longer matches jaxflow's loop"
    )
  phases = summary["phases"]
  return {
    **loops.steady_rate([clock.stamps[e] for e in range(1, epochs + 1)], summary["steps"] // epochs),
    "compile_seconds": summary["compile_seconds"],
    "compile_and_init_seconds": summary["compile_seconds"] + phases["init"],
    "train_phase_steps_per_second": summary["steps"] / summary["train_seconds"],
    "steps": summary["steps"],
    "final_test_accuracy": summary["final"]["eval"]["accuracy"],
    "final_train_loss": summary["final"]["train"]["loss"],
    "steps_per_dispatch": summary["steps_per_dispatch"],
    "phases": phases,
    "checkpoints": summary.get("checkpoints"),
    "call_seconds": call_s,
    "until_first_epoch_end_seconds": clock.stamps[1] - start,  # setup + compile + epoch 1
    "after_last_epoch_end_seconds": start + call_s - clock.stamps[epochs],  # last checkpoint, summary
  }


# --------------------------------------------------------------------------------------------------
# Rounds


def _waiting(config):
  config = config.copy_and_resolve_references()
  config.train.dispatch_ahead = False
  return config


def contenders(config, arrays, *, warm_dir: str, keras_missing: str | None, conv: bool) -> dict:
  """name -> a function running it once on `config` (the others with the persistent cache off)."""

  def off(fn, *args):
    with compilation_cache(None):
      return fn(*args)

  runs = {
    "jaxflow_cold": lambda c: jaxflow_run(c, None),
    "jaxflow_warm": lambda c: jaxflow_run(c, warm_dir),
    "per_step": lambda c: off(loops.per_step_run, c, arrays),
  }
  if conv:  # what running each epoch's end beside the next epoch's steps gains (loop._overlapped_epochs)
    runs["jaxflow_waiting"] = lambda c: jaxflow_run(_waiting(c), warm_dir)
  else:  # a conv model on XLA:CPU: a scan of conv steps is no ceiling (steps.train_chunk's comment)
    runs["scan"] = lambda c: off(loops.scan_run, c)
    runs["scan_eval"] = lambda c: off(loops.scan_eval_run, c)
    runs["keras"] = (lambda c: off(loops.keras_run, c, arrays)) if keras_missing is None else None
  return runs


def warm_up(runs: dict, config, short, log) -> None:
  """Untimed: every contender once on `short` (first-use costs: imports, thread pools, tfds, orbax),
  and jaxflow on the full config into the warm cache directory, so the warm runs find every program."""
  for name, run in runs.items():
    if run is not None and name != "jaxflow_cold":
      start = time.perf_counter()
      run(config if name == "jaxflow_warm" else short)
      log(f"  warm-up {name}: {time.perf_counter() - start:.1f} s")


def bench_model(name, config_file, *, epochs, rounds, batch_size, overrides, warm_dir, keras_missing, log) -> dict:
  if epochs < 3:
    raise SystemExit("--epochs must be at least 3: the steady state is timed over epochs 2..E")
  config = load_config(config_file, epochs=epochs, batch_size=batch_size, overrides=overrides)
  short = load_config(config_file, epochs=3, batch_size=batch_size, overrides=overrides)
  conv = models.has_conv(config.model)
  runs = contenders(config, load_arrays(config), warm_dir=warm_dir, keras_missing=keras_missing, conv=conv)
  log(f"[{name}] warm-up")
  warm_up(runs, config, short, log)
  names, results = list(runs), {k: [] for k in runs}
  loads, orders = [], []
  for r in range(rounds):
    order = common.rotated(names, r)
    orders.append(order)
    loads.append(os.getloadavg()[0])
    for contender in order:
      if runs[contender] is None:
        continue
      result = runs[contender](config)
      results[contender].append(result)
      log(
        f"[{name}] round {r + 1}/{rounds} {contender:13s} {result['steps_per_second']:7.0f} steps/s  "
        f"compile {result['compile_seconds']:.2f} s (+init {result['compile_and_init_seconds']:.2f} s)  "
        f"test acc {result.get('final_test_accuracy', float('nan')):.4f}"
      )
      if result.get("train_step_compilations", 1) != 1:
        log(f"[{name}] warning: the per-step loop's train step compiled {result['train_step_compilations']} times")
  steps_per_epoch = results["jaxflow_warm"][0]["steps"] // epochs
  return {
    "config": config_file,
    "overrides": [*ISSUE_OVERRIDES, *overrides],
    "model": config.model.name,
    "epochs": epochs,
    "batch_size": config.train.batch_size,
    "steps_per_epoch": steps_per_epoch,
    "round_orders": orders,
    "load_average_at_round_start": loads,
    "unavailable": {k: keras_missing for k, v in runs.items() if v is None},
    "runs": results,
    "summary": summarize(results, CNN_RATIOS if conv else MLP_RATIOS),
  }


# --------------------------------------------------------------------------------------------------
# Summary and report


def _stats(values: list[float]) -> dict:
  return {"median": statistics.median(values), "min": min(values), "max": max(values), "values": values}


def summarize(results: dict, ratios) -> dict:
  out = {"contenders": {}, "ratios": []}
  for name, runs in results.items():
    if runs:
      out["contenders"][name] = {
        key: _stats([r[key] for r in runs])
        for key in ("steps_per_second", "compile_seconds", "compile_and_init_seconds", "final_test_accuracy")
        if key in runs[0]
      }
  rates = {k: v["steps_per_second"] for k, v in out["contenders"].items()}
  for num, den, target in ratios:
    entry = {"numerator": num, "denominator": den, "target": target}
    if num in rates and den in rates:
      entry["of_medians"] = rates[num]["median"] / rates[den]["median"]
      entry["per_round"] = [a / b for a, b in zip(rates[num]["values"], rates[den]["values"])]
      # The pairs of one round ran minutes apart at most: robust to a machine whose speed drifts over the run.
      entry["median_of_rounds"] = statistics.median(entry["per_round"])
      entry["met"] = None if target is None else entry["of_medians"] >= target
    out["ratios"].append(entry)
  return out


def markdown(result: dict) -> str:
  s, unavailable = result["summary"], result["unavailable"]
  loads = ", ".join(f"{v:.1f}" for v in result["load_average_at_round_start"])
  lines = [
    f"### {result['model'].upper()} ({result['config']}): {result['epochs']} epochs x "
    f"{result['steps_per_epoch']} steps, batch {result['batch_size']}, {len(result['round_orders'])} rounds "
    f"(1-min load average at each round's start: {loads})",
    "",
    "| contender | steps/s, median | min-max | compile s | compile + init s | final test acc |",
    "|---|---:|---:|---:|---:|---:|",
  ]
  for name in result["runs"]:
    if name in unavailable:
      lines.append(f"| {LABELS[name]} | {unavailable[name]} | | | | |")
      continue
    c = s["contenders"][name]
    rate, acc = c["steps_per_second"], c.get("final_test_accuracy")
    lines.append(
      f"| {LABELS[name]} | {rate['median']:,.0f} | {rate['min']:,.0f}-{rate['max']:,.0f} | "
      f"{c['compile_seconds']['median']:.2f} | {c['compile_and_init_seconds']['median']:.2f} | "
      + (f"{acc['median']:.4f} |" if acc else "- |")
    )
  lines.append("")
  for entry in s["ratios"]:
    label = f"{entry['numerator']} / {entry['denominator']}"
    if "of_medians" not in entry:
      lines.append(f"- {label}: n/a ({unavailable.get(entry['denominator'], 'no runs')})")
      continue
    per_round = ", ".join(f"{v:.2f}" for v in entry["per_round"])
    verdict = (
      "" if entry["target"] is None else f"; target >= {entry['target']}: " + ("met" if entry["met"] else "NOT met")
    )
    paired = f"; median of the rounds' ratios {entry['median_of_rounds']:.2f}x" if "median_of_rounds" in entry else ""
    lines.append(f"- {label}: **{entry['of_medians']:.2f}x** (per round: {per_round}{paired}){verdict}")
  return "\n".join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(
    description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
  )
  parser.add_argument("--epochs", type=int, default=40, help="MLP epochs per run (default 40, the issue's)")
  parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
  parser.add_argument("--batch-size", type=int, default=None, help="override the batch size (MLP 128, CNN 64)")
  parser.add_argument("--cnn-epochs", type=int, default=20, help="CNN epochs per run (default 20)")
  parser.add_argument("--no-cnn", action="store_true", help="MLP only")
  parser.add_argument("--no-mlp", action="store_true", help="CNN only (e.g. a longer CNN run: --cnn-epochs 60)")
  parser.add_argument("--quick", action="store_true", help="smoke check: 5 epochs, 1 round, MLP only")
  parser.add_argument(
    "--out", default=None, help="JSON output (default results/train_overhead.json; --quick: a temp file)"
  )
  parser.add_argument(
    "--override",
    action="append",
    default=[],
    metavar="FIELD=VALUE",
    help="config override for every contender, after the issue's (repeatable); "
    "e.g. checkpoint.every_epochs=1 to see what per-epoch checkpoints cost jaxflow",
  )
  args = parser.parse_args(argv)
  if args.quick:
    args.epochs, args.rounds, args.no_cnn = 5, 1, True
  if args.no_mlp and args.no_cnn:  # after --quick, which is MLP only: --quick --no-mlp measured nothing
    parser.error("--no-mlp with --no-cnn or --quick (MLP only) leaves nothing to measure")
  args.out = args.out or (
    os.path.join(tempfile.gettempdir(), "train_overhead_quick.json") if args.quick else DEFAULT_OUT
  )
  return args


def main(argv=None) -> None:
  args = parse_args(argv)
  # orbax logs an absl WARNING for every checkpoint saved without metrics: silenced, the table stays readable.
  absl_logging.set_verbosity(absl_logging.ERROR)
  keras_missing = loops.keras_unavailable()  # sets KERAS_BACKEND=jax before anything imports keras
  start, log, device = time.perf_counter(), common.log, jax.devices()[0]
  benches = [] if args.no_mlp else [("mlp", "configs/digits_mlp.py", args.epochs)]
  benches += [] if args.no_cnn else [("cnn", "configs/digits_cnn.py", args.cnn_epochs)]
  results = {}
  with tempfile.TemporaryDirectory(prefix="jaxflow_bench_warm_cache_") as warm_dir:
    for name, config_file, epochs in benches:
      results[name] = bench_model(
        name,
        config_file,
        epochs=epochs,
        rounds=args.rounds,
        batch_size=args.batch_size,
        overrides=args.override,
        warm_dir=warm_dir,
        keras_missing=keras_missing,
        log=log,
      )
  runtime = time.perf_counter() - start
  header = (
    f"## jaxflow's training loop side by side (benchmarks/train_overhead.py)\n\n"
    f"{device.platform} / {device.device_kind} x{jax.device_count()}, {os.cpu_count()} CPU cores, "
    f"jax {jax.__version__}; {datetime.datetime.now().isoformat(timespec='seconds')}; script runtime "
    f"{runtime:.0f} s. Steady-state steps/s (epochs 2..E); compile apart; ratios use the warm-cache jaxflow row."
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
