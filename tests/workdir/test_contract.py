"""The workdir contract: atomic files, one JSON encoder, config.json round trip, resume checks, metrics."""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np
import pytest

from jaxflow import workdir
from jaxflow.config import ConfigError, config_hash, config_hashes


def small_config(lr: float = 0.1) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict({"optim": {"lr": lr}, "model": {"widths": (32, 16)}, "train": {"overwrite": False}})


def test_write_json_is_atomic_and_encodes_numpy(tmp_path):
  path = str(tmp_path / "sub" / "record.json")
  data = {"a": np.float32(0.5), "b": np.int64(3), "c": np.arange(3), "d": (1, 2), "e": np.bool_(True)}
  workdir.write_json(path, {"old": True})
  workdir.write_json(path, data)
  assert json.load(open(path)) == {"a": 0.5, "b": 3, "c": [0, 1, 2], "d": [1, 2], "e": True}
  assert os.listdir(tmp_path / "sub") == ["record.json"]  # no temporary file left behind


def test_a_failed_write_keeps_the_old_file(tmp_path):
  path = str(tmp_path / "record.json")
  workdir.write_json(path, {"kept": 1})
  with pytest.raises(TypeError):
    workdir.write_json(path, {"bad": object()})
  assert json.load(open(path)) == {"kept": 1} and os.listdir(tmp_path) == ["record.json"]


def test_config_round_trip_restores_tuples(tmp_path):
  config = small_config()
  workdir.write_config(str(tmp_path), config)
  saved = json.load(open(tmp_path / "config.json"))
  assert saved["hash"] == config_hash(config) and saved["config"]["model"]["widths"] == [32, 16]
  back = workdir.read_config(str(tmp_path))
  assert back.model.widths == (32, 16) and config_hash(back) == config_hash(config)


def test_read_config_of_no_run_is_one_line(tmp_path):
  with pytest.raises(ConfigError, match="does not exist: not a jaxflow run"):
    workdir.read_config(str(tmp_path / "missing"))
  (tmp_path / "config.json").write_text("{not json")
  with pytest.raises(ConfigError, match="is not a jaxflow config.json"):
    workdir.read_config(str(tmp_path))


def test_prepare_workdir_refuses_another_config_and_names_the_field(tmp_path):
  workdir.prepare_workdir(str(tmp_path), small_config(0.1))
  workdir.prepare_workdir(str(tmp_path), small_config(0.1))  # same config: resumes
  with pytest.raises(ConfigError, match=r"optim.lr: 0.1 -> 0.2.*overwrite=True"):
    workdir.prepare_workdir(str(tmp_path), small_config(0.2))
  other = small_config(0.2)
  other.train.overwrite = True
  (tmp_path / "metrics.jsonl").write_text("{}\n")
  workdir.prepare_workdir(str(tmp_path), other)
  assert not (tmp_path / "metrics.jsonl").exists() and workdir.read_config(str(tmp_path)).optim.lr == 0.2


def test_completed_summary_needs_the_same_config_and_a_completed_run(tmp_path):
  config = small_config()
  workdir.write_config(str(tmp_path), config)
  assert workdir.completed_summary(str(tmp_path), config) is None  # no summary yet
  workdir.write_summary(str(tmp_path), {"status": "failed"})
  assert workdir.completed_summary(str(tmp_path), config) is None
  workdir.write_summary(str(tmp_path), {"status": "completed", "steps": 4})
  assert workdir.completed_summary(str(tmp_path), config) == {"status": "completed", "steps": 4}
  assert workdir.completed_summary(str(tmp_path), small_config(0.3)) is None


def test_read_metrics_skips_a_partial_last_line(tmp_path):
  lines = [{"step": 1, "split": "train", "loss": 1.0}, {"step": 1, "split": "eval", "accuracy": 0.5}]
  (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines) + '{"step": 2, "spl')
  assert workdir.read_metrics(str(tmp_path)) == lines
  assert workdir.read_metrics(str(tmp_path), "eval") == lines[1:]
  assert workdir.read_metrics(str(tmp_path / "none")) == []


def test_write_report_writes_json_and_markdown(tmp_path):
  paths = workdir.write_report(str(tmp_path), {"x": np.float64(1.5)}, "# report\n")
  assert json.load(open(paths["json"])) == {"x": 1.5} and open(paths["md"]).read() == "# report\n"


def test_a_run_without_config_json_still_resumes_checkpoints_an_earlier_jaxflow_hashed():
  """config.json lost or damaged (then written again, without `extends`): the checkpoints' hash as an earlier
  jaxflow computed it (with the checkpoint section) is still this config's."""
  config = small_config()
  config.checkpoint = ml_collections.ConfigDict({"every_epochs": 1, "keep": 3})
  assert workdir.accepted_hashes("/nonexistent/run", config) == config_hashes(config)
  assert config_hashes(config)[0] != config_hashes(config)[1]
