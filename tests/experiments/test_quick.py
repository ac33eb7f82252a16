"""experiments/problem_definition and data_size: each --quick run writes the outputs the experiments/ standard
asks for (tests/experiments/quick.py: structure, not numbers)."""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs

STUDIES = ("problem_definition", "data_size")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return os.path.dirname(quick_outputs(tmp_path_factory, STUDIES[0]))  # the group's folder: one per study inside


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_quick_run_writes_the_standard_outputs(outputs, study):
  check_standard_outputs(os.path.join(outputs, study))
