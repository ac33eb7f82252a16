"""experiments/sample_bias: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers
(a quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: the audit's verdict
per arm before training (the tank story's data flagged, the decorrelated data not; those are properties of the
built data, not of training, so they are exact), the three test distributions per seed, and the saliency measure.
Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

SHORTCUT, DECORRELATED = "100% (the tank story)", "50% (decorrelated)"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "sample_bias")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {SHORTCUT, DECORRELATED}  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential" and "data.group_feature=bias" in arm["overrides"]
    assert arm["data"]["test_rows"] == 720 and arm["data"]["test_images"] == 360
    for row in arm["per_seed"]:
      assert {"aligned", "conflicting", "in_distribution", "decorrelated", "reversed"} <= set(row)
      assert row["decorrelated"] == pytest.approx((row["aligned"] + row["conflicting"]) / 2, abs=1e-6)
    assert {"background_share", "light_alignment"} <= set(arm["per_seed"][0])


@pytest.mark.slow
def test_the_audit_flags_the_tank_story_before_training(outputs):
  _, results = check_standard_outputs(outputs)
  shortcut, decorrelated = results["arms"][SHORTCUT]["audit"], results["arms"][DECORRELATED]["audit"]
  assert shortcut["flagged"] and shortcut["splits"]["train"]["cramers_v"] == pytest.approx(1.0)
  assert "daylight" in shortcut["finding"] and "sample bias" in shortcut["finding"]
  assert not decorrelated["flagged"] and decorrelated["finding"] is None
  assert shortcut["splits"]["test"]["cramers_v"] == pytest.approx(0.0, abs=1e-9)  # the test light is independent
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert ("reversed accuracy", SHORTCUT, DECORRELATED) in compared
