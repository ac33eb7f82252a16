"""Several processes preparing one dataset in one fresh data dir at the same instant (a multi-host job's
processes, two `jaxflow train`, pytest-xdist workers): every one succeeds and reads the one prepared copy.

tfds writes each process's copy in a folder of its own and renames it into place; before
`jaxflow.data.store.prepare_once`, every process but the first to rename died of that rename's OSError
(FileExistsError / "Directory not empty"), and a multi-host job's survivor then hung at its first collective.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxflow import data
from jaxflow.data import loading, store
from tests.conftest import ROOT

PROCESSES = 3


@pytest.mark.slow
def test_processes_preparing_one_dataset_at_once_all_read_the_one_copy(tmp_path):
  data_dir, barrier_dir = tmp_path / "data", tmp_path / "barrier"
  barrier_dir.mkdir()
  npz = str(tmp_path / "pixels.npz")
  np.savez(npz, features=np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2), label=np.asarray(list("babacc")))
  env = {k: v for k, v in os.environ.items() if k != "JAXFLOW_DATA_DIR"}  # the data dir is the argument alone
  command = [sys.executable, "-m", "tests.data.prepare_worker", str(data_dir), str(barrier_dir), str(PROCESSES), npz]
  procs = [
    subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    for _ in range(PROCESSES)
  ]
  try:
    done = [p.communicate(timeout=120) for p in procs]
  finally:  # past the timeout: never left running
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  last_lines = [(err.strip().splitlines() or [""])[-1] for _, err in done]  # each process's error, if any
  assert [p.returncode for p in procs] == [0] * PROCESSES, last_lines
  results = [json.loads(out.strip().splitlines()[-1]) for out, _ in done]
  assert all(r == results[0] for r in results), results
  assert len(results[0]) == 2
  # The race was run (more than one process found no copy in place and prepared one); one copy is left.
  assert sum("jaxflow: preparing dataset 'digits'" in err for _, err in done) >= 2, [err for _, err in done]
  assert os.listdir(data_dir / "digits") == ["1.0.0"]


def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path):
  """A failure that is not a lost race (here a data dir below a file; a full disk alike) is not taken for one:
  one line naming the dataset, the data dir and the system's error, not tfds's traceback."""
  (tmp_path / "a_file").write_text("")
  data_dir = str(tmp_path / "a_file" / "data")
  with pytest.raises(data.DatasetError) as info:
    data.dataset_spec("digits", data_dir=data_dir)
  message = str(info.value)
  assert message.startswith(f"dataset 'digits' could not be prepared in data_dir={data_dir!r}: ")
  assert "Not a directory" in message and "\n" not in message


@pytest.mark.parametrize("renamed", ["before is_prepared", "inside download_and_prepare"])
def test_a_builder_made_before_another_process_s_copy_was_in_place_is_made_again(tmp_path, monkeypatch, renamed):
  """Another process renames its copy into place just after this one made its builder: tfds finds the copy
  (is_prepared, or download_and_prepare reusing it) but that builder read no info from it, so it has no
  splits and every read fails (KeyError: `splits` is empty). prepare_once returns a builder made from the copy."""
  import tensorflow_datasets as tfds

  loading.SHIPPED_DATASETS["digits"]()  # registers the builder with tfds
  data_dir = str(tmp_path / "data")

  def make():
    return tfds.builder("digits", data_dir=data_dir, file_format=store.FILE_FORMAT)

  made = [make()]  # no copy in place yet

  def other_process_wins():
    make().download_and_prepare()

  if renamed == "before is_prepared":
    other_process_wins()
  else:
    prepare = store._prepare_quietly
    monkeypatch.setattr(store, "_prepare_quietly", lambda *a: (other_process_wins(), prepare(*a)))
  builder = store.prepare_once(lambda: made.pop() if made else make(), "digits", data_dir)
  assert sorted(builder.info.splits) == ["test", "train"]
  assert len(builder.as_data_source(split="train")) == builder.info.splits["train"].num_examples
