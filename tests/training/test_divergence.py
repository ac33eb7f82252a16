"""A run that diverges without NaN: flagged in summary.json and the final line, stopped by default."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator

from jaxflow.training import divergence
from jaxflow.training.save_policy import SavePolicy
from jaxflow.workdir import read_metrics
from tests.reliability import runs


def test_trend_verdicts():
  assert divergence.trend(2.3, 0.05, 2.3)["verdict"] == "decreased"
  assert divergence.trend(2.3, 2.25, 2.4)["verdict"] == "did not decrease"  # above 90% of the start
  assert divergence.trend(2.3, 5369.0, 1e4)["verdict"] == "diverged"
  assert divergence.trend(2.3, float("inf"), float("inf"))["verdict"] == "diverged"
  assert divergence.trend(None, 1.0, 1.0)["verdict"] == "unknown"  # a run resumed from an older checkpoint


def test_is_diverging_is_relative_to_the_first_step():
  assert divergence.is_diverging(23.1, 2.3) and not divergence.is_diverging(22.9, 2.3)
  assert not divergence.is_diverging(1e9, None)
  losses = divergence.per_step_losses([{"loss": np.array([4.0, 9.0]), "count": np.array([2.0, 3.0])}])
  np.testing.assert_allclose(losses, [2.0, 3.0])


def test_save_policy_loses_at_most_every_seconds_or_one_epoch():
  clock = {"t": 0.0}
  policy = SavePolicy(0, 60.0, clock=lambda: clock["t"])
  saves = []
  for epoch in range(1, 200):  # 7-second epochs: saves at most 60 s apart, each as late as it can be
    clock["t"] += 7.0
    if policy.epoch_ended(epoch):
      saves.append(clock["t"])
      policy.saved(clock["t"])
  gaps = np.diff([0.0, *saves])
  assert gaps.max() <= 60.0 and gaps.min() >= 60.0 - 7.0
  slow = SavePolicy(0, 60.0, clock=lambda: clock["t"])
  clock["t"] += 90.0  # an epoch longer than every_seconds: every epoch saves
  assert slow.epoch_ended(1)
  assert not SavePolicy(0, None, clock=lambda: 0.0).epoch_ended(1)
  assert SavePolicy(3, None, clock=lambda: 0.0).epoch_ended(3)


def test_save_policy_takes_the_agreed_decision_and_asks_only_with_every_seconds():
  """`agree` (process 0's decision, on several processes) overrides this process's own, once per epoch's end
  when every_seconds reads the clock; never otherwise, so no process pays (or misses) a collective."""
  asked = []

  def agree(decision):  # process 0's decision: the opposite of this one's
    asked.append(decision)
    return not decision

  clock = {"t": 0.0}
  late = SavePolicy(0, 60.0, clock=lambda: clock["t"], agree=agree)
  clock["t"] += 90.0
  assert not late.epoch_ended(1)  # its own clock says save; the agreed decision is not to
  early = SavePolicy(0, 60.0, clock=lambda: clock["t"], agree=agree)
  clock["t"] += 1.0
  assert early.epoch_ended(1)  # its own clock says wait; the agreed decision is to save
  assert asked == [True, False]
  by_epochs = SavePolicy(2, None, clock=lambda: 0.0, agree=agree)
  assert by_epochs.epoch_ended(2) and not by_epochs.epoch_ended(3)
  assert asked == [True, False]


@pytest.mark.slow
def test_a_diverging_run_is_stopped_like_a_nan(tmp_path):
  done = runs.train(tmp_path / "run", "--config.optim.lr=1e6")
  assert done.returncode == 1, done.stderr
  line = done.stderr.strip()
  assert line.count("\n") == 0 and "the run diverged (train.stop_on_divergence); stopped." in line
  assert "more than 10x the first step's" in line
  # The loss that stopped it is logged (a monitor sees the spike), at the step the message names.
  loss, step = float(line.split("training loss ")[1].split()[0]), int(line.split(" at step ")[1].split()[0])
  last = read_metrics(str(tmp_path / "run"), "train")[-1]
  assert last["step"] == step and f"{last['loss']:.4g}" == f"{loss:.4g}"
  acc = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tb"))
  acc.Reload()
  logged = acc.Scalars("train/loss")[-1]
  assert logged.step == step and logged.value == pytest.approx(last["loss"], rel=1e-6)  # float32 in the event


@pytest.mark.slow
def test_a_diverged_run_that_is_not_stopped_says_so(tmp_path):
  done = runs.train(tmp_path / "run", "--config.optim.lr=1e6", "--config.train.stop_on_divergence=False")
  assert done.returncode == 0, done.stderr
  assert "jaxflow train: warning: the training loss diverged" in done.stderr
  assert json.loads(done.stdout.strip().splitlines()[-1])["loss_trend"] == "diverged"
  trend = runs.summary(tmp_path / "run")["loss_trend"]
  assert trend["verdict"] == "diverged" and trend["final"] > 10 * trend["initial"]
