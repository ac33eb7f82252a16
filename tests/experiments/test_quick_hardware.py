"""experiments/hardware: the --quick run writes the outputs the experiments/ standard asks for.

With tests/experiments/quick.py's checks of the standard's outputs: the structure is checked, not the numbers (a
quick run profiles a 16-unit MLP at one batch size in two rounds), plus what this study adds: both thread
settings measured in every round by their own worker process (pinned to one CPU vs both), the paired ratios
(op by op / fused, 1 / 2 threads), and GPU/TPU columns that say they were not measured where JAX sees no such
device. Run in the test worker (tests/experiments/quick.py says why).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.experiments.quick import check_standard_outputs, quick_outputs


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  return quick_outputs(tmp_path_factory, "hardware")


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  text, results = check_standard_outputs(outputs)
  assert list(results["arms"]) == ["MLP"]
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  assert ("MLP batch 8", "op-by-op", "fused") in compared
  assert ("MLP training step", "1 thread", "2 threads") in compared
  for row in results["differences"]:
    assert row["ratio"] is None or row["ratio"] > 0
  if "gpu" not in results["findings"]["platforms_measured"]:
    assert "not measured: no such device here" in text


@pytest.mark.slow
def test_each_thread_setting_ran_in_its_own_pinned_process(outputs):
  with open(os.path.join(outputs, "rounds.json")) as f:
    rounds = json.load(f)["rounds"]
  assert len(rounds) == 2
  for one in rounds:
    one_thread, two_threads = one["1"]["MLP"], one["2"]["MLP"]
    assert len(one_thread["cpus"]) == 1 and len(two_threads["cpus"]) == min(2, os.cpu_count() or 1)
    for answer in (one_thread, two_threads):
      assert answer["thread_check"]["gflops"] > 0
      assert any(d["platform"] == "cpu" and d["inference"] and d["train"]["step_s"] > 0 for d in answer["devices"])
  # The workers profile with plots=False (jaxflow.profile -> run_profile -> report.write): a report, no plots/.
  work = os.path.dirname(outputs) + "_work"  # tests/experiments/quick.py's --workdir
  profiles = [os.path.join(work, d) for d in sorted(os.listdir(work)) if d.startswith("profile_r")]
  assert len(profiles) == 4, profiles  # 2 rounds x 2 thread settings x 1 model
  for profile in profiles:
    assert os.path.isfile(os.path.join(profile, "report.json")) and not os.path.exists(os.path.join(profile, "plots"))
