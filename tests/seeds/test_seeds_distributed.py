"""`jaxflow seeds --mode=devices` under jax.distributed: 2 real processes x 2 forced CPU devices on 127.0.0.1 (gloo)
train 8 seeds as one program whose seed axis spans the 4 devices of both processes, and each seed ends where
the same seed ends in a one-process vmapped study (tests/seeds/distributed_worker.py runs each process).

Tolerance. The seeds are compared by their final eval loss (relative 1e-4), accuracy and every parameter (max
|difference| <= 1e-5, as tests/training/test_parallel.py), not by summary.json's params_sha256: the same math
vmapped over 2 seeds per device and over 8 seeds on one device is batched differently by XLA, so the bits may
differ in the last place (measured here: params_sha256 differed for all 8 seeds, max |difference| 3e-8 to 4.5e-8,
final eval losses and accuracies equal) while every seed's training is the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import jaxflow
from jaxflow.seeds import study as seeds_lib
from jaxflow.workdir import acquire_lock
from tests import forkserver
from tests.conftest import ROOT, config_path, latest_params, max_param_diff
from tests.reliability.test_signals import _finish, _free_port  # the 2-process launcher of the multi-host tests

WORKER = os.path.join(ROOT, "tests", "seeds", "distributed_worker.py")
# test_seeds.py's study; one checkpoint per seed (at the end) and no class reports: each costs every process time
TINY = ["model.widths=(32,)", "train.epochs=2", "train.batch_size=128", "train.histogram_every=1000"]
TINY += ["checkpoint.every_epochs=0", "train.class_report_every=1000"]
SEEDS = 8
pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")]


def _start(tmp_path, workdir: str, port: int, process_ids, *flags: str) -> list[subprocess.Popen]:
  """Processes `process_ids` of a 2-process, 2-device-each job; stdout and stderr to one file each (a full
  pipe nobody drains would stall a process, and its peer with it)."""
  procs = []
  for i in process_ids:
    log = str(tmp_path / f"{os.path.basename(workdir)}_{i}.txt")
    args = [sys.executable, WORKER, "2", str(i), "2", str(port), workdir, *flags]
    # Forked from the fork server (tests/forkserver.py): the worker sets its device count before any backend.
    procs.append(forkserver.start(args, stdout=log, stderr=log))
    procs[-1].err = procs[-1].stderr  # what tests.reliability's _finish reads back
  return procs


def _last_json(output: str) -> dict:
  return json.loads([line for line in output.splitlines() if line.startswith("{")][-1])


@pytest.fixture(scope="module")
def job(tmp_path_factory):
  """The 2-process study, and the same 8 seeds vmapped in this one process (one device)."""
  tmp_path = tmp_path_factory.mktemp("seeds_distributed")
  multi, single = str(tmp_path / "multi"), str(tmp_path / "single")
  flags = [f"--config={config_path('digits_mlp.py')}", *(f"--config.{o}" for o in TINY)]
  flags += [f"--seeds={SEEDS}", "--vary=init,dropout", "--mode=devices", "--quiet"]
  done = _finish(_start(tmp_path, multi, _free_port(), (0, 1), *flags, "--config.parallel.init_timeout_seconds=60"))
  assert [code for code, _ in done] == [0, 0], [out[-3000:] for _, out in done]
  config = jaxflow.load_config(config_path("digits_mlp.py"), TINY)
  reference = seeds_lib.run_seeds(config, single, seeds=SEEDS, vary="init,dropout", mode="vmap", plots=False)
  return {"multi": multi, "outputs": [_last_json(out) for _, out in done], "reference": reference}


def _summary(seed: dict) -> dict:
  with open(os.path.join(seed["workdir"], "summary.json")) as f:
    return json.load(f)


def test_every_seed_matches_the_one_process_run(job):
  with open(os.path.join(job["multi"], "report.json")) as f:
    report = json.load(f)
  seeds, reference = report["sweeps"][0]["seeds"], job["reference"]["sweeps"][0]["seeds"]
  assert len(seeds) == len(reference) == SEEDS
  for seed, ref in zip(seeds, reference, strict=True):
    got, want = _summary(seed)["final"]["eval"], _summary(ref)["final"]["eval"]
    assert got["loss"] == pytest.approx(want["loss"], rel=1e-4)
    assert got["accuracy"] == pytest.approx(want["accuracy"], abs=1e-6)
    assert max_param_diff(latest_params(seed["workdir"]), latest_params(ref["workdir"])) <= 1e-5
  assert len({s["final"] for s in seeds}) > 1  # the seeds do differ


def test_the_report_says_devices_over_both_processes(job):
  assert all(o["exit"] == 0 and o["devices"] == 4 and o["processes"] == 2 for o in job["outputs"])
  with open(os.path.join(job["multi"], "report.json")) as f:
    mode = json.load(f)["mode"]
  assert mode["mode"] == "devices"
  assert mode["devices"] == "the seed axis over 4 devices in 2 processes, 2 seed(s) per device"
  with open(os.path.join(job["multi"], "report.md")) as f:
    assert "Devices: the seed axis over 4 devices in 2 processes" in f.read()


def test_seeds_that_do_not_divide_keep_the_largest_divisor_rule(job):
  """6 seeds: 3 devices, both processes holding some; 2 seeds: one device in each process; 5 seeds cannot
  give each process a share: one after another, each data-parallel over the 4 devices."""
  placement = job["outputs"][0]["placement"]
  assert placement["6"]["devices"] == 3 and placement["6"]["processes"] == [0, 1]
  assert (
    "3 of the 4 devices in 2 processes" in placement["6"]["note"] and "largest divisor of 6" in placement["6"]["note"]
  )
  assert placement["2"]["devices"] == 2 and placement["2"]["processes"] == [0, 1]
  assert placement["5"]["devices"] == 0 and "data-parallel over the 4 devices in 2 processes" in placement["5"]["note"]


def test_what_cannot_run_over_processes_is_refused_in_one_line(job):
  refusals = job["outputs"][1]["refusals"]
  assert refusals["vmap"].startswith("--mode=vmap stacks every seed on one device of each of the 2 processes")
  assert refusals["determinism"].startswith("--check_determinism compares reruns in one process")
  assert refusals["ray"].startswith("--executor=ray trains the seeds as tasks on its cluster; each of the 2")
  assert not any("\n" in r for r in refusals.values())


def test_a_rerun_in_one_process_finds_every_seed_finished(job):
  """The seed workdirs keep the one-run contract: the same study in one process trains nothing again."""
  stamps = [os.path.getmtime(os.path.join(job["multi"], s, "summary.json")) for s in _seed_dirs(job)]
  config = jaxflow.load_config(config_path("digits_mlp.py"), TINY)
  again = seeds_lib.run_seeds(config, job["multi"], seeds=SEEDS, vary="init,dropout", mode="devices", plots=False)
  assert [os.path.getmtime(os.path.join(job["multi"], s, "summary.json")) for s in _seed_dirs(job)] == stamps
  assert len(again["sweeps"][0]["seeds"]) == SEEDS
  assert "devices" not in again["mode"]  # nothing trained here: no placement of this one-device process claimed


def _seed_dirs(job) -> list[str]:
  with open(os.path.join(job["multi"], "report.json")) as f:
    seeds = json.load(f)["sweeps"][0]["seeds"]
  return [os.path.relpath(s["workdir"], job["multi"]) for s in seeds]


def test_a_missing_peer_is_a_one_line_error_not_a_hang(tmp_path):
  start = time.monotonic()
  flags = [f"--config={config_path('digits_mlp.py')}", "--config.parallel.init_timeout_seconds=3", "--seeds=2"]
  [(code, output)] = _finish(_start(tmp_path, str(tmp_path / "alone"), _free_port(), (0,), *flags), timeout=60)
  assert code == 2 and time.monotonic() - start < 45
  line = output.strip().splitlines()[-1]
  assert "jax.distributed did not start within parallel.init_timeout_seconds=3" in line
  assert "process 0 of 2 waited at 127.0.0.1:" in line


def test_a_study_workdir_in_use_stops_every_process_with_one_line(tmp_path):
  """Process 0 is refused the study's lock (held here, by a live process): `jaxflow seeds` returns 2 in both
  processes, each with one line, instead of process 1 waiting for process 0 in the study's first collective
  (the previous code: 30 s, then exit 1 with gloo's C++ error)."""
  workdir = str(tmp_path / "busy")
  flags = [f"--config={config_path('digits_mlp.py')}", *(f"--config.{o}" for o in TINY), "--seeds=2", "--quiet"]
  with acquire_lock(workdir, command="a test holding the study"):
    procs = _start(tmp_path, workdir, _free_port(), (0, 1), *flags, "--config.parallel.init_timeout_seconds=60")
    done = _finish(procs, timeout=90)
  assert [code for code, _ in done] == [0, 0], [out[-2000:] for _, out in done]  # the worker script ended
  assert [_last_json(out)["exit"] for _, out in done] == [2, 2]  # jaxflow seeds' status in each process
  errors = [[line for line in out.splitlines() if line.startswith("jaxflow")] for _, out in done]
  assert len(errors[0]) == 1 and f"workdir {workdir} is in use by a test holding the study" in errors[0][0], errors
  assert errors[1] == [
    f"jaxflow seeds: error: process 0 failed at the lock of study workdir {workdir} (its error says why); "
    "process 1 stops with it"
  ]
  assert os.listdir(workdir) == [".jaxflow.lock"]  # nothing of a study written
