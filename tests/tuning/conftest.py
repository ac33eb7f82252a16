"""Shared by the tune tests: the digits MLP study's config and space, and a fake trainer for the study loop
(fast: no training; its final accuracy is a known function of lr and epochs)."""

from __future__ import annotations

import json
import math
import os

import pytest

import jaxflow
from jaxflow.run import train as loop
from jaxflow.tuning import space as S
from jaxflow.workdir import prepare_workdir
from tests.conftest import config_path, merge_overrides

MLP = config_path("digits_mlp.py")
SPACE = os.path.join(os.path.dirname(MLP), "spaces", "digits_mlp.py")
TINY = ["model.widths=(32,)", "train.epochs=2", "train.histogram_every=1000", "train.class_report_every=1000"]
LR_SPACE = S.Space(S.log_uniform("optim.lr", 1e-4, 1e-1))


def tiny(*overrides):
  return jaxflow.load_config(MLP, merge_overrides(*TINY, *overrides))


class FakeLoop:
  """Stands in for loop.train_and_evaluate / train_group: writes config.json and a summary whose final
  accuracy is a known function of lr and epochs; a run above `crash_above` raises like a crashed run would."""

  def __init__(self, crash_above: float = 1.0):
    self.runs, self.groups, self.crash_above = [], [], crash_above

  def value(self, cfg) -> float:
    return 0.99 - 0.1 * abs(math.log10(cfg.optim.lr) + 2.5) - 0.5 / cfg.train.epochs

  def train_and_evaluate(self, cfg, workdir, *, quiet=True, compiled=None):
    if cfg.optim.lr > self.crash_above:
      raise loop.NonFiniteLossError("non-finite training loss nan at step 3 (epoch 1); stopped.")
    prepare_workdir(workdir, cfg)
    self.runs.append((workdir, cfg.train.epochs))
    v = self.value(cfg)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:  # a learning curve ending at v
      for e in range(1, cfg.train.epochs + 1):
        f.write(
          json.dumps(
            {"step": e, "epoch": e, "split": "eval", "accuracy": v - 0.05 * (cfg.train.epochs - e) / cfg.train.epochs}
          )
          + "\n"
        )
    summary = {
      "status": "completed",
      "final": {"eval": {"accuracy": v, "loss": 1 - v}},
      "best": {"value": v, "epoch": cfg.train.epochs},
    }
    with open(os.path.join(workdir, "summary.json"), "w") as f:
      json.dump(summary, f)
    return summary

  def train_group(self, cfgs, workdirs, *, quiet=True, compiled=None):
    self.groups.append(len(cfgs))
    return [self.train_and_evaluate(c, w) for c, w in zip(cfgs, workdirs)]


@pytest.fixture
def fake(monkeypatch):
  f = FakeLoop()
  monkeypatch.setattr(loop, "train_and_evaluate", f.train_and_evaluate)
  monkeypatch.setattr(loop, "train_group", f.train_group)
  return f
