"""experiments/survivorship_bias: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: every seed's exported model
probed for the effect of each section, paired against the unfiltered population's, and the audit of the record
against the unfiltered sample. Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

SECTIONS = ("engine", "cockpit", "fuel", "tail", "wings", "fuselage")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "survivorship_bias")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {"population", "recorded"}  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential" and "data.group_feature=hits_engine" in arm["overrides"]
    for row in arm["per_seed"]:
      assert {f"effect/{s}" for s in SECTIONS} <= set(row) and row["armour_first"] in SECTIONS
      assert 0.0 <= row["predicted_loss_rate"] <= 1.0 and row["engine_2+/ece"] is not None
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert {(f"effect/{s}", "recorded", "population") for s in SECTIONS} <= compared


@pytest.mark.slow
def test_quick_run_audits_the_record_against_the_unfiltered_sample(outputs):
  _, results = check_standard_outputs(outputs)
  audit = results["findings"]["audit_seed0"]["recorded"]
  assert audit["lost_share"]["train"] < audit["lost_share"]["test"]  # the record under-counts the lost planes
  assert set(audit["sections"]["engine"]) == {"train", "test"} and audit["findings"]
