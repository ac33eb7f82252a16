"""The training loop end to end, in process: workdir contract, TensorBoard, resume, stopping rules."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import warnings

import jax
import numpy as np
import pytest

import jaxflow
from jaxflow.run.train import NonFiniteLossError
from jaxflow.training import checkpoints, programs
from jaxflow.training import state as state_lib
from tests.conftest import config_path

TINY = [
  "model.widths=(32,)",
  "train.batch_size=128",
  "train.log_every=5",
  "checkpoint.every_epochs=1",
  "train.histogram_every=1",
]


def tiny_config(*overrides: str):
  return jaxflow.load_config(config_path("digits_mlp.py"), [*TINY, *overrides])


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
  """One 3-epoch MLP run shared by the tests that only read its workdir."""
  workdir = str(tmp_path_factory.mktemp("mlp_run"))
  config = tiny_config("train.epochs=3", "checkpoint.keep=5", "train.deterministic=True")
  summary = jaxflow.train(config, workdir, quiet=True)
  return workdir, config, summary


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


def test_workdir_contract(mlp_run):
  workdir, config, summary = mlp_run
  assert sorted(os.listdir(workdir)) == [
    ".jaxflow.lock",
    "checkpoints",
    "config.json",
    "metrics.jsonl",
    "summary.json",
    "tb",
  ]
  with open(os.path.join(workdir, "config.json")) as f:
    saved = json.load(f)
  assert saved["hash"] == jaxflow.config.config_hash(config)
  assert saved["config"]["optim"]["lr"] == config.optim.lr
  with open(os.path.join(workdir, "summary.json")) as f:
    assert json.load(f) == json.loads(json.dumps(summary))
  steps_per_epoch = 1437 // 128
  assert summary["steps"] == 3 * steps_per_epoch
  assert summary["epochs_completed"] == 3
  assert summary["status"] == "completed"
  assert 0.0 <= summary["final"]["eval"]["accuracy"] <= 1.0
  assert summary["best"]["metric"] == "eval/accuracy"
  assert summary["best"]["value"] >= summary["final"]["eval"]["accuracy"] - 1e-12
  assert summary["compile_seconds"] > 0 and summary["wall_seconds"] > summary["compile_seconds"]
  assert summary["examples_per_second"] > 0
  assert summary["device"]["count"] == jax.device_count()
  # train.deterministic on a CPU: nothing to set, and the summary says why (bitwise repeatability: the
  # same-seed-twice tests of tests/seeds and tests/reliability).
  assert summary["determinism"]["requested"] is True and summary["determinism"]["platform"] == "cpu"
  assert summary["determinism"]["flags"] == [] and "XLA:CPU" in summary["determinism"]["note"]
  assert summary["versions"]["jax"] == jax.__version__
  assert summary["num_params"] == 64 * 32 + 32 + 32 * 10 + 10
  assert len(summary["params_sha256"]) == 64


def test_metrics_jsonl(mlp_run):
  workdir, _, summary = mlp_run
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  evals = [r for r in records if r["split"] == "eval"]
  trains = [r for r in records if r["split"] == "train"]
  assert [r["epoch"] for r in evals] == [1, 2, 3]
  assert [r["step"] for r in evals] == [11, 22, 33]
  # log_every=5 with a whole epoch (11 steps) per dispatch: one train record per epoch end.
  assert [r["step"] for r in trains] == [11, 22, 33]
  assert set(trains[0]) >= {"loss", "accuracy", "lr", "grad_norm"}
  assert evals[-1]["accuracy"] == pytest.approx(summary["final"]["eval"]["accuracy"])


def test_tensorboard_reads_back(mlp_run):
  from tensorboard.backend.event_processing import event_accumulator

  workdir, _, _ = mlp_run
  acc = event_accumulator.EventAccumulator(
    os.path.join(workdir, "tb"), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.HISTOGRAMS: 0}
  )
  acc.Reload()
  tags = acc.Tags()
  assert {"train/loss", "train/accuracy", "train/lr", "train/grad_norm", "eval/loss", "eval/accuracy"} <= set(
    tags["scalars"]
  )
  assert {"params/dense_0/kernel", "params/head/bias"} <= set(tags["histograms"])
  # Step 0 is the initialization (the "before" picture of a blow-up in epoch 1), then every epoch's end.
  assert [h.step for h in acc.Histograms("params/head/bias")] == [0, 11, 22, 33]
  assert acc.Histograms("params/head/bias")[0].histogram_value.max == 0.0  # biases start at zero
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  eval_acc = [r["accuracy"] for r in records if r["split"] == "eval"]
  tb_acc = [e.value for e in acc.Scalars("eval/accuracy")]
  np.testing.assert_allclose(tb_acc, eval_acc, rtol=1e-6)
  assert [e.step for e in acc.Scalars("eval/accuracy")] == [11, 22, 33]


def test_checkpoints_keep_latest_and_best(mlp_run):
  workdir, config, summary = mlp_run
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=5)
  try:
    assert ckpt.all_steps() == [11, 22, 33]
    assert ckpt.best_step() == summary["best"]["step"]
    assert ckpt.all_steps(checkpoints.BEST) == [summary["best"]["step"]]
  finally:
    ckpt.close()


def test_same_config_same_params(mlp_run, tmp_path):
  workdir, config, summary = mlp_run
  again = jaxflow.train(config, str(tmp_path / "again"), quiet=True)
  assert again["params_sha256"] == summary["params_sha256"]


def _error_hooks() -> tuple:
  """What decides whether an error or warning reaches the user: the process's hooks and filters."""
  return sys.unraisablehook, sys.excepthook, list(logging.getLogger("asyncio").filters), list(warnings.filters)


def test_resume_matches_uninterrupted(mlp_run, tmp_path):
  """Drop the last epoch's checkpoint (as a crash would) and rerun: same final parameters."""
  workdir, config, summary = mlp_run
  copy = str(tmp_path / "resumed")
  shutil.copytree(workdir, copy)
  os.remove(os.path.join(copy, "summary.json"))
  shutil.rmtree(os.path.join(copy, "checkpoints", "latest", str(summary["steps"])))
  with warnings.catch_warnings():  # the process's own filter, identical to the one a restore adds, is kept
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    warnings.simplefilter("default", DeprecationWarning)
    hooks = _error_hooks()
    resumed = jaxflow.train(config, copy, quiet=True)
    assert _error_hooks() == hooks  # a whole restore mutes nothing (the aborted-read filters are for damaged ones)
  assert resumed["resumed_from_step"] == 22
  assert resumed["params_sha256"] == summary["params_sha256"]
  records = read_jsonl(os.path.join(copy, "metrics.jsonl"))
  assert [r["step"] for r in records if r["split"] == "eval"] == [11, 22, 33]  # no duplicates


def test_rerun_of_finished_run_trains_nothing(mlp_run):
  workdir, config, summary = mlp_run
  rerun = jaxflow.train(config, workdir, quiet=True)
  assert rerun["steps"] == summary["steps"]
  assert rerun["resumed_from_step"] == summary["steps"]
  assert rerun["params_sha256"] == summary["params_sha256"]


def test_different_config_refuses_resume_unless_overwrite(mlp_run, tmp_path):
  workdir, config, _ = mlp_run
  copy = str(tmp_path / "copy")
  shutil.copytree(workdir, copy)
  other = tiny_config("train.epochs=3", "checkpoint.keep=5", "optim.lr=0.01")
  with pytest.raises(jaxflow.ConfigError, match=r"optim.lr: 0.003 -> 0.01.*overwrite"):
    jaxflow.train(other, copy, quiet=True)
  other.train.overwrite = True
  summary = jaxflow.train(other, copy, quiet=True)
  assert summary["resumed_from_step"] is None
  records = read_jsonl(os.path.join(copy, "metrics.jsonl"))
  assert [r["step"] for r in records if r["split"] == "eval"] == [11, 22, 33]


def test_seed_streams_change_results(mlp_run, tmp_path):
  _, config, summary = mlp_run
  pinned = tiny_config("train.epochs=3", "checkpoint.keep=5", "seeds.init=123")
  other = jaxflow.train(pinned, str(tmp_path / "init123"), quiet=True)
  assert other["params_sha256"] != summary["params_sha256"]


def test_early_stopping_restores_best(tmp_path):
  """A learning rate too small to move accuracy: stop after `patience` flat epochs, end on the best."""
  config = tiny_config(
    "train.epochs=20",
    "optim.lr=1e-9",
    "optim.schedule=constant",
    "optim.warmup_steps=0",
    "train.early_stopping.enabled=True",
    "train.early_stopping.patience=2",
    "train.early_stopping.min_delta=0.01",
  )
  workdir = str(tmp_path / "es")
  summary = jaxflow.train(config, workdir, quiet=True)
  assert summary["stopped_early"] is True
  assert summary["epochs_completed"] == 3
  assert summary["steps"] == 33
  assert summary["restored_best_step"] == 11  # flat accuracy: the first epoch stays the best
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=3)
  try:
    assert ckpt.best_step() == summary["best"]["step"] < summary["steps"]
    best_params = ckpt.read_params(ckpt.best_step(), which=checkpoints.BEST)
  finally:
    ckpt.close()
  assert state_lib.params_sha256(best_params) == summary["params_sha256"]
  records = read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  best_eval = max(r["accuracy"] for r in records if r["split"] == "eval")
  assert summary["final"]["eval"]["accuracy"] == pytest.approx(best_eval)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  """An lr that grows 1e12x per epoch: epoch 1 is fine and checkpointed, then the loss blows up."""
  config = tiny_config(
    "train.epochs=5",
    "optim.name=sgd",
    "optim.lr=0.01",
    "optim.schedule=exponential",
    "optim.decay_rate=1e12",
    "optim.warmup_steps=0",
    "train.stop_on_divergence=False",  # the NaN path (divergence is stopped first by default)
  )
  workdir = str(tmp_path / "nan")
  with pytest.raises(
    NonFiniteLossError, match=r"non-finite training loss (nan|inf) at step \d+ \(epoch [2-5]\)"
  ) as info:
    jaxflow.train(config, workdir, quiet=True)
  assert "Last good checkpoint: step" in str(info.value)
  assert not os.path.exists(os.path.join(workdir, "summary.json"))
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=3)
  try:
    steps = ckpt.all_steps()
  finally:
    ckpt.close()
  assert steps and all(s % 11 == 0 for s in steps)
  bad_step = int(str(info.value).split(" at step ")[1].split()[0])
  assert max(steps) < bad_step


@pytest.mark.parametrize(
  "overrides, expected",
  [
    # A whole epoch per dispatch: one fused program (the final evaluation reuses the last epoch's).
    ((), {"init": 1, "train_epoch": 1, "eval_chunk": 0, "train_chunk": 0, "epoch_indices": 0}),
    # 4 steps per dispatch over 11-step epochs: chunks of 4, 4, 3 -> two train_chunk programs.
    (
      ("train.steps_per_dispatch=4",),
      {"init": 1, "train_epoch": 0, "eval_chunk": 1, "train_chunk": 2, "epoch_indices": 1},
    ),
  ],
)
def test_each_program_compiles_once(tmp_path, caplog, overrides, expected):
  """Three epochs: nothing recompiles between epochs."""
  import logging

  config = tiny_config("train.epochs=3", *overrides)
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"):
      jaxflow.train(config, str(tmp_path / "compiles"), quiet=True)
  finally:
    jax.config.update("jax_log_compiles", False)
  compiled = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
  counts = {name: sum(f"jit({name})" in m for m in compiled) for name in expected}
  assert counts == expected, compiled


@pytest.mark.parametrize(
  "overrides, metric",
  [
    (("problem.kind=binary", "problem.positive_labels=(0,1,2,3,4)"), "accuracy"),
    (("problem.kind=binary", "problem.positive_labels=(0,1,2,3,4)", "loss=mse"), "accuracy"),
    (("problem.kind=regression", "train.monitor=eval/mae", "train.monitor_mode=min"), "mae"),
    (("problem.kind=regression", "loss=mae", "train.monitor=eval/loss", "train.monitor_mode=min"), "mae"),
  ],
)
def test_problem_kinds_train(tmp_path, overrides, metric):
  """The head, loss and metrics follow problem.kind; each kind learns something in 10 epochs."""
  config = tiny_config("train.epochs=10", "optim.warmup_steps=0", "optim.schedule=constant", *overrides)
  summary = jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  final = summary["final"]["eval"]
  assert set(final) == (
    {"loss", "accuracy", "balanced_accuracy", "macro_f1"} if metric == "accuracy" else {"loss", "mae"}
  )
  if metric == "accuracy":  # binary: a 2 x 2 confusion matrix over the whole test split
    assert np.array(summary["final"]["confusion"]).shape == (2, 2) and np.sum(summary["final"]["confusion"]) == 360
  assert summary["num_params"] == 64 * 32 + 32 + 32 * 1 + 1  # a one-unit head
  if metric == "accuracy":
    assert final["accuracy"] > 0.8  # digits 0-4 vs 5-9; chance is ~0.5
  else:
    # Predicting the digit's value; the best constant (the median, 4.5) has MAE 2.5 on balanced labels.
    assert final["mae"] < 0.9 * 2.5


def test_no_progress_bar_when_not_a_terminal(tmp_path, capsys):
  """Captured output is not a terminal: no bar anywhere, the epoch's line on stderr (see test_progress.py)."""
  jaxflow.train(tiny_config("train.epochs=1"), str(tmp_path / "quiet"))
  captured = capsys.readouterr()
  assert captured.out == "" and "step/s" not in captured.err and "it/s" not in captured.err
  assert [line for line in captured.err.splitlines() if line.startswith("epoch ")][-1].startswith("epoch 1/1  ")


def test_dispatching_ahead_changes_no_result(tmp_path):
  """Epoch e+1 is dispatched before the host has logged and checkpointed epoch e: the same bits as waiting."""
  ahead = jaxflow.train(tiny_config("train.epochs=4"), str(tmp_path / "ahead"), quiet=True)
  waiting = jaxflow.train(
    tiny_config("train.epochs=4", "train.dispatch_ahead=False"), str(tmp_path / "wait"), quiet=True
  )
  assert ahead["steps_per_dispatch"] == ahead["steps"] // 4  # fused epochs: the path that dispatches ahead
  assert ahead["params_sha256"] == waiting["params_sha256"] and ahead["final"]["eval"] == waiting["final"]["eval"]


def _records(workdir: str) -> list[dict]:
  return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in open(f"{workdir}/metrics.jsonl")]


def test_an_epoch_end_beside_the_next_epoch_changes_no_result(tmp_path, monkeypatch):
  """Chunked epochs (a conv model on CPU: one step per dispatch): each epoch's end (its last train log,
  evaluation, records, the monitor, checkpoints) runs on a second thread while the next epoch's steps run.
  With an early stop at epoch 2's end, epoch 3 has been dispatched meanwhile and is dropped: parameters, every
  record in its order and the checkpoints kept are those of the loop that waits; also where chunks donate
  their state (accelerators, large states on CPU; forced here), so the next epoch trains on a copy."""
  cnn = [
    "model.conv_features=(4,)",
    "model.widths=(16,)",
    "train.epochs=4",
    "train.log_every=7",  # log points inside an epoch: the next epoch's first one waits for the end
    "checkpoint.every_epochs=1",
    "train.early_stopping.enabled=True",
    "train.early_stopping.patience=1",
    "train.early_stopping.min_delta=0.5",  # no epoch improves the accuracy by 0.5: stops at epoch 2
  ]
  runs = {}
  for name, ahead in (("waiting", False), ("ahead", True), ("ahead_donating", True)):
    if name == "ahead_donating":
      monkeypatch.setattr(programs, "donates_state", lambda state: True)
    config = jaxflow.load_config(config_path("digits_cnn.py"), [*cnn, f"train.dispatch_ahead={ahead}"])
    runs[name] = jaxflow.train(config, str(tmp_path / name), quiet=True)
  waiting = runs["waiting"]
  assert waiting["steps_per_dispatch"] == 1 and waiting["stopped_early"] and waiting["epochs_completed"] == 2
  assert waiting["steps"] == 2 * (1437 // 64)
  for name in ("ahead", "ahead_donating"):
    assert runs[name]["steps"] == waiting["steps"] and runs[name]["epochs_completed"] == 2, name
    assert runs[name]["params_sha256"] == waiting["params_sha256"] and runs[name]["final"] == waiting["final"], name
    assert _records(str(tmp_path / name)) == _records(str(tmp_path / "waiting")), name
    kept = [sorted(os.listdir(tmp_path / n / "checkpoints" / "latest")) for n in (name, "waiting")]
    assert kept[0] == kept[1], name
