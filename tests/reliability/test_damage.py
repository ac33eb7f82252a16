"""Damaged files in a workdir: the newest checkpoint broken five ways, a bit flip in saved parameters,
every checkpoint broken, a foreign checkpoint, a half-written log line, an empty config.json. Each rerun
of the same command either resumes (bitwise, from the newest checkpoint that verifies) or says in one
line why not, with the user's choices."""

from __future__ import annotations

import json
import os
import shutil

import pytest

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


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  """A finished small run (its three newest checkpoints kept) and its summary."""
  workdir = tmp_path_factory.mktemp("finished") / "run"
  done = runs.train(workdir)
  assert done.returncode == 0, done.stderr
  return str(workdir), runs.summary(workdir), runs.records(workdir)


def copy_of(finished, tmp_path) -> str:
  workdir = str(tmp_path / "run")
  shutil.copytree(finished[0], workdir)
  os.remove(os.path.join(workdir, "summary.json"))
  return workdir


@pytest.mark.slow
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(finished, tmp_path, damage):
  workdir = copy_of(finished, tmp_path)
  newest = runs.committed_steps(workdir)[-1]
  DAMAGE[damage](os.path.join(workdir, "checkpoints", "latest", str(newest)))
  done = runs.train(workdir)
  assert done.returncode == 0, done.stderr
  warnings = [line for line in done.stderr.splitlines() if line.strip()]
  assert len(warnings) == 1 and f"step {newest}" in warnings[0] and "damaged" in warnings[0], done.stderr
  assert "Traceback" not in done.stderr
  summary = runs.summary(workdir)
  assert summary["resumed_from_step"] == newest - 11  # the epoch before
  assert summary["params_sha256"] == finished[1]["params_sha256"]
  assert runs.records(workdir) == finished[2]
  assert os.path.isdir(os.path.join(workdir, "checkpoints_damaged", f"latest_{newest}"))  # kept for inspection


@pytest.mark.slow
def test_a_garbled_checkpoint_info_file_is_harmless_and_quiet(finished, tmp_path):
  """orbax's _CHECKPOINT_METADATA (save time, format) is not needed to restore: the data and their hashes
  are whole, so the checkpoint resumes, without a word on stderr."""
  workdir = copy_of(finished, tmp_path)
  newest = runs.committed_steps(workdir)[-1]
  with open(os.path.join(workdir, "checkpoints", "latest", str(newest), "_CHECKPOINT_METADATA"), "w") as f:
    f.write("\x00garbage{{{")
  done = runs.train(workdir)
  assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
  assert runs.summary(workdir)["resumed_from_step"] == newest
  assert runs.summary(workdir)["params_sha256"] == finished[1]["params_sha256"]


@pytest.mark.slow
def test_every_checkpoint_damaged_is_one_line_with_the_choices(finished, tmp_path):
  workdir = copy_of(finished, tmp_path)
  for step in runs.committed_steps(workdir):
    remove_manifest(os.path.join(workdir, "checkpoints", "latest", str(step)))
  done = runs.train(workdir)
  assert done.returncode == 2 and "Traceback" not in done.stderr
  last = done.stderr.strip().splitlines()[-1]
  assert last.startswith("jaxflow train: error: workdir ") and "none of its 3 checkpoint(s) restores" in last
  assert "overwrite=True" in last and "another --workdir" in last


@pytest.mark.slow
def test_a_foreign_checkpoint_is_never_resumed_even_without_config_json(finished, tmp_path):
  workdir = copy_of(finished, tmp_path)
  os.remove(os.path.join(workdir, "config.json"))
  done = runs.train(workdir, "--config.optim.lr=0.5")
  assert done.returncode == 2, done.stderr
  assert done.stderr.strip() == (
    f"jaxflow train: error: workdir {os.path.abspath(workdir)} holds checkpoints of a different config; "
    "use another --workdir, or --config.train.overwrite=True to discard that run"
  )


@pytest.mark.slow
def test_a_half_written_log_line_and_an_empty_config_json_resume(finished, tmp_path):
  workdir = copy_of(finished, tmp_path)
  with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
    f.write('{"step": 999, "split": "tr')  # a process killed mid-write
  open(os.path.join(workdir, "config.json"), "w").close()  # killed while config.json was written in place
  done = runs.train(workdir)
  assert done.returncode == 0, done.stderr
  assert runs.summary(workdir)["params_sha256"] == finished[1]["params_sha256"]
  assert runs.records(workdir) == finished[2]
  assert json.load(open(os.path.join(workdir, "config.json")))["hash"]  # written again, whole
