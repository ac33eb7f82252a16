"""jaxflow tune end to end on the digits MLP (real training), through the command line and the public function."""

from __future__ import annotations

import json
import os

import pytest

import jaxflow
from jaxflow import cli
from jaxflow.config import config_hash, config_hashes
from jaxflow.run import train as loop
from jaxflow.tuning import space as S
from jaxflow.tuning import trials
from tests.conftest import latest_params, max_param_diff
from tests.hparams_readback import read_hparams
from tests.tuning.conftest import MLP, SPACE, TINY, tiny

PNG = b"\x89PNG\r\n\x1a\n"


# -- real studies on the digits MLP -------------------------------------------------------------------


def _cli(*args) -> int:
  return cli.main(["jaxflow", "tune", f"--config={MLP}", *[f"--config.{o}" for o in TINY], *args])


@pytest.mark.slow
def test_tune_end_to_end_on_the_digits_mlp(tmp_path, capsys):
  workdir = tmp_path / "tune"
  args = (f"--space={SPACE}:small", "--method=bo", "--trials=4", "--init_trials=2", f"--workdir={workdir}", "--quiet")
  assert _cli(*args) == 0
  out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert out["counts"]["completed"] == 4 and out["metric"] == "eval/accuracy"
  for i in range(4):  # each trial is a normal run workdir
    trial = workdir / "trials" / f"trial_{i:04d}"
    for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints", "tb", "trial.json"):
      assert (trial / name).exists(), (trial, name)
    summary = json.load(open(trial / "summary.json"))
    record = json.load(open(trial / "trial.json"))
    assert summary["status"] == "completed" and record["value"] == summary["final"]["eval"]["accuracy"]
    assert json.load(open(trial / "config.json"))["hash"] == record["config_hash"]
  report = json.load(open(workdir / "report.json"))
  for name in ("convergence", "importance", "slice_model_dropout_rate_train_batch_size"):
    assert open(workdir / report["plots"][name], "rb").read(8) == PNG
  assert "| trial | status | eval/accuracy |" in open(workdir / "report.md").read()
  # TensorBoard's HPARAMS tab lists every trial with its tuned values and final metrics, beside its scalars.
  experiment, sessions = read_hparams(str(workdir))
  assert {"trial", "model.dropout_rate", "train.batch_size"} <= set(experiment["hparams"])
  assert experiment["metrics"][:2] == ["hparams/objective", "hparams/eval/accuracy"]
  for i in range(4):
    session = sessions[f"trials/trial_{i:04d}/tb"]
    record = json.load(open(workdir / "trials" / f"trial_{i:04d}" / "trial.json"))
    assert session["hparams"]["trial"] == i and session["status"] == 1  # STATUS_SUCCESS
    assert session["hparams"]["model.dropout_rate"] == pytest.approx(record["params"]["model.dropout_rate"])
    assert session["metrics"]["objective"] == pytest.approx(record["value"], abs=1e-7)  # float32 in the event
  # best_config.py is a runnable config: the best trial's config, exactly.
  best = jaxflow.load_config(str(workdir / "best_config.py"))
  best_trial = workdir / "trials" / f"trial_{report['best']['index']:04d}"
  assert config_hash(best) == json.load(open(best_trial / "trial.json"))["config_hash"]
  # ... and `jaxflow train` on it reproduces the trial's parameters bitwise (--batch=1: each trial trained alone).
  assert report["best"]["group"] == 1 and "reproduced bitwise" in open(workdir / "best_config.py").read()
  assert (
    cli.main(
      ["jaxflow", "train", f"--config={workdir / 'best_config.py'}", f"--workdir={tmp_path / 'rerun'}", "--quiet"]
    )
    == 0
  )
  capsys.readouterr()
  rerun = json.load(open(tmp_path / "rerun" / "summary.json"))
  trial_summary = json.load(open(best_trial / "summary.json"))
  assert (
    rerun["params_sha256"] == trial_summary["params_sha256"]
    and rerun["final"]["eval"] == trial_summary["final"]["eval"]
  )
  # A rerun finds every trial finished and trains nothing.
  mtimes = [os.path.getmtime(workdir / "trials" / f"trial_{i:04d}" / "summary.json") for i in range(4)]
  assert _cli(*args) == 0
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["best"] == out["best"]
  assert [os.path.getmtime(workdir / "trials" / f"trial_{i:04d}" / "summary.json") for i in range(4)] == mtimes
  # The same study as a jaxflow from before checkpoint.* was resume-neutral recorded it (every hash covered the
  # section): neither refused as another study nor trained again.
  _rehash_as_before(workdir)
  assert _cli(*args) == 0
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["best"] == out["best"]
  assert [os.path.getmtime(workdir / "trials" / f"trial_{i:04d}" / "summary.json") for i in range(4)] == mtimes


def _rehash_as_before(study) -> None:
  """study.json, trial.json and config.json with the hashes an earlier jaxflow wrote (config_hashes' second)."""
  study_json = study / "study.json"
  record = json.load(open(study_json))
  base = jaxflow.load_config(MLP, TINY)
  assert record["base_config_hash"] == config_hashes(base)[0] != config_hashes(base)[1]
  study_json.write_text(json.dumps(record | {"base_config_hash": config_hashes(base)[1]}))
  for trial in sorted((study / "trials").iterdir()):
    earlier = config_hashes(jaxflow.workdir.read_config(str(trial)))[1]
    for name, key in (("trial.json", "config_hash"), ("config.json", "hash")):
      record = json.load(open(trial / name))
      (trial / name).write_text(json.dumps(record | {key: earlier}))


@pytest.mark.slow
def test_real_failures_are_recorded_and_the_study_goes_on(tmp_path):
  space = S.Space(S.categorical("data.train_examples", [None, 100]))  # 100 < the batch of 128: a config error
  nan = tiny("optim.lr=1e30", "optim.schedule=constant", "optim.warmup_steps=0", "train.epochs=1")  # a forced NaN
  report = jaxflow.tune(nan, str(tmp_path), space=space, method="grid", trials=2)
  errors = {t["params"]["data.train_examples"]: t["error"] for t in report["trials"]}
  assert report["counts"]["failed"] == 2 and report["best"] is None
  assert "config.train.batch_size=128 is larger than split" in errors[100]
  assert "NonFiniteLossError: non-finite" in errors[None]
  assert os.path.exists(tmp_path / "report.md") and not os.path.exists(tmp_path / "best_config.py")


@pytest.mark.parametrize(
  "flag, says",
  [
    ("--method=annealing", "--method='annealing' is not known; allowed: grid, random, sobol, halton, bo"),
    ("--space=configs/spaces/nope.py", "--space='configs/spaces/nope.py': file not found"),
    ("--early_stop=sometimes", "--early_stop='sometimes' is not known"),
    ("--trials=0", "--trials=0 must be a positive integer"),
  ],
)
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, flag, says):
  workdir = tmp_path / "tune"
  args = [f"--space={SPACE}", f"--workdir={workdir}", flag]
  assert _cli(*args) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and err.startswith("jaxflow tune: error: ") and says in err, err
  assert not workdir.exists()


def test_cli_unknown_space_variant(tmp_path, capsys):
  assert _cli(f"--space={SPACE}:smal", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and f"--space={SPACE!r} has no variant 'smal'; allowed: 'small'" in err, err
  assert not (tmp_path / "tune").exists()


def test_cli_space_with_a_category_the_config_refuses(tmp_path, capsys):
  path = tmp_path / "space.py"
  path.write_text(
    "from jaxflow.tuning import space\n\n"
    "def get_space():\n  return space.Space(space.categorical('optim.name', ['adam', 'lion']))\n"
  )
  assert _cli(f"--space={path}", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert (
    "space parameter 'optim.name': value 'lion' is refused by the config: "
    "config.optim.name='lion' is not known; allowed: " in err
  )
  assert err.count("\n") == 1 and not (tmp_path / "tune").exists()


def test_cli_space_naming_an_unknown_field(tmp_path, capsys):
  path = tmp_path / "space.py"
  path.write_text(
    "from jaxflow.tuning import space\n\n"
    "def get_space():\n  return space.Space(space.log_uniform('optim.lrr', 1e-4, 1e-1))\n"
  )
  assert _cli(f"--space={path}", f"--workdir={tmp_path / 'tune'}") == 2
  err = capsys.readouterr().err
  assert "space parameter 'optim.lrr' is not a config field" in err and err.count("\n") == 1
  assert not (tmp_path / "tune").exists()
  assert cli.main(["jaxflow", "tune", "--help"]) == 0
  assert "--early_stop" in capsys.readouterr().out


@pytest.mark.slow
def test_real_grouped_trials_with_early_stopping_on_the_digits_mlp(tmp_path):
  """Trials that differ in lr and dropout train as one vmapped program, each in a normal workdir, and
  give what the same config trained alone gives; probes' values come from their metrics.jsonl."""
  space = S.Space(S.log_uniform("optim.lr", 1e-3, 3e-2), S.uniform("model.dropout_rate", 0.0, 0.3))
  config = tiny("train.epochs=4")
  report = jaxflow.tune(
    config, str(tmp_path / "tune"), space=space, method="sobol", trials=6, batch=2, early_stop="median"
  )
  assert report["settings"]["rungs"] == [1, 4]
  for pair in (report["trials"][i : i + 2] for i in range(0, 6, 2)):  # each round of two trains as one program ...
    both = len({t["status"] for t in pair}) == 1
    for t in pair:  # ... and its last rung too, unless its partner was stopped at the probe
      assert t["group"] == (2 if both or t["status"] == "stopped" else 1), pair
  assert report["counts"]["completed"] + report["counts"]["stopped"] == 6 and report["counts"]["completed"] >= 3
  for t in report["trials"]:
    probe = tmp_path / "tune" / t["rungs"][0]["workdir"]
    eval_accuracy = [
      json.loads(line)["accuracy"] for line in open(probe / "metrics.jsonl") if json.loads(line)["split"] == "eval"
    ]
    assert len(eval_accuracy) == 1 and t["rungs"][0]["value"] == eval_accuracy[-1]
    assert json.load(open(probe / "config.json"))["config"]["train"]["epochs"] == 1
  # A grouped trial equals its config trained alone.
  t = next(t for t in report["trials"] if t["status"] == "completed")
  alone = loop.train_and_evaluate(trials.trial_config(config, space, t["params"]), str(tmp_path / "alone"), quiet=True)
  grouped = json.load(open(tmp_path / "tune" / t["workdir"] / "summary.json"))
  assert alone["final"]["eval"]["loss"] == pytest.approx(grouped["final"]["eval"]["loss"], rel=1e-4)
  assert alone["final"]["eval"]["accuracy"] == t["value"]
  # Not bitwise (best_config.py and the README say so): the parameters agree to float rounding.
  diff = max_param_diff(latest_params(str(tmp_path / "alone")), latest_params(str(tmp_path / "tune" / t["workdir"])))
  print(f"max |param difference| grouped vs alone: {diff:.3g}")
  assert diff <= 1e-5
