"""experiments/: the ported studies' --quick runs (class_imbalance, label_noise, augmentation, transfer) write the
outputs the experiments/ standard asks for (tests/experiments/quick.py). The shared quick overrides of
experiments/harness_extras make these studies compile the same programs, so one subprocess serves them all."""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

STUDIES = ("class_imbalance", "label_noise", "augmentation", "transfer")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return os.path.dirname(quick_outputs(tmp_path_factory, STUDIES[0]))  # the group's folder: one per study inside


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_quick_run_writes_the_standard_outputs(outputs, study):
  _, results = check_standard_outputs(os.path.join(outputs, study))
  assert 2 <= len(results["arms"]) <= 3  # a quick run stays cheap: two or three arms
  for arm in results["arms"].values():
    assert arm["mode"] != "auto"  # auto would time candidate modes, compiling each
