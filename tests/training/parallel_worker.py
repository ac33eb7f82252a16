"""Runs in a subprocess of tests/training/test_parallel.py: forced CPU devices must be set before jax is imported.

  python tests/training/parallel_worker.py TASK DEVICES [ARGS...]   -> one JSON object on the last stdout line

Tasks:
  module        what test_parallel.py's module fixture reads, in one process on 8 devices: ROOT (the runs'
                workdirs go below it). One JSON line `{"section": NAME, "result": {...}}` per section as it
                ends, in this order:
    equivalence   single vs sharded and pmap on 2, 4 and 8 devices (parallel.num_devices), and sharded
                  with dropout: max |param difference| and final accuracies; ROOT/sharded_4 is also the
                  4-device single-process run the multi-host job must match
    restore       the 8-device sharded run's checkpoint of epoch 1 resumed on 1 device, and the single run's
                  resumed on 8 (copies of the equivalence runs, their last checkpoint removed)
    masks         per-device dropout masks of one step on identical rows, pmap and sharded, on 4 devices
    batch_divide  `jaxflow train` (cli.main) with a batch of 100 in pmap mode on 8 devices: exit status, stderr
    repeat        six runs of the chunked CNN (one step per dispatch) on all devices: bounded dispatch
  process       one process of a multi-host job: PROCESS_ID NUM_PROCESSES PORT WORKDIR
  skewed        the same with checkpoint.every_seconds, process 0's save-policy clock 10^4 times faster than
                process 1's: PROCESS_ID NUM_PROCESSES PORT WORKDIR
  devices       parallel.mode=auto resolved on DEVICES devices, and `jaxflow seeds --mode=devices` (2 seeds,
                through cli.main) into WORKDIR, with the run-axis sharding its group trained under
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time

TASK, DEVICES = sys.argv[1], int(sys.argv[2])
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

import jax  # noqa: E402
import numpy as np  # noqa: E402

import jaxflow  # noqa: E402
from tests.conftest import latest_params, max_param_diff  # noqa: E402

MLP = os.path.join(ROOT, "configs", "digits_mlp.py")
CNN = os.path.join(ROOT, "configs", "digits_cnn.py")
SMALL = [
  "model.widths=(32,)",
  "train.batch_size=64",
  "train.epochs=2",
  "checkpoint.every_epochs=1",
  "train.histogram_every=1000",
]


# The runs compared with the single-device one: 44 steps (1437 // 64 = 22 per epoch), where test_parallel.py's
# tolerance is derived. checkpoint.every_epochs=1: the restore section resumes from epoch 1's checkpoint.
NO_DROPOUT = [*SMALL, "model.dropout_rate=0.0"]
SINGLE = [*NO_DROPOUT, "parallel.mode=single"]
SHARDED_8 = [*NO_DROPOUT, "parallel.mode=sharded", "parallel.num_devices=8"]
# The chunked path's CNN (a conv model on CPU: one step per dispatch). One small conv layer: what is checked is
# the path (one-step dispatches, per-example augmentation keys, the bound on programs in flight), not the model,
# and the runs are mostly compiles (two conv layers of 8 and 16 and a 128-unit dense layer cost ~5 CPU-s more
# over the 9 CNN runs). The equivalence and the repeat runs share the model, so the programs that do not depend
# on the batch (init, eval) and orbax's per-shape copies are compiled once.
CNN_MODEL = ["model.conv_features=(4,)", "model.widths=(16,)", "checkpoint.every_epochs=1"]


def run(config_file, overrides, workdir):
  summary = jaxflow.train(jaxflow.load_config(config_file, overrides), workdir, quiet=True)
  return summary, latest_params(workdir)


def equivalence(root: str):
  """(results, the reference runs' params). Every run trains in ROOT/NAME."""
  out = {}
  base, base_params = run(MLP, SINGLE, os.path.join(root, "single"))
  out["single"] = {"accuracy": base["final"]["eval"]["accuracy"], "steps": base["steps"]}
  for mode in ("sharded", "pmap"):
    for n in (2, 4, 8):
      workdir = os.path.join(root, f"{mode}_{n}")
      summary, params = run(MLP, [*NO_DROPOUT, f"parallel.mode={mode}", f"parallel.num_devices={n}"], workdir)
      out[f"{mode}_{n}"] = {
        "max_diff": max_param_diff(base_params, params),
        "accuracy": summary["final"]["eval"]["accuracy"],
        "devices": summary["device"]["used"],
        "workdir": workdir,
      }
  # With dropout (0.1): sharded draws the global batch's mask, partitioned, so it still matches single.
  dropout_base, dropout_params = run(MLP, [*SMALL, "parallel.mode=single"], os.path.join(root, "single_dropout"))
  summary, params = run(MLP, [*SMALL, "parallel.mode=sharded"], os.path.join(root, "sharded_dropout"))
  out["sharded_dropout"] = {
    "max_diff": max_param_diff(dropout_params, params),
    "accuracy": summary["final"]["eval"]["accuracy"],
    "single_accuracy": dropout_base["final"]["eval"]["accuracy"],
  }
  summary, params = run(MLP, [*SMALL, "parallel.mode=pmap"], os.path.join(root, "pmap_dropout"))
  out["pmap_dropout"] = {"max_diff": max_param_diff(dropout_params, params)}
  # The chunked path, with augmentation drawn per example: 22 steps.
  augment = "data.augment=('rotate(degrees=10, p=0.5)', 'noise(std=0.02)')"
  cnn = [*CNN_MODEL, "train.batch_size=64", "train.epochs=1", "model.dropout_rate=0.0", augment]
  _, cnn_single = run(CNN, [*cnn, "parallel.mode=single"], os.path.join(root, "cnn_single"))
  for mode in ("sharded", "pmap"):
    _, cnn_params = run(CNN, [*cnn, f"parallel.mode={mode}"], os.path.join(root, f"cnn_{mode}"))
    out[f"cnn_{mode}"] = {"max_diff": max_param_diff(cnn_single, cnn_params)}
  return out, base_params


def masks(devices: int):
  """Dropout masks of one training forward pass on 8 identical rows per device, one row block per device, on
  the first `devices` devices."""
  import flax.linen as nn
  import jax.numpy as jnp

  from jaxflow.training import parallel

  class Net(nn.Module):
    @nn.compact
    def __call__(self, x, train):
      return nn.Dropout(0.5, deterministic=not train)(x)

  out = {}
  x = jnp.ones((8 * devices, 64))
  for mode in ("sharded", "pmap"):
    layout = parallel.create_layout(mode, num_devices=devices)

    def forward(x, key, layout=layout):
      x = layout.local_batch(x)
      return Net().apply({}, x, train=True, rngs={"dropout": layout.dropout_key(key)})

    kept = (
      np.asarray(layout.jit(forward)(layout.place(x), layout.place(jax.random.key(0))) != 0)
      if mode == "sharded"
      else None
    )
    if mode == "pmap":  # each device's rows come back as its own block: gather them with a sharded output
      from jax.sharding import PartitionSpec as P

      per_device = jax.jit(jax.shard_map(forward, mesh=layout.mesh, in_specs=P(), out_specs=P("data"), check_vma=False))
      kept = np.asarray(per_device(layout.place(x), layout.place(jax.random.key(0))) != 0)
    blocks = kept.reshape(devices, -1)  # device d's rows, flattened
    out[mode] = {"distinct_blocks": len({b.tobytes() for b in blocks}), "keep_rate": float(kept.mean())}
  single = np.asarray(Net().apply({}, x, train=True, rngs={"dropout": jax.random.key(0)}) != 0)
  sharded_layout = parallel.create_layout("sharded", num_devices=devices)
  sharded = np.asarray(
    jax.jit(lambda x, k: Net().apply({}, sharded_layout.constrain(x), train=True, rngs={"dropout": k}))(
      x, jax.random.key(0)
    )
    != 0
  )
  out["sharded_equals_single"] = bool((single == sharded).all())
  return out


def restore(root: str, equivalence_out: dict, straight_params):
  """The equivalence section's 8-device sharded run resumed on 1 device from its epoch-1 checkpoint, and its
  single-device run resumed on 8: copies of their workdirs, as if each had died after epoch 1 (its last
  checkpoint removed), then the same command under the other layout (parallel.* is resume-neutral). Both must
  end where the uninterrupted single-device run ended."""
  out = {}
  steps = equivalence_out["single"]["steps"]
  for first, second, source, overrides in (
    ("sharded", "single", "sharded_8", SINGLE),
    ("single", "sharded", "single", SHARDED_8),
  ):
    workdir = os.path.join(root, f"{first}_then_{second}")
    shutil.copytree(os.path.join(root, source), workdir)
    shutil.rmtree(os.path.join(workdir, "checkpoints", "latest", str(steps)))
    summary = jaxflow.train(jaxflow.load_config(MLP, overrides), workdir, quiet=True)
    out[f"{first}_then_{second}"] = {
      "resumed_from": summary["resumed_from_step"],
      "steps": summary["steps"],
      "max_diff": max_param_diff(straight_params, latest_params(workdir)),
      "devices": summary["device"]["used"],
    }
  return out


def repeat(root: str, reps: int):
  """The pattern that deadlocked unbounded (long chains of one-step multi-device programs), repeated: each run
  is one epoch of 1437 // 16 = 89 one-step dispatches on 8 devices."""
  times, steps = [], []
  for mode in ("pmap", "sharded"):
    for i in range(reps):
      start = time.perf_counter()
      # The model the deadlocks were measured with (two conv layers, the config's dense width): not CNN_MODEL,
      # whose fewer and smaller all-reduces per step were never shown to deadlock unbounded.
      model = ["model.conv_features=(8, 16)", "checkpoint.every_epochs=1"]
      overrides = [*model, "train.batch_size=16", "train.epochs=1", "train.log_every=1000", f"parallel.mode={mode}"]
      summary, _ = run(CNN, overrides, os.path.join(root, f"repeat_{mode}_{i}"))
      times.append(time.perf_counter() - start)
      steps.append(summary["steps"])
  return {"runs": len(times), "seconds": times, "steps": steps}


def batch_divide(root: str):
  """`jaxflow train` (the command line's main, as `python -m jaxflow.cli` runs it) with a global batch of 100 in
  pmap mode on the 8 devices: its exit status, the last line it wrote to stderr, and whether a workdir appeared."""
  import contextlib
  import io

  from jaxflow import cli

  workdir, err = os.path.join(root, "never"), io.StringIO()
  argv = ["jaxflow", "train", f"--config={MLP}", "--config.train.batch_size=100", "--config.parallel.mode=pmap"]
  with contextlib.redirect_stderr(err):
    code = cli.main([*argv, f"--workdir={workdir}"])
  return {"exit": code, "message": err.getvalue().strip().splitlines()[-1], "workdir_exists": os.path.exists(workdir)}


def module(root: str):
  """The sections test_parallel.py reads, each printed as it ends: a section that hangs or crashes leaves the
  ones before it readable, and fails only the tests that need it."""

  def emit(name, result):
    print(json.dumps({"section": name, "result": result}), flush=True)

  out, straight_params = equivalence(root)
  emit("equivalence", out)
  emit("restore", restore(root, out, straight_params))
  emit("masks", masks(4))
  emit("batch_divide", batch_divide(root))
  emit("repeat", repeat(root, 3))  # last: the one that deadlocked once
  return {"section": "done", "result": {}}


def process(process_id: int, num_processes: int, port: int, workdir: str):
  multi = [
    f"parallel.coordinator=127.0.0.1:{port}",
    f"parallel.num_processes={num_processes}",
    f"parallel.process_id={process_id}",
    "parallel.init_timeout_seconds=60",
  ]
  summary = jaxflow.train(
    jaxflow.load_config(MLP, [*SMALL, "model.dropout_rate=0.0", "parallel.mode=sharded", *multi]), workdir, quiet=True
  )
  return {
    "process": process_id,
    "params_sha256": summary["params_sha256"],
    "accuracy": summary["final"]["eval"]["accuracy"],
    "device": summary["device"],
  }


# 3 epochs of a 16-unit MLP, checkpoints by time only (every 60 s of the policy's clock; keep all three).
SKEWED = [
  "model.widths=(16,)",
  "train.epochs=3",
  "train.histogram_every=1000",
  "checkpoint.every_epochs=0",
  "checkpoint.every_seconds=60",
  "checkpoint.keep=3",
  "parallel.mode=sharded",
]


def skewed(process_id: int, num_processes: int, port: int, workdir: str):
  """One process of a 2-process run whose clocks disagree: process 0's SavePolicy clock runs 10^4 times
  faster (an epoch of ~20 ms reads as ~200 s, past every_seconds), as a slow host or clock skew would make
  it, so process 0 wants a save after every epoch and process 1 (the real clock) only after the last."""
  from jaxflow.training import save_policy

  if process_id == 0:
    start = time.monotonic()
    save_policy.SavePolicy.__init__.__kwdefaults__["clock"] = lambda: start + (time.monotonic() - start) * 1e4
  multi = [
    f"parallel.coordinator=127.0.0.1:{port}",
    f"parallel.num_processes={num_processes}",
    f"parallel.process_id={process_id}",
    "parallel.init_timeout_seconds=60",
  ]
  summary = jaxflow.train(jaxflow.load_config(MLP, [*SKEWED, *multi]), workdir, quiet=True)
  saved = summary["checkpoints"]["saved"]
  return {"process": process_id, "params_sha256": summary["params_sha256"], "saved": saved, "steps": summary["steps"]}


def devices(workdir: str):
  """What parallel.mode=auto resolves to here (and what a run's validation picks), then a seeds study in
  devices mode through the command line's main, recording the sharding each trained group was given."""
  from jaxflow import cli
  from jaxflow.run.validate import check_layout, validate
  from jaxflow.seeds import study
  from jaxflow.training import parallel

  auto, one = parallel.create_layout("auto"), parallel.create_layout("auto", num_devices=1)
  config = jaxflow.load_config(MLP, SEEDS_TINY)
  run_layout = check_layout(config, validate(config))
  groups, train_group = [], study.train_group

  def spy(configs, workdirs, **kwargs):
    sharding = kwargs.get("stack_sharding")
    groups.append(
      {
        "runs": len(configs),
        "devices": None if sharding is None else sorted(d.id for d in sharding.mesh.devices.flat),
        "spec": None if sharding is None else [str(a) for a in sharding.spec],
      }
    )
    return train_group(configs, workdirs, **kwargs)

  study.train_group = spy
  argv = ["jaxflow", "seeds", f"--config={MLP}", *(f"--config.{o}" for o in SEEDS_TINY)]
  code = cli.main([*argv, "--seeds=2", "--vary=init", "--mode=devices", f"--workdir={workdir}"])
  return {
    "auto": {"mode": auto.mode, "devices": auto.num_devices},
    "auto_one": {"mode": one.mode, "devices": one.num_devices},
    "run_layout": {"mode": run_layout.mode, "devices": run_layout.num_devices},
    "seeds_exit": code,
    "groups": groups,
  }


# The tiniest seeds study: 11 steps of a 16-unit MLP per seed (test_promises_more.py trains the same sequentially).
SEEDS_TINY = ["model.widths=(16,)", "train.epochs=1", "train.batch_size=128", "train.histogram_every=1000"]


if __name__ == "__main__":
  args = sys.argv[3:]
  tasks = {
    "module": lambda: module(args[0]),
    "process": lambda: process(int(args[0]), int(args[1]), int(args[2]), args[3]),
    "skewed": lambda: skewed(int(args[0]), int(args[1]), int(args[2]), args[3]),
    "devices": lambda: devices(args[0]),
  }
  print(json.dumps(tasks[TASK]()))
