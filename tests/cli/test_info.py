"""The verbs that answer questions: --version, list (from the registries), config (every field with its
meaning), and --help with defaults and each verb's own texts."""

from __future__ import annotations

import importlib.metadata

import pytest

from jaxflow import models
from jaxflow.cli.main import main
from jaxflow.data import augment
from jaxflow.models import activations, initializers
from jaxflow.training import losses, optimizers
from tests.conftest import config_path


def run(capsys, *args) -> tuple[int, str, str]:
  code = main(["jaxflow", *args])
  out, err = capsys.readouterr()
  return code, out, err


def test_version(capsys):
  assert run(capsys, "--version") == (0, f"jaxflow {importlib.metadata.version('jaxflow')}\n", "")


def test_list_prints_what_the_registries_hold(capsys):
  code, out, _ = run(capsys, "list")
  listed = dict(line.split(": ", 1) for line in out.strip().splitlines())
  assert code == 0
  assert listed["models"].split(", ") == sorted(models.MODELS)
  assert listed["optimizers"].split(", ") == list(optimizers.OPTIMIZER_NAMES)
  assert listed["schedules"].split(", ") == list(optimizers.SCHEDULE_NAMES)
  assert listed["losses"].split(", ") == list(losses.LOSS_NAMES)
  assert listed["activations"].split(", ") == sorted(activations.ACTIVATIONS)
  assert listed["initializers"].split(", ") == list(initializers.INITIALIZER_NAMES)
  assert listed["augmentations"].split(", ") == sorted(augment.OPS)
  assert {"digits", "karate", "graph_cycles", "adding"} <= set(listed["datasets"].split(", "))
  assert run(capsys, "list", "losses")[1] == f"losses: {', '.join(losses.LOSS_NAMES)}\n"
  code, out, err = run(capsys, "list", "layers")
  assert code == 2 and out == "" and err.count("\n") == 1 and "takes one of models, optimizers" in err


def test_config_prints_every_field_with_its_meaning(capsys):
  code, out, _ = run(capsys, "config", f"--config={config_path('digits_cnn.py')}", "--config.optim.lr=0.25")
  lines = out.strip().splitlines()
  assert code == 0 and len(lines) > 90
  assert [line for line in lines if "  # " not in line] == []  # configs/base.py documents every field
  (lr,) = [line for line in lines if line.startswith("optim.lr = ")]
  assert lr.startswith("optim.lr = 0.25 ") and "peak learning rate" in lr
  assert any(line.startswith("model.name = 'cnn'") for line in lines)
  code, out, err = run(capsys, "config", f"--config={config_path('digits_cnn.py')}", "--config.optim.lrr=1")
  assert code == 2 and out == "" and "did you mean optim.lr?" in err and err.count("\n") == 1


@pytest.mark.parametrize("verb", ["seeds", "profile"])
def test_compare_has_help(capsys, verb):
  code, out, err = run(capsys, verb, "compare", "--help")
  assert code == 0 and out.startswith(f"usage: jaxflow {verb} compare A B") and err == ""


def test_help_shows_defaults_and_each_verbs_own_texts(capsys):
  _, tune, _ = run(capsys, "tune", "--help")
  _, audit, _ = run(capsys, "audit", "--help")
  _, train, _ = run(capsys, "train", "--help")
  assert "--trials: trials in the study (a rerun continues up to this many) (default: 30)" in tune
  assert "--method: grid | random | sobol | halton | bo (Bayesian optimization, GP) (default: 'bo')" in tune
  workdir = {
    name: next(line for line in text.splitlines() if line.startswith("  --workdir"))
    for name, text in [("tune", tune), ("audit", audit), ("train", train)]
  }
  assert len(set(workdir.values())) == 3 and "best_config.py" in workdir["tune"] and "report.md" in workdir["audit"]
  _, export, _ = run(capsys, "export", "--help")
  assert "--precision: f32, bf16 or int8 (calibrated on the training split) (default: 'f32')" in export
  for verb in ("predict", "serve"):  # the deployment verbs (issue 18: every new verb has --help)
    code, text, _ = run(capsys, verb, "--help")
    assert code == 0 and text.startswith(f"usage: jaxflow {verb} --model=DIR") and "--model" in text, text
