"""experiments/: the ported studies' --quick runs (class_imbalance, label_noise, augmentation, transfer) write the
outputs the experiments/ standard asks for (tests/experiments/quick.py). The shared quick overrides of
experiments/harness_extras make these studies compile the same programs, so they run one after another
in one fixture (tests/experiments/quick.py)."""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, run_quick

STUDIES = ("class_imbalance", "label_noise", "augmentation", "transfer")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return run_quick(tmp_path_factory, STUDIES)  # one folder per study inside


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_quick_run_writes_the_standard_outputs(outputs, study):
  _, results = check_standard_outputs(os.path.join(outputs, study))
  assert 2 <= len(results["arms"]) <= 3  # a quick run stays cheap: two or three arms
  for arm in results["arms"].values():
    assert arm["mode"] != "auto"  # auto would time candidate modes, compiling each
