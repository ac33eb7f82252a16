"""The `jaxflow` command: help, bad input (exit 2, one line, nothing written), a real run, a real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from jaxflow import cli
from tests.conftest import ROOT, config_path

JAXFLOW = os.path.join(os.path.dirname(sys.executable), "jaxflow")
MLP = config_path("digits_mlp.py")
CNN = config_path("digits_cnn.py")


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
  return subprocess.run([JAXFLOW, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_help_lists_verbs_and_flags(capsys):
  assert cli.main(["jaxflow", "--help"]) == 0
  assert "train" in capsys.readouterr().out
  assert cli.main(["jaxflow", "train", "--help"]) == 0
  out = capsys.readouterr().out
  assert "--workdir" in out and "--config" in out and "--quiet" in out


def test_unknown_verb(capsys):
  assert cli.main(["jaxflow", "fly"]) == 2
  assert "unknown verb 'fly'; allowed: train" in capsys.readouterr().err


@pytest.mark.parametrize(
  "override, expected",
  [
    (
      "--config.model.name=transformer",
      "config.model.name='transformer' is not known; allowed: cnn, gat, gcn, graph_network, mlp, rnn, stack",
    ),
    ("--config.optim.name=lion", "config.optim.name='lion' is not known; allowed: adagrad, adam, adamw"),
    ("--config.loss=hinge", "config.loss='hinge' is not known; allowed: bce, cross_entropy, focal, mae, mse"),
    (
      "--config.loss=bce",
      "config.loss='bce' does not fit problem.kind='multiclass'; allowed: cross_entropy, focal, mse, mae",
    ),
    ("--config.model.activation=softsign", "config.model.activation='softsign' is not known; allowed: gelu"),
    ("--config.optim.schedule=cyclic", "config.optim.schedule='cyclic' is not known; allowed: constant, cosine"),
    ("--config.data.name=no_such_dataset", "config.data.name"),
    ("--config.optim.lr=-0.1", "config.optim.lr=-0.1 must be > 0"),
    ("--config.train.batch_size=0", "config.train.batch_size=0 must be > 0"),
    ("--config.train.epochs=0", "config.train.epochs=0 must be > 0"),
    (
      "--config.train.batch_size=5000",
      "config.train.batch_size=5000 is larger than split 'train' of 'digits' (1437 examples); allowed: 1..1437",
    ),
    ("--config.train.epochs=abc", "config.train.epochs"),
    (
      "--config.problem.input_shape=(28,28,1)",
      "config.problem.input_shape=(28, 28, 1) does not fit dataset 'digits': feature 'image' has shape (8, 8, 1)",
    ),
    (
      "--config.problem.num_classes=3",
      "config.problem.num_classes=3 does not fit dataset 'digits': label 'label' has 10 classes",
    ),
    ("--config.problem.kind=binary", "set config.problem.positive_labels"),
    (
      "--config.problem.kind=ranking",
      "config.problem.kind='ranking' is not known; allowed: binary, multiclass, regression",
    ),
    ("--config.data.eval_split=validation", "config.data.eval_split='validation' is not a split of digits; allowed:"),
    ("--config.no_such_field=1", "no_such_field"),
  ],
)
def test_bad_config_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, override, expected):
  workdir = tmp_path / "run"
  code = cli.main(["jaxflow", "train", f"--config={MLP}", override, f"--workdir={workdir}"])
  err = capsys.readouterr().err
  assert code == 2
  assert err.count("\n") == 1 and err.startswith("jaxflow train: error: ")
  assert expected in err
  assert not workdir.exists()


def test_missing_flags(tmp_path, capsys):
  assert cli.main(["jaxflow", "train", f"--workdir={tmp_path / 'w'}"]) == 2
  assert "--config is required" in capsys.readouterr().err
  assert cli.main(["jaxflow", "train", f"--config={MLP}"]) == 2
  assert "--workdir is required" in capsys.readouterr().err
  assert cli.main(["jaxflow", "train", "--config=configs/nope.py", f"--workdir={tmp_path / 'w'}"]) == 2
  assert "nope.py" in capsys.readouterr().err
  assert not (tmp_path / "w").exists()


SPLIT_SYNTAX = "allowed: a split name, NAME[FROM:TO] with FROM and TO example indices or percents in [-100%, 100%]"
# (the arguments after --config=MLP, what stderr's one line says)
INPUTS_THAT_ESCAPED = [
  (
    ["--config.model.widths=(32,)", "--config.model.widths=(64,)"],
    "config.model.widths is given twice (--config.model.widths=(32,) --config.model.widths=(64,)); "
    "give each field once",
  ),
  (["--config.optim.lr=0.1", "--config.optim.lr=0.2"], "config.optim.lr is given twice"),
  (["--config.optim.lrr=0.1"], "config.optim.lrr is not a config field; did you mean optim.lr?"),
  (["--config.nope.x=1"], "config.nope.x is not a config field; the config has: audit, checkpoint, class_weights"),
  (
    ["--config.data.train_split=train[:0%]"],
    "config.data.train_split='train[:0%]' selects no examples (split 'train' of 'digits' has 1437); "
    "allowed: a slice that selects at least one example, e.g. 'train[:80%]'.",
  ),
  (
    ["--config.data.train_split=train[:80%"],
    f"config.data.train_split='train[:80%' is not a valid split of dataset 'digits'; {SPLIT_SYNTAX}",
  ),
  (
    ["--config.data.eval_split=test[50%:10%]"],
    "config.data.eval_split='test[50%:10%]' selects no examples (split 'test' of 'digits' has 360)",
  ),
  (
    ["--config.data.train_split=train[:5000]"],
    "config.data.train_split='train[:5000]' reaches beyond split 'train' of dataset 'digits', which has 1437 examples",
  ),
]


def _one_line_refusal(code: int, err: str, prog: str, says: str) -> None:
  assert code == 2, err
  assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
  assert says in err, err
  assert "Traceback" not in err and "\\n" not in err


@pytest.mark.parametrize("args, says", INPUTS_THAT_ESCAPED, ids=[" ".join(a) for a, _ in INPUTS_THAT_ESCAPED])
def test_inputs_that_escaped_are_one_line_refusals(tmp_path, capsys, args, says):
  workdir = tmp_path / "run"
  code = cli.main(["jaxflow", "train", f"--config={MLP}", *args, f"--workdir={workdir}"])
  _one_line_refusal(code, capsys.readouterr().err, "jaxflow train", says)
  assert not workdir.exists()


CONFIG_FILES = {
  "returns_dict.py": ("def get_config():\n  return {'model': {}}\n", "get_config() returned a dict, not an"),
  "returns_none.py": ("def get_config():\n  pass\n", "get_config() returned None (a missing return statement?)"),
  "no_get_config.py": ("CONFIG = 1\n", "has no get_config(); define one that returns an ml_collections.ConfigDict"),
  "raises.py": ("def get_config():\n  raise KeyError('widths')\n", "get_config() raised KeyError: widths"),
}


@pytest.mark.parametrize("name", sorted(CONFIG_FILES))
def test_a_broken_config_file_is_named_with_its_problem(tmp_path, capsys, name):
  text, says = CONFIG_FILES[name]
  path = tmp_path / name
  path.write_text(text)
  workdir = tmp_path / "run"
  code = cli.main(["jaxflow", "train", f"--config={path}", "--config.optim.lr=0.1", f"--workdir={workdir}"])
  err = capsys.readouterr().err
  _one_line_refusal(code, err, "jaxflow train", f"config file {str(path)!r}")
  assert says in err and "overrides" not in err, err
  assert not workdir.exists()


@pytest.mark.parametrize(
  "config, says",
  [
    (f"{MLP}:bogus", f"config file {MLP!r} has no variant 'bogus'; allowed: 'test' (or none, for the file's default)"),
    (config_path("base.py") + ":test", "takes no variant (it declares no VARIANTS); drop ':test'"),
  ],
)
def test_an_undeclared_variant_is_refused(tmp_path, capsys, config, says):
  code = cli.main(["jaxflow", "train", f"--config={config}", f"--workdir={tmp_path / 'run'}"])
  _one_line_refusal(code, capsys.readouterr().err, "jaxflow train", says)
  assert not (tmp_path / "run").exists()


def test_the_console_script_refuses_with_one_line(tmp_path):
  """The installed `jaxflow` command, in a process of its own: exit 2 and stderr's one line, no traceback."""
  for args, says in [INPUTS_THAT_ESCAPED[0], INPUTS_THAT_ESCAPED[2], ([], "has no variant 'bogus'")]:
    config = f"--config={MLP}:bogus" if not args else f"--config={MLP}"
    proc = run_cli("train", config, *args, f"--workdir={tmp_path / 'run'}", timeout=120)
    _one_line_refusal(proc.returncode, proc.stderr, "jaxflow train", says)
    assert proc.stdout == ""
  assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_subprocess_writes_every_workdir_file(tmp_path):
  workdir = tmp_path / "cnn"
  proc = run_cli(
    "train",
    f"--config={CNN}:test",
    "--config.model.conv_features=(8,)",
    "--config.model.widths=(16,)",
    f"--workdir={workdir}",
  )
  assert proc.returncode == 0, proc.stderr
  printed = json.loads(proc.stdout.strip().splitlines()[-1])
  assert set(printed["eval"]) == {"loss", "accuracy", "balanced_accuracy", "macro_f1"}
  assert sorted(os.listdir(workdir)) == [
    ".jaxflow.lock",
    "checkpoints",
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "tb",
  ]
  summary = json.loads((workdir / "summary.json").read_text())
  assert summary["steps"] == 2 * (1437 // 64) == printed["steps"]
  assert summary["steps_per_dispatch"] == 1  # conv model on CPU: one step per dispatch
  assert len((workdir / "metrics.jsonl").read_text().splitlines()) >= 4
  assert any(name.startswith("events.out.tfevents") for name in os.listdir(workdir / "tb"))
  assert _checkpoint_steps(workdir) == [44]  # the digits configs save by time and at the end
  assert len(_checkpoint_steps(workdir, "best")) == 1


def _checkpoint_steps(workdir, which: str = "latest") -> list[int]:
  directory = workdir / "checkpoints" / which
  if not directory.exists():
    return []
  return sorted(
    int(s) for s in os.listdir(directory) if s.isdigit() and (directory / s / "commit_success.txt").exists()
  )


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_params(tmp_path, capsys):
  """A real SIGKILL mid-training, then the same command again: the same params_sha256 as no kill. The CNN trains
  one step per dispatch on a CPU, the path tests/reliability/test_kills.py (fused MLP epochs) does not kill."""
  # 6 epochs: the kill follows the second committed checkpoint (epoch 2's, seen at most an epoch later), so at
  # least 3 epochs (~0.3 s each here) are left for it to land before the end.
  args = [
    f"--config={CNN}",
    "--config.train.epochs=6",
    "--config.checkpoint.every_epochs=1",
    "--config.model.conv_features=(16,)",
    "--config.model.widths=(32,)",
    "--quiet",
  ]
  # The uninterrupted run in this process (cli.main, what the console script calls): what is tested is the
  # killed process and its rerun, whose parameters must equal these bitwise whichever process computed them.
  assert cli.main(["jaxflow", "train", *args, f"--workdir={tmp_path / 'straight'}"]) == 0, capsys.readouterr().err
  expected = json.loads((tmp_path / "straight" / "summary.json").read_text())

  workdir = tmp_path / "killed"
  proc = subprocess.Popen(
    [JAXFLOW, "train", *args, f"--workdir={workdir}"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
  )
  try:
    deadline = time.monotonic() + 120
    while len(_checkpoint_steps(workdir)) < 2 and proc.poll() is None and time.monotonic() < deadline:
      time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
  finally:
    if proc.poll() is None:
      proc.kill()
  assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
  assert not (workdir / "summary.json").exists()
  saved = _checkpoint_steps(workdir)
  assert saved and max(saved) < expected["steps"]

  capsys.readouterr()
  # The rerun in this process too: it must only resume and finish, which needs no process of its own.
  assert cli.main(["jaxflow", "train", *args, f"--workdir={workdir}"]) == 0, capsys.readouterr().err
  summary = json.loads((workdir / "summary.json").read_text())
  assert 0 < summary["resumed_from_step"] < expected["steps"]
  assert summary["steps"] == expected["steps"]
  assert summary["params_sha256"] == expected["params_sha256"]
  evals = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  assert [r["epoch"] for r in evals if r["split"] == "eval"] == list(range(1, 7))


@pytest.mark.slow
def test_non_finite_loss_exits_1_naming_the_step(tmp_path, capsys):
  """In this process (cli.main, what the console script calls): the exit status and stderr's last line are
  what is checked, and they are the same without a process of its own."""
  code = cli.main(
    [
      "jaxflow",
      "train",
      f"--config={MLP}",
      "--config.model.widths=(16,)",
      "--config.train.epochs=4",
      "--config.optim.name=sgd",
      "--config.optim.lr=0.01",
      "--config.optim.schedule=exponential",
      "--config.optim.decay_rate=1e12",
      "--config.optim.warmup_steps=0",
      "--config.train.stop_on_divergence=False",  # the NaN path (divergence is stopped first by default)
      "--config.checkpoint.every_epochs=1",
      f"--workdir={tmp_path / 'nan'}",
    ]
  )
  err = capsys.readouterr().err
  assert code == 1, err
  last = err.strip().splitlines()[-1]
  assert (
    last.startswith("jaxflow train: error: non-finite training loss")
    and "at step" in last
    and "Last good checkpoint: step" in last
  )
