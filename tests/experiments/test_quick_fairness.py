"""experiments/fairness: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is
checked, not the numbers (a quick run trains three steps of a 16-unit MLP on two seeds), plus what this study
adds: both groups' metrics per arm and the remedies' paired differences for both groups. Run in the test
worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "fairness")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert len(results["arms"]) == 2  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert len(arm["per_seed"]) == 2 and arm["mode"] == "sequential"
    assert any(o == "data.group_feature=group" for o in arm["overrides"])
    assert arm["data"]["test_majority"] == arm["data"]["test_minority"] == 180
    for row in arm["per_seed"]:
      for group in ("majority", "minority"):
        assert {f"{group}/{m}" for m in ("accuracy", "balanced_accuracy", "ece", "recall")} <= set(row)
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  for group in ("majority", "minority"):
    assert (f"{group}/accuracy", "oversampled x12", "baseline (5% minority)") in compared
