"""Transfer learning: init_from by layer name, frozen layers bitwise unchanged, re-initialized heads,
class subsets; and the one-line errors for what cannot work."""

from __future__ import annotations

import os

import numpy as np
import pytest

import jaxflow
from jaxflow import data
from jaxflow.training import checkpoints
from tests.conftest import config_path

BASE = ["train.epochs=2", "checkpoint.every_epochs=1", "train.batch_size=64"]
WIDTHS = "model.widths=(32,16)"  # given once: config_flags concatenates a tuple flag given twice


def params_of(workdir: str, which: str = checkpoints.LATEST):
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=3)
  try:
    step = ckpt.latest_step() if which == checkpoints.LATEST else ckpt.best_step()
    return ckpt.read_params(step, which=which)
  finally:
    ckpt.close()


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory) -> str:
  workdir = str(tmp_path_factory.mktemp("pretrain"))
  config = jaxflow.load_config(config_path("digits_mlp.py"), [*BASE, WIDTHS, "data.classes=(0,1,2,3,4)"])
  jaxflow.train(config, workdir, quiet=True)
  return workdir


def finetune_config(source: str, *overrides: str):
  defaults = [WIDTHS, "data.classes=(5,6,7,8,9)", "data.train_examples=128", f"init_from={source}"]
  overridden = {o.split("=")[0] for o in overrides}
  kept = [d for d in defaults if d.split("=")[0] not in overridden]
  return jaxflow.load_config(config_path("digits_mlp.py"), [*BASE, *kept, *overrides])


def test_frozen_layers_unchanged_others_trained(pretrained, tmp_path):
  workdir = str(tmp_path / "finetune")
  summary = jaxflow.train(finetune_config(pretrained, "freeze=('dense_0',)", "reinit=('head',)"), workdir, quiet=True)
  assert summary["steps"] == 2 * (128 // 64)  # the subset, not the split
  source = params_of(pretrained, checkpoints.BEST)
  tuned = params_of(workdir)
  for leaf in ("kernel", "bias"):
    np.testing.assert_array_equal(tuned["dense_0"][leaf], source["dense_0"][leaf])  # frozen: bitwise
    assert not np.allclose(tuned["dense_1"][leaf], source["dense_1"][leaf])  # transferred, then trained
  assert not np.allclose(tuned["head"]["kernel"], source["head"]["kernel"])


def test_reinit_head_starts_from_fresh_initialization(pretrained, tmp_path):
  """With every layer frozen but the head, dense layers equal the source and the head differs."""
  workdir = str(tmp_path / "head_only")
  jaxflow.train(
    finetune_config(pretrained, "freeze=('dense',)", "reinit=('head',)", "optim.lr=1e-9"), workdir, quiet=True
  )
  source, tuned = params_of(pretrained, checkpoints.BEST), params_of(workdir)
  np.testing.assert_array_equal(tuned["dense_1"]["kernel"], source["dense_1"]["kernel"])
  # lr 1e-9: the head barely moves, so a difference from the source means it was re-initialized.
  assert np.abs(np.asarray(tuned["head"]["kernel"]) - np.asarray(source["head"]["kernel"])).max() > 0.01


@pytest.mark.parametrize(
  "overrides, message",
  [
    (("model.widths=(64,16)",), r"config.init_from: layers do not match \(dense_0: shapes .*\(64,\)"),
    (("freeze=('conv',)",), r"config.freeze names no layer of the model \(conv\); its layers: dense_0, dense_1, head"),
    (("reinit=('lstm',)",), r"config.reinit names no layer"),
    (("data.classes=(5,12)",), r"config.data.classes=\(5, 12\) must be dataset labels in 0..9"),
  ],
)
def test_transfer_errors(pretrained, tmp_path, overrides, message):
  with pytest.raises(jaxflow.ConfigError, match=message):
    jaxflow.train(finetune_config(pretrained, *overrides), str(tmp_path / "x"), quiet=True)
  assert not (tmp_path / "x").exists()


def test_init_from_without_checkpoints_and_freeze_without_source(tmp_path):
  config = finetune_config(str(tmp_path / "nowhere"))
  with pytest.raises(jaxflow.ConfigError, match="holds no checkpoints"):
    jaxflow.train(config, str(tmp_path / "x"), quiet=True)
  config = jaxflow.load_config(config_path("digits_mlp.py"), [*BASE, WIDTHS, "freeze=('dense_0',)"])
  with pytest.raises(jaxflow.ConfigError, match="config.freeze is set without config.init_from"):
    jaxflow.train(config, str(tmp_path / "x"), quiet=True)


def test_select_examples():
  labels = np.array([5, 0, 7, 5, 9, 1, 5])
  np.testing.assert_array_equal(data.select_examples(labels, classes=(5, 9)), [0, 3, 4, 6])
  np.testing.assert_array_equal(data.select_examples(labels, classes=(5, 9), limit=2), [0, 3])
  np.testing.assert_array_equal(data.select_examples(labels, limit=3), [0, 1, 2])
