"""What every study's --quick test shares: running quick studies, and the experiments/ standard's outputs.

The structure is checked, not the numbers (a quick run trains a few steps on two seeds): report.md has every
section in order, results.json the keys experiments/run_all.py and the index read, every plot is a PNG file.
The studies given to one `run_quick` share one subprocess (imports and the compilation cache paid once) and
one --workdir (JAX keeps one compilation cache directory per process); a subprocess, so the studies' JAX
settings stay out of the test worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from experiments.common import report
from tests.conftest import built_once

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PNG = b"\x89PNG\r\n\x1a\n"
DRIVER = """
import importlib, sys
sys.path.insert(0, {root!r})
for name in {studies!r}:
  main = importlib.import_module(f"experiments.{{name}}.run").main
  main(["--quick", "--out", {out!r} + "/" + name, "--workdir", {work!r}])
"""


# Studies whose quick runs share one subprocess: Python's and jax's imports (~5 s of CPU) paid once per group,
# and the later studies' small MLPs found in the compilation cache. A study in no group runs alone.
GROUPS = (
  ("problem_definition", "data_size"),
  ("class_imbalance", "label_noise", "augmentation", "transfer"),
  ("fairness", "sample_bias", "survivorship_bias", "dataset_shift", "annotation_consistency"),
  ("overfitting", "hyperparameters", "monitoring"),
  ("architectures", "tuning", "interpretability"),
  ("post_training", "hardware", "randomness"),
)


def run_quick(tmp_path_factory, studies: tuple[str, ...]) -> str:
  """Runs each study's --quick into OUT/<study>; returns OUT."""
  out = tmp_path_factory.mktemp("quick_out")
  _run(str(out), tuple(studies))
  return str(out)


def quick_outputs(tmp_path_factory, study: str) -> str:
  """The folder of `study`'s quick outputs, its group run once per test session (whichever xdist worker asks
  first runs it; the others wait for it and read the same folder)."""
  group = next((g for g in GROUPS if study in g), (study,))
  out = built_once(tmp_path_factory, "quick_" + "+".join(group), lambda path: _run(path, group))
  return os.path.join(out, study)


def _run(out: str, studies: tuple[str, ...]) -> None:
  work = out + "_work"
  os.makedirs(work, exist_ok=True)
  driver = DRIVER.format(root=ROOT, studies=studies, out=out, work=work)
  done = subprocess.run([sys.executable, "-c", driver], capture_output=True, text=True, timeout=900, cwd=ROOT)
  assert done.returncode == 0, done.stderr[-4000:]


def check_report(text: str) -> None:
  headings = [line[3:] for line in text.splitlines() if line.startswith("## ")]
  assert headings == list(report.SECTIONS)
  sections = dict(zip(headings, text.split("\n## ")[1:], strict=True))
  assert sections["Question"].strip().split("\n", 2)[2].startswith("> ")
  assert "`python experiments/" in sections["Command"] and "--quick" in sections["Command"]
  assert "| " in sections["Results"] and "95% CI" in sections["Paired differences"]
  assert "jaxflow commit `" in sections["Provenance"] and "load average" in sections["Provenance"]


def check_standard_outputs(folder: str) -> tuple[str, dict]:
  """The standard's outputs of one quick run in `folder`; returns (report.md's text, results.json)."""
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
  assert results["differences"]
  for row in results["differences"]:
    assert {"comparison", "a", "b", "mean", "ci95", "verdict"} <= set(row)
  assert results["plots"]
  for plot in results["plots"]:
    assert f"]({plot['file']})" in text
    with open(os.path.join(folder, plot["file"]), "rb") as f:
      assert f.read(8) == PNG
  return text, results
