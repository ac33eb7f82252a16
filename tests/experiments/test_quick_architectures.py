"""experiments/architectures: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of the shared tiny MLP and CNN on two seeds), plus what this study adds: every seed's
parameter count and the timing fields read from summary.json (step time, compile and init seconds), the per-task
budget check, and the paired step-time difference next to the accuracy one. Run in the test worker
(tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "architectures")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs_with_parameters_and_timings(outputs):
  text, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {"digits: MLP", "digits: CNN"}  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential"
    counts = {row["params"] for row in arm["per_seed"]}
    assert len(counts) == 1 and counts.pop() > 0  # every seed of an arm has the same model
    for row in arm["per_seed"]:
      assert row["steps"] > 0 and row["step_ms"] > 0 and row["compile_s"] >= 0 and row["init_s"] >= 0
      assert len(row["curve"]) == 1  # one epoch: one point of the learning curve
  first_mlp = results["arms"]["digits: MLP"]["per_seed"][0]
  assert first_mlp["compile_s"] > 0  # the first seed compiles; the table reports it as the cold compile
  budget = results["findings"]["budgets"]["digits"]
  assert set(budget["counts"]) == {"MLP", "CNN"} and budget["matched"] is False  # the tiny models are not matched
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert compared == {("accuracy", "MLP", "CNN"), ("step_ms", "MLP", "CNN")}
  assert "ms per step" in text and "NOT within 10%" in text
