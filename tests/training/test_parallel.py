"""Parallel modes on forced CPU devices and across processes, in subprocesses (the device count must be set
before jax is imported; see tests/training/parallel_worker.py for what each runs). The single-process runs
on 8 devices share one subprocess, the module fixture `runs` (one import, and the programs its runs have in
common compiled once); the multi-host job starts its own.

Tolerance. Parallel runs are compared with the single-device run by the max |difference| of every
parameter after 44 steps, bounded by 1e-5 (measured: 3e-8 to 1e-7). They cannot be bitwise equal: an
all-reduce adds the devices' partial gradients in another order than one device's reduction does, and
Adam's division by sqrt(v) magnifies the relative rounding of tiny gradients. The differences also grow
with the number of steps (training is chaotic: PITFALLS.md saw 4.5e-3 after 200 CNN steps), so the
comparison is made early, and final accuracies must agree to 3 decimals.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.run.validate import validate
from tests import forkserver
from tests.conftest import ROOT, config_path, latest_params, max_param_diff
from tests.reliability.runs import committed_steps

WORKER = os.path.join(ROOT, "tests", "training", "parallel_worker.py")
TOLERANCE = 1e-5
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
  """The worker's `module` task: its sections (equivalence, restore, masks, batch_divide, repeat) as each ended,
  and how it ended. Output to files, not pipes; SIGKILL past the timeout (13 + 2 + 6 trainings: ~110 s on a quiet
  machine; the equivalence runs alone took past 300 s on a loaded one): a deadlock still ends here, and
  fails only the tests whose sections had not ended."""
  root = tmp_path_factory.mktemp("parallel_runs")
  out_path, err_path = str(root / "stdout.txt"), str(root / "stderr.txt")
  # Forked from the fork server (tests/forkserver.py): the worker sets its 8 devices before any backend exists.
  process = forkserver.start([sys.executable, WORKER, "module", "8", str(root)], stdout=out_path, stderr=err_path)
  with open(out_path) as out, open(err_path) as err:
    try:
      process.wait(timeout=900)
    except subprocess.TimeoutExpired:
      pass  # killed below
    finally:  # past the timeout, or the wait interrupted (Ctrl-C, an xdist worker stopped): never left running
      if process.poll() is None:
        process.kill()
        process.wait()
    out.seek(0), err.seek(0)
    lines = [json.loads(line) for line in out.read().splitlines() if line.startswith('{"section": ')]
    ended = f"the worker ended with {process.returncode}: {err.read()[-3000:]}"
  return {"root": str(root), "sections": {line["section"]: line["result"] for line in lines}, "ended": ended}


def section(runs: dict, name: str) -> dict:
  assert name in runs["sections"], runs["ended"]
  return runs["sections"][name]


@pytest.fixture
def equivalence(runs) -> dict:
  return section(runs, "equivalence")


@pytest.mark.parametrize("mode", ["sharded", "pmap"])
@pytest.mark.parametrize("devices", [2, 4, 8])
def test_parallel_matches_single_device(equivalence, mode, devices):
  result = equivalence[f"{mode}_{devices}"]
  assert result["max_diff"] <= TOLERANCE
  assert result["devices"] == devices  # trained on that many of the 8 visible devices
  assert round(result["accuracy"], 3) == round(equivalence["single"]["accuracy"], 3)


def test_sharded_matches_single_device_with_dropout(equivalence):
  """The global batch's mask, partitioned like the activations: the same draw as one device's."""
  result = equivalence["sharded_dropout"]
  assert result["max_diff"] <= TOLERANCE and round(result["accuracy"], 3) == round(result["single_accuracy"], 3)


def test_pmap_draws_its_own_masks_per_device(equivalence):
  """pmap folds the device index into the dropout key: not the single-device masks (documented)."""
  assert equivalence["pmap_dropout"]["max_diff"] > 1e-3


@pytest.mark.parametrize("mode", ["sharded", "pmap"])
def test_chunked_conv_path_with_augmentation_matches(equivalence, mode):
  """One step per dispatch (a CNN on CPU), augmentation keyed per example: the same in every mode."""
  assert equivalence[f"cnn_{mode}"]["max_diff"] <= TOLERANCE


def test_no_two_devices_draw_the_same_dropout_mask(runs):
  """On 4 of the 8 devices: one row block per device."""
  result = section(runs, "masks")
  for mode in ("sharded", "pmap"):
    assert result[mode]["distinct_blocks"] == 4
    assert 0.45 < result[mode]["keep_rate"] < 0.55
  assert result["sharded_equals_single"]


def test_checkpoint_restores_under_another_layout(runs):
  result = section(runs, "restore")
  for case in ("sharded_then_single", "single_then_sharded"):
    assert result[case]["resumed_from"] == 22 and result[case]["steps"] == 44
    assert result[case]["devices"] == (1 if case.endswith("single") else 8)
    assert result[case]["max_diff"] <= TOLERANCE


def test_bounded_dispatch_never_deadlocks(runs):
  """Long chains of one-step multi-device programs deadlocked in 3 of 6 unbounded tries here; with
  parallel.max_in_flight=2, six 89-step runs (1437 // 16 one-step dispatches; pmap and sharded, 8 devices)
  must all finish. Six, not more: an unbounded dispatch that deadlocks half the time passes six runs once in
  64; each run costs ~1-2 CPU-s once its programs are compiled."""
  result = section(runs, "repeat")
  assert result["runs"] == 6 and result["steps"] == [89] * 6


def test_batch_must_divide_by_the_devices(runs):
  """The command line's main on 8 forced devices (in the worker, which has them): exit 2, one line, no workdir."""
  result = section(runs, "batch_divide")
  assert result["exit"] == 2 and not result["workdir_exists"]
  assert (
    "config.train.batch_size=100 must divide by the 8 devices of parallel.mode='pmap'" in result["message"]
    and "a multiple of 8" in result["message"]
  )


@pytest.mark.parametrize(
  "overrides, says",
  [
    (["parallel.mode=tpu"], "config.parallel.mode='tpu' is not known; allowed: auto, pmap, sharded, single"),
    (["parallel.num_devices=3"], "config.parallel.num_devices=3 but 1 device(s) are present"),
    (["parallel.coordinator=localhost"], "must be HOST:PORT"),
    (
      ["parallel.coordinator=127.0.0.1:1234"],
      "config.parallel.num_processes and config.parallel.process_id must be set too",
    ),
    (
      ["parallel.coordinator=127.0.0.1:1234", "parallel.num_processes=2", "parallel.process_id=2"],
      "config.parallel.process_id=2 must be in 0..1",
    ),
    (["data.name=karate", "model.name=gcn", "parallel.mode=sharded"], "not supported for graph datasets"),
  ],
)
def test_bad_parallel_settings_are_one_line_errors(overrides, says):
  from jaxflow.run.validate import check_layout

  config = jaxflow.load_config(config_path("digits_mlp.py"), overrides)
  with pytest.raises(ConfigError) as info:
    check_layout(config, validate(config))
  assert says in str(info.value) and "\n" not in str(info.value)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(task: str, devices: int, workdir: str, tmp_path, *, timeout: float) -> list[dict]:
  """Worker `task` as processes 0 and 1 of a job on 127.0.0.1, `devices` devices each: the JSON each printed
  last, once both exited 0. Output to files, not pipes: a process blocked on a full pipe that nobody drains
  would stall its peer at the next collective. SIGKILLed past `timeout` (after jax.distributed.initialize
  jax catches SIGTERM): the test fails then with each process's exit status and the end of its stderr."""
  port = _free_port()
  logs = [(str(tmp_path / f"{task}_out{i}.txt"), str(tmp_path / f"{task}_err{i}.txt")) for i in range(2)]
  procs = [  # forked from the fork server (tests/forkserver.py): the worker sets its device count before any backend
    forkserver.start(
      [sys.executable, WORKER, task, str(devices), str(i), "2", str(port), workdir], stdout=out, stderr=err
    )
    for i, (out, err) in enumerate(logs)
  ]
  deadline = time.monotonic() + timeout
  try:
    for p in procs:
      p.wait(timeout=max(deadline - time.monotonic(), 0.1))
  except subprocess.TimeoutExpired:
    pass
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  outputs, errors = [], []
  for out, err in logs:
    with open(out) as f:
      outputs.append(f.read())
    with open(err) as f:
      errors.append(f.read()[-3000:])
  assert [p.returncode for p in procs] == [0, 0], (f"timeout {timeout} s", [p.returncode for p in procs], errors)
  return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def test_two_processes_match_one_process_with_as_many_devices(tmp_path, equivalence):
  """2 processes x 2 devices on 127.0.0.1 (gloo): identical parameters in both, only process 0 writes
  the logs, and they match a 4-device single-process run to rounding (the equivalence section's sharded run
  on 4 of its 8 devices: the same config)."""
  multi_dir = str(tmp_path / "multi")
  results = _two_processes("process", 2, multi_dir, tmp_path, timeout=240)
  assert results[0]["params_sha256"] == results[1]["params_sha256"]
  assert results[0]["device"] == {
    "platform": "cpu",
    "kind": "cpu",
    "count": 4,
    "used": 4,
    "mode": "sharded",
    "process_count": 2,
  }
  assert {"metrics.jsonl", "summary.json", "tb", "config.json", "checkpoints"} <= set(os.listdir(multi_dir))
  with open(os.path.join(multi_dir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  assert sum(r["split"] == "eval" for r in records) == 2  # one writer: each epoch's record once
  reference = equivalence["sharded_4"]
  assert reference["devices"] == 4
  assert max_param_diff(latest_params(multi_dir), latest_params(reference["workdir"])) <= TOLERANCE
  assert round(results[0]["accuracy"], 3) == round(reference["accuracy"], 3)


def test_two_processes_whose_clocks_disagree_save_together(tmp_path):
  """checkpoint.every_seconds with process 0's clock 10^4 times faster than process 1's: process 0's
  decision is both processes' (parallel.main_decides), so both save after every epoch and exit 0. Before,
  each decided by its own clock: process 0 entered orbax's save (its barriers) alone while process 1 went on
  to the next epoch's collectives, and both hung (a previous audit: 197 s, then a C++ crash), killed here
  after 60 s."""
  workdir = str(tmp_path / "skewed")
  results = _two_processes("skewed", 1, workdir, tmp_path, timeout=60)
  assert results[0]["params_sha256"] == results[1]["params_sha256"]
  assert [r["saved"] for r in results] == [3, 3]  # every epoch, in both (process 1's clock alone: the last only)
  per_epoch = results[0]["steps"] // 3
  assert committed_steps(workdir) == [per_epoch, 2 * per_epoch, 3 * per_epoch]
