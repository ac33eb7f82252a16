"""Damaged files in a workdir: the newest checkpoint broken five ways, a bit flip in saved parameters,
every checkpoint broken, a foreign checkpoint, a half-written log line, an empty config.json. Each rerun
of the same command either resumes (bitwise, from the newest checkpoint that verifies) or says in one
line why not, with the user's choices.

The ten reruns run one after another in one worker process (tests/reliability/rerun_worker.py: each with its
own stderr and exit status, the process-wide hooks put back as a new process has them), not as ten `jaxflow`
processes: the same `cli.main` the console script calls, without paying its imports ten times."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.reliability import runs


def _largest_file(directory: str) -> str:
  files = [os.path.join(d, f) for d, _, fs in os.walk(directory) for f in fs]
  return max(files, key=os.path.getsize)


def truncate_data(step_dir):
  path = _largest_file(os.path.join(step_dir, "state"))
  with open(path, "r+b") as f:
    f.truncate(os.path.getsize(path) // 2)


def remove_manifest(step_dir):
  os.remove(os.path.join(step_dir, "state", "manifest.ocdbt"))


def garbage_metadata(step_dir):
  """The saved arrays' metadata (shapes, dtypes, where each lives) overwritten with garbage."""
  with open(os.path.join(step_dir, "state", "_METADATA"), "w") as f:
    f.write("\x00garbage{{{")


def remove_item(step_dir):
  shutil.rmtree(os.path.join(step_dir, "meta"))


def empty_folder(step_dir):
  for name in os.listdir(step_dir):
    target = os.path.join(step_dir, name)
    shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)


def flip_a_bit(step_dir):
  """One bit of the saved state flipped in place: the files stay readable, a value changes."""
  path = _largest_file(os.path.join(step_dir, "state"))
  with open(path, "r+b") as f:
    data = bytearray(f.read())
    data[len(data) // 2] ^= 0x10
    f.seek(0)
    f.write(data)


DAMAGE = {
  f.__name__: f for f in (truncate_data, remove_manifest, garbage_metadata, remove_item, empty_folder, flip_a_bit)
}


def garbled_info_file(step_dir):
  """orbax's _CHECKPOINT_METADATA (save time, format) overwritten with garbage."""
  with open(os.path.join(step_dir, "_CHECKPOINT_METADATA"), "w") as f:
    f.write("\x00garbage{{{")


def every_checkpoint_damaged(workdir):
  for step in runs.committed_steps(workdir):
    remove_manifest(os.path.join(workdir, "checkpoints", "latest", str(step)))


def no_config_json(workdir):
  os.remove(os.path.join(workdir, "config.json"))


def half_written_log_line_and_empty_config_json(workdir):
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 999, "split": "tr')  # a process killed mid-write
  open(os.path.join(workdir, "config.json"), "w").close()  # killed while config.json was written in place


def _newest(damage):
  """A damage of the newest checkpoint's folder, as a damage of the workdir."""
  return lambda workdir: damage(os.path.join(workdir, "checkpoints", "latest", str(runs.committed_steps(workdir)[-1])))


# name -> (what is done to a copy of the finished run, the rerun's extra flags). The first rerun's stderr is
# asserted empty: whatever the imports print shows there.
SCENARIOS = {
  "garbled info file": (_newest(garbled_info_file), []),
  **{damage: (_newest(DAMAGE[damage]), []) for damage in sorted(DAMAGE)},
  "every checkpoint damaged": (every_checkpoint_damaged, []),
  "foreign": (no_config_json, ["--config.optim.lr=0.5"]),
  "half-written": (half_written_log_line_and_empty_config_json, []),
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished small run (its three newest checkpoints kept; shared with test_kills), its summary and logs."""
  workdir = runs.finished(tmp_path_factory)
  return workdir, runs.summary(workdir), runs.records(workdir)


@pytest.fixture(scope="module")
def reruns(finished, tmp_path_factory):
  """name -> (exit status, stderr, workdir, newest step before the damage) of each scenario's rerun of the
  same command, all in one worker process."""
  base = tmp_path_factory.mktemp("damaged")
  jobs, prepared = [], {}
  for i, (name, (damage, extra)) in enumerate(SCENARIOS.items()):
    workdir = copy_of(finished, base / str(i))
    newest = runs.committed_steps(workdir)[-1]
    damage(workdir)
    jobs.append({"args": [*runs.flags(*extra), f"--workdir={workdir}"], "stderr": str(base / f"{i}.err")})
    prepared[name] = (workdir, newest)
  (base / "jobs.json").write_text(json.dumps(jobs))
  worker = subprocess.run(
    [sys.executable, "-m", "tests.reliability.rerun_worker", str(base / "jobs.json"), str(base / "statuses.json")],
    cwd=ROOT,
    stdout=subprocess.DEVNULL,
    stderr=subprocess.PIPE,
    text=True,
    timeout=600,
  )
  assert worker.returncode == 0 and worker.stderr == "", worker.stderr  # nothing printed outside the reruns
  statuses = json.loads((base / "statuses.json").read_text())
  return {
    name: (status, open(job["stderr"]).read(), *prepared[name]) for name, status, job in zip(SCENARIOS, statuses, jobs)
  }


def copy_of(finished, folder) -> str:
  workdir = str(folder / "run")
  shutil.copytree(finished[0], workdir)
  os.remove(os.path.join(workdir, "summary.json"))
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(finished, reruns, damage):
  status, stderr, workdir, newest = reruns[damage]
  assert status == 0, stderr
  warnings = [line for line in stderr.splitlines() if line.strip()]
  assert len(warnings) == 1 and f"step {newest}" in warnings[0] and "damaged" in warnings[0], stderr
  assert "Traceback" not in stderr
  summary = runs.summary(workdir)
  assert summary["resumed_from_step"] == newest - 11  # the epoch before
  assert summary["params_sha256"] == finished[1]["params_sha256"]
  assert runs.records(workdir) == finished[2]
  assert os.path.isdir(os.path.join(workdir, "checkpoints_damaged", f"latest_{newest}"))  # kept for inspection


@pytest.mark.slow
def test_a_garbled_checkpoint_info_file_is_harmless_and_quiet(finished, reruns):
  """orbax's _CHECKPOINT_METADATA (save time, format) is not needed to restore: the data and their hashes
  are whole, so the checkpoint resumes, without a word on stderr."""
  status, stderr, workdir, newest = reruns["garbled info file"]
  assert status == 0 and stderr.strip() == "", stderr
  assert runs.summary(workdir)["resumed_from_step"] == newest
  assert runs.summary(workdir)["params_sha256"] == finished[1]["params_sha256"]


@pytest.mark.slow
def test_every_checkpoint_damaged_is_one_line_with_the_choices(reruns):
  status, stderr, _, _ = reruns["every checkpoint damaged"]
  assert status == 2 and "Traceback" not in stderr
  last = stderr.strip().splitlines()[-1]
  assert last.startswith("jaxflow train: error: workdir ") and "none of its 3 checkpoint(s) restores" in last
  assert "overwrite=True" in last and "another --workdir" in last


@pytest.mark.slow
def test_a_foreign_checkpoint_is_never_resumed_even_without_config_json(reruns):
  status, stderr, workdir, _ = reruns["foreign"]
  assert status == 2, stderr
  assert stderr.strip() == (
    f"jaxflow train: error: workdir {os.path.abspath(workdir)} holds checkpoints of a different config; "
    "use another --workdir, or --config.train.overwrite=True to discard that run"
  )


@pytest.mark.slow
def test_a_half_written_log_line_and_an_empty_config_json_resume(finished, reruns):
  status, stderr, workdir, _ = reruns["half-written"]
  assert status == 0, stderr
  assert runs.summary(workdir)["params_sha256"] == finished[1]["params_sha256"]
  assert runs.records(workdir) == finished[2]
  assert json.load(open(os.path.join(workdir, "config.json")))["hash"]  # written again, whole


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_multi_host_rerun_keeps_the_damaged_checkpoint_it_sets_aside(tmp_path):
  """Both processes of a rerun find the newest checkpoint damaged and resume from the one before; process 0
  alone moves the damaged one to checkpoints_damaged/ (when each moved it, one removed the copy the other had
  just set aside: none was kept)."""
  from tests.reliability.test_signals import _finish, _free_port, _two_processes

  workdir, constant = str(tmp_path / "run"), "--config.optim.schedule=constant"  # extendable by an epoch
  first = _finish(_two_processes(workdir, _free_port(), tmp_path, "first", "--config.train.epochs=2", constant))
  assert [code for code, _ in first] == [0, 0], first
  newest = max(runs.committed_steps(workdir))
  flip_a_bit(os.path.join(workdir, "checkpoints", "latest", str(newest)))
  rerun = _finish(_two_processes(workdir, _free_port(), tmp_path, "rerun", "--config.train.epochs=3", constant))
  assert [code for code, _ in rerun] == [0, 0], [err[-2000:] for _, err in rerun]
  for _, err in rerun:
    assert f"latest checkpoint step {newest} in {workdir}/checkpoints is damaged" in err, err[-2000:]
  damaged = os.path.join(workdir, "checkpoints_damaged")
  assert os.listdir(damaged) == [f"latest_{newest}"]
  assert os.path.isdir(os.path.join(damaged, f"latest_{newest}", "state"))  # the whole step, for inspection
