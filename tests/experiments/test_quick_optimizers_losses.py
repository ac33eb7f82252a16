"""experiments/optimizers and experiments/losses: the --quick runs write the outputs the experiments/ standard asks for.

Both studies run one after another (the compilation cache paid once; tests/experiments/quick.py). The structure
is checked, not the numbers (a quick run trains three steps of a 16-unit MLP on two seeds), plus what each study
adds: the optimizers' five aspects per optimizer (best lr, accuracy by lr, steps to target, time per step,
hyperparameter counts) and the losses' regression errors from the exported models next to classification accuracy.
"""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, run_quick


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return run_quick(tmp_path_factory, ("optimizers", "losses"))


@pytest.mark.slow
def test_optimizers_quick_run_writes_the_five_aspects(outputs):
  _, results = check_standard_outputs(os.path.join(outputs, "optimizers"))
  assert set(results["arms"]) == {"sgd lr=0.1", "adam lr=0.001"}  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential"
    assert any(o.startswith("optim.lr=") for o in arm["overrides"])
    for row in arm["per_seed"]:
      assert {"accuracy", "steps_to_target", "seconds_per_step", "curve"} <= set(row) and row["curve"]
  for name, found in results["findings"].items():
    assert found["best_lr"] > 0 and found["accuracy_by_lr"] and found["seconds_per_step"]["mean"] > 0
    assert len(found["hyperparameters"]["rule"]) >= len(found["hyperparameters"]["jaxflow"]) >= 1, name
  assert any(row["comparison"].endswith("best: accuracy") for row in results["differences"])


@pytest.mark.slow
def test_losses_quick_run_writes_regression_and_classification(outputs):
  text, results = check_standard_outputs(os.path.join(outputs, "losses"))
  assert len(results["arms"]) == 3
  regression = [a for a in results["arms"].values() if "problem.kind=regression" in a["overrides"]]
  assert len(regression) == 2 and {"loss=mse", "loss=mae"} <= {o for a in regression for o in a["overrides"]}
  for arm in regression:
    for row in arm["per_seed"]:
      assert {"test_mae", "test_rmse", "mean_error"} <= set(row) and row["test_mae"] >= 0
  assert "Regression" in text and "Classification" in text
  assert {row["comparison"] for row in results["differences"]} >= {"outliers: test MAE", "outliers: test RMSE"}
