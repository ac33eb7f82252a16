"""experiments/: the ported studies' --quick runs (class_imbalance, label_noise, augmentation, transfer) write the
outputs the experiments/ standard asks for.

As tests/experiments/test_quick.py does for the first two studies, and with its `check_report`: the structure is
checked, not the numbers (a quick run trains three steps of a tiny model on two seeds). Every quick run here shares
one subprocess (imports and the compilation cache paid once, and the shared quick overrides of
experiments/harness_extras make the studies compile the same programs) and one --workdir (JAX keeps one compilation
cache directory per process); a subprocess, so the studies' JAX settings stay out of the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments.common import report
from tests.experiments.test_quick import PNG, ROOT, check_report

STUDIES = ("class_imbalance", "label_noise", "augmentation", "transfer")
DRIVER = """
import importlib, sys
sys.path.insert(0, {root!r})
for name in {studies!r}:
  main = importlib.import_module(f"experiments.{{name}}.run").main
  main(["--quick", "--out", {out!r} + "/" + name, "--workdir", {work!r}])
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  out, work = tmp_path_factory.mktemp("ported_out"), tmp_path_factory.mktemp("ported_work")
  driver = DRIVER.format(root=ROOT, studies=STUDIES, out=str(out), work=str(work))
  done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert done.returncode == 0, done.stderr[-4000:]
  return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("study", STUDIES)
def test_quick_run_writes_the_standard_outputs(outputs, study):
  folder = os.path.join(outputs, study)
  with open(os.path.join(folder, "report.md")) as f:
    text = f.read()
  check_report(text)
  with open(os.path.join(folder, "results.json")) as f:
    results = json.load(f)
  assert set(report.RESULTS_KEYS) <= set(results)
  assert results["quick"] is True and results["seeds"] == 2
  assert results["question"] in text and results["answer"] in text and "\n" not in results["answer"]
  assert isinstance(results["wall_seconds"], float) and results["provenance"]["commit"]
  assert 2 <= len(results["arms"]) <= 3  # a quick run stays cheap: two or three arms
  for arm in results["arms"].values():
    assert len(arm["per_seed"]) == 2 and arm["overrides"] is not None and arm["mode"] != "auto"
  assert results["differences"]
  for row in results["differences"]:
    assert {"comparison", "a", "b", "mean", "ci95", "verdict"} <= set(row)
  assert results["plots"]
  for plot in results["plots"]:
    assert f"]({plot['file']})" in text
    with open(os.path.join(folder, plot["file"]), "rb") as f:
      assert f.read(8) == PNG
