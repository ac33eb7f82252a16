"""experiments/hyperparameters: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run trains two cells of a 16-unit MLP for six steps on two seeds), plus what this study adds: the three
surfaces with a cell per row x column, the lr x epochs surface read off the per-epoch curves, and the heatmaps.
"""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "hyperparameters")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  _, results = check_standard_outputs(outputs)
  assert len(results["arms"]) == 2  # a quick run stays cheap: two cells
  for arm in results["arms"].values():
    assert arm["mode"] == "sequential" and len(arm["per_seed"]) == 2
    assert all(len(row["curve"]) == 2 for row in arm["per_seed"])  # one test accuracy per epoch
  for name in ("heatmap_lr_epochs.png", "heatmap_lr_batch.png", "heatmap_dropout_batch.png"):
    assert name in {p["file"] for p in results["plots"]} and os.path.isfile(os.path.join(outputs, name))


@pytest.mark.slow
def test_every_surface_has_its_grid_and_interaction_measures(outputs):
  _, results = check_standard_outputs(outputs)
  surfaces = results["findings"]["surfaces"]
  assert {"lr x batch", "dropout x batch", "lr x epochs (batch 50)"} <= set(surfaces)
  for s in surfaces.values():
    assert len(s["cells"]) == len(s["rows"]) and all(len(row) == len(s["cols"]) for row in s["cells"])
    assert len(s["best_per_column"]) == len(s["cols"])
  lr_epochs = surfaces["lr x epochs (batch 50)"]
  assert lr_epochs["cols"] == [1, 2] and 0.0 <= lr_epochs["interaction"]["share"] <= 1.0
  assert any(row["comparison"].startswith("lr x epochs") for row in results["differences"])
