"""experiments/interpretability: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains three steps of an 8-channel CNN on two seeds), plus what this study adds: explain's
randomization rank correlation for each of the four saliency methods, the background share of each method on the
tank task for both arms with their paired differences, and explain's pictures copied beside the report.
"""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

METHODS = ("vanilla_gradient", "gradient_x_input", "smoothgrad", "integrated_gradients")
CNN, SHORTCUT, DECORRELATED = "digits CNN", "shortcut (100% light = label)", "decorrelated (50%)"


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "interpretability")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert set(results["arms"]) == {CNN, SHORTCUT, DECORRELATED}
  for arm in results["arms"].values():
    assert len(arm["per_seed"]) == 2 and arm["mode"] == "sequential"
  first = results["arms"][CNN]["per_seed"][0]
  for method in METHODS:
    assert -1.0 <= first[f"{method}/rank_correlation"] <= 1.0
    for name in (SHORTCUT, DECORRELATED):
      row = results["arms"][name]["per_seed"][0]
      assert 0.0 <= row[f"{method}/background_share"] <= 1.0
      assert len(row[f"{method}/mean_map"]) == 8
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert ("vanilla_gradient background share", SHORTCUT, DECORRELATED) in compared
  assert ("rank correlation", "smoothgrad", "vanilla_gradient") in compared


@pytest.mark.slow
def test_quick_run_copies_explains_pictures(outputs):
  for stem in ("kernels", "activations_conv_0", "saliency", "saliency_randomized"):
    assert os.path.exists(os.path.join(outputs, f"explain_cnn_{stem}.png"))
