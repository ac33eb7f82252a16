"""experiments/overfitting: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: per seed the eval-mode
training and test accuracy and their gap (train - test), read from the run's per-group eval, each arm's learning
curve, and both paired differences from no remedy (test accuracy and gap).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "overfitting")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert list(results["arms"]) == ["none", "dropout"]  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential" and "data.group_feature=role" in arm["overrides"]
    for row in arm["per_seed"]:
      assert row["gap"] == pytest.approx(row["train"] - row["test"]) and row["accuracy"] == row["test"]
      assert 0 <= row["train"] <= 1 and 0 <= row["test"] <= 1
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert {("accuracy", "dropout", "none"), ("gap", "dropout", "none")} <= compared


@pytest.mark.slow
def test_quick_run_records_learning_curves(outputs):
  _, results = check_standard_outputs(outputs)
  for curve in results["findings"]["curves"].values():
    assert curve["step"] and len(curve["train"]) == len(curve["test"]) == len(curve["step"])
  files = {p["file"] for p in results["plots"]}
  assert files == {"learning_curves.png", "accuracy_and_gap.png", "paired_differences.png"}
