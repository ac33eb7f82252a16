"""A finished run can be extended with more epochs when its learning-rate schedule does not depend on the
run's length (constant, exponential): the extension ends bitwise where a run of that length from scratch
ends. Otherwise, one line saying why."""

from __future__ import annotations

import json
import os

import pytest

import jaxflow
from jaxflow.config import config_hash, config_hashes, to_dict
from tests.conftest import config_path, merge_overrides

TINY = ["model.widths=(32,)", "train.log_every=5", "checkpoint.every_epochs=1", "train.histogram_every=1000"]


def config(epochs: int, *overrides: str):
  return jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*TINY, f"train.epochs={epochs}", *overrides))


def eval_steps(workdir) -> list[int]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [r["step"] for r in map(json.loads, f) if r["split"] == "eval"]


@pytest.mark.slow
def test_more_epochs_of_a_constant_schedule_continue_bitwise(tmp_path):
  constant = ("optim.schedule=constant", "optim.warmup_steps=5")
  straight = jaxflow.train(config(4, *constant), str(tmp_path / "straight"), quiet=True)
  workdir = str(tmp_path / "extended")
  first = jaxflow.train(config(2, *constant), workdir, quiet=True)
  extended = jaxflow.train(config(4, *constant), workdir, quiet=True)
  assert extended["resumed_from_step"] == first["steps"] == straight["steps"] // 2
  assert extended["steps"] == straight["steps"]
  assert extended["params_sha256"] == straight["params_sha256"]
  assert eval_steps(workdir) == eval_steps(str(tmp_path / "straight"))  # each epoch logged once
  record = json.loads(open(os.path.join(workdir, "config.json")).read())
  assert record["config"]["train"]["epochs"] == 4 and len(record["extends"]) == 1
  # A kill after the extension resumes from a checkpoint of either config; rerunning the finished one is a no-op.
  again = jaxflow.train(config(4, *constant), workdir, quiet=True)
  assert again["params_sha256"] == straight["params_sha256"] and again["resumed_from_step"] == straight["steps"]


@pytest.mark.slow
def test_a_schedule_that_spans_the_run_or_fewer_epochs_are_refused_in_one_line(tmp_path):
  workdir = str(tmp_path / "cosine")
  jaxflow.train(config(1, "optim.schedule=cosine"), workdir, quiet=True)
  with pytest.raises(jaxflow.ConfigError, match=r"train.epochs 1 -> 3 would change what optim.schedule='cosine'"):
    jaxflow.train(config(3, "optim.schedule=cosine"), workdir, quiet=True)
  constant = str(tmp_path / "constant")
  jaxflow.train(config(2, "optim.schedule=constant"), constant, quiet=True)
  with pytest.raises(jaxflow.ConfigError, match=r"train.epochs 2 -> 1: a run is extended with more epochs, never"):
    jaxflow.train(config(1, "optim.schedule=constant"), constant, quiet=True)
  with pytest.raises(jaxflow.ConfigError, match=r"differs in optim.lr: .*overwrite=True"):
    jaxflow.train(config(3, "optim.schedule=constant", "optim.lr=0.5"), constant, quiet=True)


@pytest.mark.slow
def test_a_run_early_stopping_ended_is_not_extended(tmp_path):
  workdir = str(tmp_path / "stopped")
  jaxflow.train(config(2, "optim.schedule=constant"), workdir, quiet=True)
  summary_path = os.path.join(workdir, "summary.json")
  summary = json.loads(open(summary_path).read())
  summary["stopped_early"] = True  # as early stopping leaves it
  with open(summary_path, "w") as f:
    json.dump(summary, f)
  with pytest.raises(jaxflow.ConfigError, match="early stopping ended .* would train nothing"):
    jaxflow.train(config(4, "optim.schedule=constant"), workdir, quiet=True)


@pytest.mark.slow
def test_another_checkpoint_cadence_continues_the_run_and_an_earlier_record_still_resumes(tmp_path):
  """checkpoint.* is resume-neutral: a run continued under another cadence ends bitwise where one run would. A
  config.json an earlier jaxflow hashed with the checkpoint section (config_hashes' second) of a run early stopping
  ended is that same run: resumed (nothing left to train), not refused, and recorded under today's hash."""
  constant = ("optim.schedule=constant", "optim.warmup_steps=5")
  straight = jaxflow.train(config(4, *constant), str(tmp_path / "straight"), quiet=True)
  workdir = str(tmp_path / "run")
  jaxflow.train(config(2, *constant), workdir, quiet=True)
  cadence = ("checkpoint.every_epochs=3", "checkpoint.keep=1")
  continued = jaxflow.train(config(4, *constant, *cadence), workdir, quiet=True)
  assert continued["resumed_from_step"] == straight["steps"] // 2
  assert continued["params_sha256"] == straight["params_sha256"]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints", "latest"))) == [str(straight["steps"])]  # keep=1
  path, summary_path = os.path.join(workdir, "config.json"), os.path.join(workdir, "summary.json")
  # ... as an earlier jaxflow wrote it for this run under the first cadence (TINY's): its hash and config then.
  before = config(4, *constant)
  earlier = config_hashes(before)[1]
  assert earlier not in config_hashes(config(4, *constant, *cadence))
  with open(path, "w") as f:
    json.dump({"hash": earlier, "config": to_dict(before)}, f)
  with open(summary_path) as f:
    summary = json.load(f)
  with open(summary_path, "w") as f:
    json.dump(summary | {"stopped_early": True}, f)
  assert jaxflow.workdir.completed_summary(workdir, config(4, *constant, *cadence)) is not None
  again = jaxflow.train(config(4, *constant, *cadence), workdir, quiet=True)
  assert again["resumed_from_step"] == straight["steps"] and again["params_sha256"] == straight["params_sha256"]
  with open(path) as f:
    record = json.load(f)
  assert record["hash"] == config_hash(config(4, *constant, *cadence)) and record["extends"][-1] == earlier
