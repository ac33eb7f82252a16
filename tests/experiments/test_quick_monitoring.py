"""experiments/monitoring: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers
(a quick run trains three steps of a 16-unit MLP on two seeds), plus what this study adds: every seed's numbers
read back from its TensorBoard events with TensorBoard's own reader (scalars, histograms, the confusion image),
the alerts per arm, and no screenshots (a quick run needs no browser, and says so). Run in the test worker
(tests/experiments/quick.py says why).
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "monitoring")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  text, results = check_standard_outputs(outputs)
  assert list(results["arms"]) == ["healthy", "overfitting", "diverging"]
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential"
    for row in arm["per_seed"]:
      assert "curves" not in row  # the curves go to the plots, not into results.json
      assert row["steps"] > 0 and row["final_test_accuracy"] is not None
      assert row["images"] >= 1 and row["histogram_steps"] >= 1  # the confusion image and histograms were read
      assert {"divergence_step", "grad_spike_step", "overfit_step", "chance_step", "kernel_std_final"} <= set(row)
  compared = {(row["comparison"], row["a"]) for row in results["differences"]}
  assert ("accuracy_gap", "overfitting") in compared and ("peak_loss_ratio", "diverging") in compared
  summary = results["findings"]["summary"]
  assert set(summary["diverging"]["alerts"]) == {"divergence_step", "grad_spike_step", "overfit_step", "chance_step"}


@pytest.mark.slow
def test_quick_run_takes_no_screenshots_and_says_so(outputs):
  text, results = check_standard_outputs(outputs)
  assert results["screenshots"] == [] and "--quick" in results["screenshots_skipped"]
  assert not any(p["file"].startswith("tb_") for p in results["plots"])
  assert "Screenshots skipped" in text
