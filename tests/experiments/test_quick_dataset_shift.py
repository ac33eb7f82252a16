"""experiments/dataset_shift: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: every seed's accuracy
on each quick camera and on both style groups, the camera drops and the exclusion compared seed by seed, and
the audit's shift statistic for the audited camera. Run in the test worker (tests/experiments/quick.py says
why).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

CAMERAS = ("blur_1.2", "offset_0.35")  # experiments/dataset_shift/data.py's QUICK_SHIFTS


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "dataset_shift")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {"baseline", "style excluded"}  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential" and "data.group_feature=camera" in arm["overrides"]
    assert arm["data"]["test_per_camera"] == 360 and arm["data"]["test_style"] + arm["data"]["test_rest"] == 360
    for row in arm["per_seed"]:
      assert {"clean", "style", "rest", *CAMERAS} <= set(row)
  assert results["arms"]["style excluded"]["data"]["train_style"] == 0
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert {(c, "clean", c) for c in CAMERAS} <= compared
  assert ("style", "style excluded", "baseline") in compared


@pytest.mark.slow
def test_quick_run_audits_a_camera(outputs):
  with open(os.path.join(outputs, "results.json")) as f:
    audits = json.load(f)["findings"]["audit"]
  assert set(audits) == {"offset_0.35"}  # a quick run audits one camera (an audit always writes its PNGs)
  found = audits["offset_0.35"]
  assert 0.0 <= found["ks_statistic"] <= 1.0 and isinstance(found["flagged"], bool)
  assert found["cohens_d"] > 0  # a brightness offset raises every image's mean
