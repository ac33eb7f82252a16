"""experiments/: each study's --quick run writes the outputs the experiments/ standard asks for.

The structure is checked, not the numbers (a quick run trains a few steps on two seeds): report.md has every
section in order, results.json the keys experiments/run_all.py and the index read, every plot is a PNG file.
Both quick runs share one subprocess (imports and the compilation cache paid once) and one --workdir
(JAX keeps one compilation cache directory per process); a subprocess, so the studies' JAX settings stay
out of the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from experiments.common import report

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDIES = ("problem_definition", "data_size")
PNG = b"\x89PNG\r\n\x1a\n"
DRIVER = """
import sys
sys.path.insert(0, {root!r})
from experiments.problem_definition.run import main as problem_definition
from experiments.data_size.run import main as data_size
for name, main in (("problem_definition", problem_definition), ("data_size", data_size)):
  main(["--quick", "--out", {out!r} + "/" + name, "--workdir", {work!r}])
"""


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> str:
  out, work = tmp_path_factory.mktemp("experiments_out"), tmp_path_factory.mktemp("experiments_work")
  driver = DRIVER.format(root=ROOT, out=str(out), work=str(work))
  done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=600, cwd=ROOT)
  assert done.returncode == 0, done.stderr[-4000:]
  return str(out)


def check_report(text: str) -> None:
  headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
  assert headings == list(report.SECTIONS)
  sections = dict(zip(headings, text.split("\n## ")[1:], strict=True))
  assert sections["Question"].strip().split("\n", 2)[2].startswith("> ")
  assert "`python experiments/" in sections["Command"] and "--quick" in sections["Command"]
  assert "| " in sections["Results"] and "95% CI" in sections["Paired differences"]
  assert "jaxflow commit `" in sections["Provenance"] and "load average" in sections["Provenance"]


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
  for arm in results["arms"].values():
    assert len(arm["per_seed"]) == 2 and arm["overrides"] is not None
  for row in results["differences"]:
    assert {"comparison", "a", "b", "mean", "ci95", "verdict"} <= set(row)
  assert results["plots"]
  for plot in results["plots"]:
    assert f"]({plot['file']})" in text
    with open(os.path.join(folder, plot["file"]), "rb") as f:
      assert f.read(8) == PNG
