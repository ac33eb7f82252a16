"""experiments/annotation_consistency: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers
(a quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: the annotators'
agreement with the truth through `jaxflow.agreement` (the tight annotator's jitter aside, it is the truth's
convention; the merged one drops crates), and per seed the exported model's IoU with the truth and the
mixed-versus-noise comparison. Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "annotation_consistency")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert list(results["arms"]) == ["mixed", "tight + noise"]  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "vmap" and any(o == "problem.kind=regression" for o in arm["overrides"])
    assert arm["data"]["train_rows"] == 4 * 60 and arm["data"]["test_rows"] == 4 * 60  # 4 coordinates a scene
    for row in arm["per_seed"]:
      assert 0 <= row["iou_truth"] <= 1 and 0 <= row["matched_truth"] <= 1 and row["mae"] >= 0
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert ("iou_truth", "mixed", "tight + noise") in compared


@pytest.mark.slow
def test_agreement_is_measured_through_the_public_function(outputs):
  _, results = check_standard_outputs(outputs)
  pairs = results["findings"]["agreement"]["pairs"]
  tight, merged = pairs["truth vs tight"]["overall"], pairs["truth vs merged"]["overall"]
  assert tight["n_a"] == tight["n_b"] == 2 * 60  # a car and a crate in each of the 60 test scenes
  assert tight["agreement"] > 0.9  # the truth's convention, up to a pixel of jitter
  assert merged["n_b"] < merged["n_a"] and merged["agreement"] < tight["agreement"]  # one box for two objects
