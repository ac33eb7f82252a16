"""experiments/tuning: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run searches one test function in 2 and 4 dimensions with 10 evaluations, and tunes a 16-unit MLP for two
trials per method), plus what this study adds: every (dimension, method) cell with its regret curve, the paired
BO - random difference per dimension, and the tune studies' records.
"""

from __future__ import annotations

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "tuning")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  text, results = check_standard_outputs(outputs)
  for d in (2, 4):
    for method in ("random", "sobol", "bo"):
      arm = results["arms"][f"ackley d={d} {method}"]
      assert arm["overrides"] == [f"method={method}", "budget=10", f"dims={d}"]
      for row in arm["per_seed"]:
        assert len(row["curve"]) == 10 and row["curve"] == sorted(row["curve"], reverse=True)
        assert row["regret"] == row["curve"][-1] >= 0
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert {("ackley d=2: log10 regret", "bo", "random"), ("ackley d=4: log10 regret", "bo", "random")} <= compared
  assert ("MLP study's best trial", "bo", "random") in compared
  studies = results["findings"]["mlp_studies"]
  assert set(studies) == {"random", "bo"}
  for rows in studies.values():
    assert len(rows) == 1 and len(rows[0]["curve"]) == 2 and rows[0]["best_overrides"]
  assert "BO s / suggestion" in text
