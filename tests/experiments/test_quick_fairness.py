"""experiments/fairness: the --quick run writes the outputs the experiments/ standard asks for.

As tests/experiments/test_quick.py does for the first studies, and with its `check_report`: the structure is
checked, not the numbers (a quick run trains three steps of a 16-unit MLP on two seeds), plus what this study
adds: both groups' metrics per arm and the remedies' paired differences for both groups. A subprocess, so the
study's JAX settings stay out of the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments.common import report
from tests.experiments.test_quick import PNG, ROOT, check_report

DRIVER = """
import sys
sys.path.insert(0, {root!r})
from experiments.fairness.run import main
main(["--quick", "--out", {out!r}, "--workdir", {work!r}])
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  out, work = tmp_path_factory.mktemp("fairness_out"), tmp_path_factory.mktemp("fairness_work")
  driver = DRIVER.format(root=ROOT, out=str(out), work=str(work))
  done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert done.returncode == 0, done.stderr[-4000:]
  return str(out)


@pytest.mark.slow
def test_quick_run_writes_the_standard_outputs(outputs):
  with open(os.path.join(outputs, "report.md")) as f:
    text = f.read()
  check_report(text)
  with open(os.path.join(outputs, "results.json")) as f:
    results = json.load(f)
  assert set(report.RESULTS_KEYS) <= set(results)
  assert results["quick"] is True and results["seeds"] == 2
  assert results["question"] in text and results["answer"] in text and "\n" not in results["answer"]
  assert isinstance(results["wall_seconds"], float) and results["provenance"]["commit"]
  assert len(results["arms"]) == 2  # a quick run stays cheap: two arms
  for arm in results["arms"].values():
    assert len(arm["per_seed"]) == 2 and arm["mode"] == "sequential"
    assert any(o == "data.group_feature=group" for o in arm["overrides"])
    assert arm["data"]["test_majority"] == arm["data"]["test_minority"] == 180
    for row in arm["per_seed"]:
      for group in ("majority", "minority"):
        assert {f"{group}/{m}" for m in ("accuracy", "balanced_accuracy", "ece", "recall")} <= set(row)
  compared = {(row["comparison"], row["a"], row["b"]) for row in results["differences"]}
  for group in ("majority", "minority"):
    assert (f"{group}/accuracy", "oversampled x12", "baseline (5% minority)") in compared
  for row in results["differences"]:
    assert {"comparison", "a", "b", "mean", "ci95", "verdict"} <= set(row)
  assert results["plots"]
  for plot in results["plots"]:
    assert f"]({plot['file']})" in text
    with open(os.path.join(outputs, plot["file"]), "rb") as f:
      assert f.read(8) == PNG
