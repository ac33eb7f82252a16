"""experiments/problem_definition and data_size: each --quick run writes the outputs the experiments/ standard
asks for (tests/experiments/quick.py: structure, not numbers)."""

from __future__ import annotations

import os

import pytest

from tests.experiments.quick import check_standard_outputs, run_quick

STUDIES = ("problem_definition", "data_size")


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return run_quick(tmp_path_factory, STUDIES)  # one folder per study inside


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_quick_run_writes_the_standard_outputs(outputs, study):
  check_standard_outputs(os.path.join(outputs, study))
