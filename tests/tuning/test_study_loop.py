"""The tune study loop on a fake trainer (tests/tuning/conftest.py): resume, failures, refused workdirs,
early stopping, grouping, the report and best_config.py."""

from __future__ import annotations

import ast
import itertools
import json
import math
import os

import numpy as np
import pytest

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.run import train as loop
from jaxflow.tuning import pruning, suggest, trials
from jaxflow.tuning import space as S
from jaxflow.tuning.best_config import literal
from jaxflow.workdir import prepare_workdir
from tests.tuning.conftest import LR_SPACE, MLP, tiny


def test_study_resumes_after_finished_trials(tmp_path, fake):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4)
  assert report["counts"]["completed"] == 4 and len(fake.runs) == 4
  again = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4)
  assert len(fake.runs) == 4 and again["resumed_trials"] == 4  # nothing retrained
  more = jaxflow.tune(
    config, str(tmp_path), space=LR_SPACE, method="bo", trials=6
  )  # continue, even with another method
  assert len(fake.runs) == 6 and more["counts"]["completed"] == 6
  assert [t["params"] for t in more["trials"][:4]] == [t["params"] for t in report["trials"]]
  # An interrupted trial (proposed, never finished) is trained on the rerun with its recorded params.
  record = json.load(open(tmp_path / "trials" / "trial_0005" / "trial.json"))
  record.update(status="pending", value=None, rungs=[])
  json.dump(record, open(tmp_path / "trials" / "trial_0005" / "trial.json", "w"))
  os.remove(tmp_path / "trials" / "trial_0005" / "summary.json")
  jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="bo", trials=6)
  assert len(fake.runs) == 7 and fake.runs[-1][0].endswith("trial_0005")
  with pytest.raises(ConfigError, match="holds a study with another base config"):
    jaxflow.tune(tiny("train.epochs=9"), str(tmp_path), space=LR_SPACE, method="bo", trials=6)


def test_a_crashed_trial_is_recorded_and_the_study_goes_on(tmp_path, fake):
  fake.crash_above = 0.01
  # 100 training examples are fewer than the batch of 128: a config error of that combination only.
  space = S.Space(S.categorical("optim.lr", [0.003, 0.05, 0.001]), S.categorical("data.train_examples", [None, 100]))
  report = jaxflow.tune(tiny(), str(tmp_path), space=space, method="grid", trials=6)
  by = {(t["params"]["optim.lr"], t["params"]["data.train_examples"]): t for t in report["trials"]}
  assert (
    by[(0.05, None)]["status"] == "failed"
    and "NonFiniteLossError: non-finite training loss" in by[(0.05, None)]["error"]
  )
  assert (
    by[(0.003, 100)]["status"] == "failed"
    and "config.train.batch_size=128 is larger than split" in by[(0.003, 100)]["error"]
  )
  assert by[(0.003, None)]["status"] == by[(0.001, None)]["status"] == "completed"
  assert report["counts"] == {"completed": 2, "failed": 4, "stopped": 0, "pending": 0}
  assert report["best"]["params"] == {"optim.lr": 0.003, "data.train_examples": None}
  record = json.load(
    open(tmp_path / "trials" / "trial_0002" / "trial.json")
  )  # the error is in trial.json, not a summary.json
  assert record["status"] == "failed" and "NonFiniteLossError" in record["error"]
  assert not os.path.exists(tmp_path / "trials" / "trial_0002" / "summary.json")
  # The failures are kept on a rerun (not retried).
  rerun = jaxflow.tune(tiny(), str(tmp_path), space=space, method="grid", trials=6)
  assert rerun["counts"]["failed"] == 4 and len(fake.runs) == 2


def test_a_refused_workdir_keeps_the_other_runs_summary(tmp_path, fake):
  # trial_0000 already holds another run (another config): the loop refuses it, the trial fails, and that
  # run's summary.json is left as it was.
  other = tmp_path / "trials" / "trial_0000"
  prepare_workdir(str(other), tiny("train.epochs=5"))
  (other / "summary.json").write_text(json.dumps({"status": "completed", "mine": True}))
  report = jaxflow.tune(tiny(), str(tmp_path), space=LR_SPACE, method="sobol", trials=1)
  assert report["counts"]["failed"] == 1 and "ConfigError" in report["trials"][0]["error"]
  assert json.load(open(other / "summary.json")) == {"status": "completed", "mine": True}


def test_a_completed_trial_whose_run_is_gone_trains_again(tmp_path, fake):
  config = tiny("train.epochs=8")
  jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=2)
  assert len(fake.runs) == 2
  trial = tmp_path / "trials" / "trial_0001"
  record = json.load(open(trial / "trial.json"))
  assert record["status"] == "completed" and len(record["rungs"]) == 1
  record["value"] = record["rungs"][-1]["value"] = 0.123  # a stale value, so a kept rung would show
  json.dump(record, open(trial / "trial.json", "w"))
  os.remove(trial / "summary.json")  # the run is gone, the record is kept
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=2)
  assert len(fake.runs) == 3 and fake.runs[-1][0] == str(trial)  # trained again ...
  assert os.path.exists(trial / "summary.json")
  again = json.load(open(trial / "trial.json"))
  expected = fake.value(trials.trial_config(config, LR_SPACE, again["params"]))
  assert (
    again["status"] == "completed" and again["value"] == expected == report["trials"][1]["value"] != 0.123
  )  # ... and its value recomputed
  assert again["rungs"][-1]["value"] == expected and len(again["rungs"]) == 1


def test_early_stopped_rungs_of_a_trial_whose_final_run_is_gone_are_kept(tmp_path, fake):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4, early_stop="median")
  done = next(t for t in report["trials"] if t["status"] == "completed")
  os.remove(tmp_path / done["workdir"] / "summary.json")  # the full run is gone; its probe run is still there
  n = len(fake.runs)
  again = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="sobol", trials=4, early_stop="median")
  assert fake.runs[n:] == [(str(tmp_path / done["workdir"]), 8)]  # only the last rung retrained
  assert (
    again["trials"][done["index"]]["value"] == done["value"] and again["trials"][done["index"]]["status"] == "completed"
  )


def test_tuple_categoricals_round_trip_and_resume(tmp_path, fake):
  space = S.Space(
    S.log_uniform("optim.lr", 1e-4, 1e-1),
    S.categorical("model.widths", [(32,), (64,)]),  # equal-length tuples: np.array would make them 2-D
    S.categorical("shape", [(16, 16), (32, 8)]),
    derive=lambda p: {"model.widths": p["model.widths"] + p["shape"]},
  )
  values, _ = space.decode(np.array([[0.1, 0.2, 0.7], [0.9, 0.9, 0.1]]))
  assert values["model.widths"].shape == (2,) and list(values["model.widths"]) == [(32,), (64,)]
  assert list(values["shape"]) == [(32, 8), (16, 16)]
  assert space.features_of([{"optim.lr": 0.01, "model.widths": [64], "shape": [32, 8]}]).shape == (
    1,
    5,
  )  # lists, as JSON gives back
  assert space.to_unit({"optim.lr": 0.01, "model.widths": [64], "shape": (16, 16)})[1:].tolist() == [0.75, 0.25]
  config = tiny("train.epochs=4")
  first = jaxflow.tune(config, str(tmp_path), space=space, method="bo", trials=6, init_trials=3)
  assert first["counts"]["completed"] == 6
  again = jaxflow.tune(
    config, str(tmp_path), space=space, method="bo", trials=8, init_trials=3
  )  # resumes: the study.json check passes
  assert again["resumed_trials"] == 6 and again["counts"]["completed"] == 8 and len(fake.runs) == 8
  assert [t["params"] for t in again["trials"][:6]] == [t["params"] for t in first["trials"]]
  for t in again["trials"]:
    assert isinstance(t["params"]["model.widths"], tuple) and isinstance(t["params"]["shape"], tuple)
  assert len({space.key(t["params"]) for t in again["trials"]}) == 8
  grid = jaxflow.tune(config, str(tmp_path / "grid"), space=space, method="grid", trials=8)
  assert grid["counts"]["completed"] == 8 and len({space.key(t["params"]) for t in grid["trials"]}) == 8


def test_a_grid_resumed_with_more_trials_keeps_its_points(tmp_path, fake):
  config = tiny("train.epochs=8")
  first = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="grid", trials=3)
  assert first["settings"]["grid_levels"] == 3
  lrs = [t["params"]["optim.lr"] for t in first["trials"]]
  more = jaxflow.tune(
    config, str(tmp_path), space=LR_SPACE, method="grid", trials=5
  )  # a 5-level grid would repeat 1e-1
  assert [t["params"]["optim.lr"] for t in more["trials"]] == lrs and len(fake.runs) == 3
  assert more["settings"]["grid_levels"] == 3
  # Two parameters, the smallest grid bigger than the budget: a larger budget continues the same shuffle.
  space = S.Space(
    S.uniform("model.dropout_rate", 0.0, 0.5), S.categorical("optim.lr", [0.001, 0.002, 0.003, 0.004, 0.005])
  )
  a = jaxflow.tune(config, str(tmp_path / "b"), space=space, method="grid", trials=4)
  b = jaxflow.tune(config, str(tmp_path / "b"), space=space, method="grid", trials=10)
  whole = suggest.Suggester(space, method="grid", budget=4).grid_points()
  assert [t["params"] for t in b["trials"]] == whole == [t["params"] for t in a["trials"]] + whole[4:]
  # A grid after other trials skips the points already tried.
  sg = suggest.Suggester(LR_SPACE, method="grid", budget=3)
  assert sg.suggest(0, 3, [sg.grid_points()[1]]) == [sg.grid_points()[0], sg.grid_points()[2]]


def test_grid_sizes_are_counted_lazily():
  # 40 binary categoricals: 2^40 points; the grid is refused (not enumerated), and check()'s sample is lazy.
  big = S.Space(*[S.categorical(f"c{i}", [0, 1]) for i in range(40)])
  assert big.grid_size(2, cap=101) == 101
  with pytest.raises(ConfigError, match="grid at 2 levels per numeric parameter has more than 100,000 points"):
    big.grid(50)
  assert len(list(itertools.islice(big.iter_grid(2), 16))) == 16
  # A numeric parameter next to them: the level search stops at the budget, O(budget) work per level.
  mixed = S.Space(S.uniform("x", 0.0, 1.0), *[S.categorical(f"c{i}", [0, 1]) for i in range(3)])
  points, levels = mixed.grid(40)
  assert levels == 5 and len(points) == 40
  # Conditionals: inactive parameters are not branched on, and the order is that of itertools.product.
  cond = S.Space(S.categorical("a", ["x", "y"]), S.uniform("b", 0.0, 1.0, when={"a": "y"}), S.integer("c", 1, 3))
  assert list(cond.iter_grid(2)) == [
    {"a": "x", "c": 1},
    {"a": "x", "c": 3},
    {"a": "y", "b": 0.0, "c": 1},
    {"a": "y", "b": 0.0, "c": 3},
    {"a": "y", "b": 1.0, "c": 1},
    {"a": "y", "b": 1.0, "c": 3},
  ]


def test_early_stopping_refuses_epochs_from_derive(tmp_path):
  # train.epochs only for one category, not the one at the centre of the cube
  space = S.Space(
    S.categorical("length", ["short", "medium", "long"]),
    derive=lambda p: {"train.epochs": 9} if p["length"] == "long" else {},
  )
  with pytest.raises(ConfigError, match="may not tune train.epochs"):
    jaxflow.tune(tiny("train.epochs=8"), str(tmp_path), space=space, early_stop="median")
  assert not os.path.exists(tmp_path / "study.json")


@pytest.mark.parametrize("rule, epochs", [("median", (2, 8)), ("asha", (1, 3, 8))])
def test_early_stopping_stops_poor_trials_on_separate_short_runs(tmp_path, fake, rule, epochs):
  config = tiny("train.epochs=8")
  report = jaxflow.tune(config, str(tmp_path), space=LR_SPACE, method="random", trials=12, early_stop=rule)
  assert report["settings"]["rungs"] == list(epochs)
  stopped = [t for t in report["trials"] if t["status"] == "stopped"]
  completed = [t for t in report["trials"] if t["status"] == "completed"]
  assert stopped and completed and len(stopped) + len(completed) == 12
  for t in completed:  # the full run in the trial's own workdir, the probes below it
    assert [r["epochs"] for r in t["rungs"]] == list(epochs)
    assert t["rungs"][-1]["workdir"] == t["workdir"]
    assert os.path.exists(tmp_path / t["rungs"][0]["workdir"] / "summary.json")
  for t in report["trials"]:  # a probe's value is its run's last eval record in metrics.jsonl
    for r in t["rungs"][:-1] if t["status"] == "completed" else t["rungs"]:
      records = [json.loads(line) for line in open(tmp_path / r["workdir"] / "metrics.jsonl")]
      assert r["value"] == records[-1]["accuracy"] and r["curve"] == [x["accuracy"] for x in records]
  # A stopped trial ranked poorly at its last rung against the earlier trials there, and trained no more.
  rungs = pruning.make_rungs(rule, 8)
  for t in stopped:
    r = len(t["rungs"]) - 1
    earlier = [u["rungs"][r]["value"] for u in report["trials"] if u["index"] < t["index"] and len(u["rungs"]) > r]
    assert not pruning.keep_going(t["rungs"][r]["value"], earlier, rungs=rungs, mode="max")
    assert r < len(epochs) - 1 and not os.path.exists(tmp_path / t["workdir"] / "summary.json")
  assert (
    report["epochs_trained"]["total"]
    == sum(e for _, e in fake.runs)
    == sum(r["epochs"] for t in report["trials"] for r in t["rungs"])
  )
  with pytest.raises(ConfigError, match="may not tune train.epochs"):
    jaxflow.tune(config, str(tmp_path / "other"), space=S.Space(S.integer("train.epochs", 2, 9)), early_stop=rule)


def test_a_round_trains_its_groupable_trials_as_one_group(tmp_path, fake):
  seeds = S.Space(S.integer("seed", 0, 10**6))  # trials that differ only in their seed always share a group key
  report = jaxflow.tune(tiny(), str(tmp_path), space=seeds, method="random", trials=4, batch=2)
  assert fake.groups == [2, 2] and all(t["group"] == 2 for t in report["trials"])


def test_a_group_error_falls_back_to_one_by_one(tmp_path, fake, monkeypatch):
  def refuse(cfgs, workdirs, **kw):
    raise loop.GroupError("the runs' class weights differ")

  monkeypatch.setattr(loop, "train_group", refuse)
  seeds = S.Space(S.integer("seed", 0, 10**6))
  report = jaxflow.tune(tiny(), str(tmp_path), space=seeds, method="random", trials=2, batch=2)
  assert report["counts"]["completed"] == 2 and len(fake.runs) == 2


def test_bo_study_report_on_the_fake_trainer(tmp_path, fake):
  space = S.Space(
    S.log_uniform("optim.lr", 1e-4, 1e-1),
    S.integer("train.epochs", 2, 20),
    S.uniform("model.dropout_rate", 0.0, 0.5),
    S.integer("train.batch_size", 32, 256),
  )
  report = jaxflow.tune(tiny(), str(tmp_path), space=space, method="bo", trials=10, batch=2)
  assert report["counts"]["completed"] == 10
  assert set(report["importance"]) == {"optim.lr", "train.epochs", "model.dropout_rate", "train.batch_size"}
  assert report["importance"]["optim.lr"] + report["importance"]["train.epochs"] > 0.5  # what the fake depends on
  assert [(s["x"], s["y"]) for s in report["slices"]] == [
    ("optim.lr", "train.epochs"),
    ("model.dropout_rate", "train.batch_size"),
  ]
  so_far = report["convergence"]
  assert all(b >= a for a, b in zip(so_far, so_far[1:]))
  for name in (
    "report.json",
    "report.md",
    "best_config.py",
    "plots/convergence.png",
    "plots/importance.png",
    "plots/slice_optim_lr_train_epochs.png",
  ):
    assert os.path.getsize(tmp_path / name) > 0, name


AWKWARD = 'a\'b\n""" \\N{x} {}'  # quotes, a newline, a docstring's end, a backslash escape, braces


@pytest.mark.parametrize("from_file", [True, False], ids=["from_file", "inline"])
def test_best_config_embeds_any_string_and_loads_back_the_same(tmp_path, fake, from_file):
  """A study whose config holds awkward strings (its data dir, a path to the digits via a symlink of that
  name) in a workdir of such a name writes a best_config.py that loads back with the same values."""
  data_dir = tmp_path / f"data {AWKWARD}"
  os.symlink(os.environ["JAXFLOW_DATA_DIR"], data_dir)
  config = tiny("data.data_dir=placeholder")
  config.data.data_dir = str(data_dir)
  workdir = tmp_path / f"study {AWKWARD}"
  report = jaxflow.tune(
    config, str(workdir), space=LR_SPACE, method="random", trials=2, config_file=MLP if from_file else None
  )
  best = jaxflow.load_config(str(workdir / "best_config.py"))
  assert best.data.data_dir == str(data_dir)
  assert best.optim.lr == report["best"]["params"]["optim.lr"] and best.model.widths == (32,)
  # The docstring names the file by its own path, escaped: it reads back as the path it is.
  doc = ast.get_docstring(ast.parse((workdir / "best_config.py").read_text()))
  assert f"jaxflow train --config={workdir / 'best_config.py'} --workdir=runs/tuned" in doc


@pytest.mark.parametrize(
  "value",
  [AWKWARD, ("a'b", 'c"d', "\\"), (1,), (), float("inf"), -float("inf"), {"k": [1, None, True, 2.5]}, "\x00\r\t"],
)
def test_best_config_literals_round_trip(value):
  assert eval(literal(value), {}) == value  # the literal jaxflow writes, read back as Python would
  nan = eval(literal(float("nan")), {})
  assert math.isnan(nan)
