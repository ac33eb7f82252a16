"""experiments/randomness: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of a 16-unit MLP on two seeds per source), plus what this study adds: one arm per
sweep of the seeds runner's sources study (one_bit, all and none included) with accuracy and loss per seed, the
published figures beside ours, and the sequential comparison's result read from `jaxflow seeds compare
--until-decided`. Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "randomness")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  text, results = check_standard_outputs(outputs)
  sweeps = {name.removeprefix("sweep ") for name in results["arms"] if name.startswith("sweep ")}
  assert {"init", "data", "dropout", "augment", "one_bit", "all", "none"} == sweeps
  for name in sweeps:
    arm = results["arms"][f"sweep {name}"]
    assert arm["mode"] == "sequential"
    assert all({"accuracy", "loss"} <= set(row) for row in arm["per_seed"])
    found = results["findings"]["sources"][name]
    assert {"accuracy_std", "loss_std", "disagreement", "correctness_correlation", "ensemble"} <= set(found)
  assert results["findings"]["sources"]["none"]["distinct_params"] == 1  # nothing varies: one trained model
  decided = results["findings"]["until_decided"]
  assert decided["decision"] in ("a_better", "b_better", "equivalent", "undecided")
  assert decided["seeds_per_arm"] == 2 and "fixed_design_seeds_per_arm" in decided
  assert "theirs: SD accuracy (%), ResNet-14 / CIFAR-10" in text and "| 0.26 |" in text
