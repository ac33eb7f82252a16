"""experiments/run_all.py's index: one row per study, from results.json for a ported one, the old results and
"not yet ported" for the others (nothing is run here).

Every real study is ported now, so the unported one is a stand-in: run_all reads the studies' run.py files from
`run_all.HERE`, which the tests point at a temporary experiments/ folder holding an unported `legacy` study beside
copies of two ported ones' run.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import pytest

from experiments import run_all
from tests.experiments.quick import time_limit

LEGACY = '''"""Does the legacy study help? Its old script, not yet on the harness."""\n'''


@pytest.fixture
def experiments_dir(tmp_path, monkeypatch) -> str:
  """A temporary experiments/ folder: problem_definition and data_size (ported), legacy (not), common (skipped)."""
  root = tmp_path / "experiments"
  for name in ("problem_definition", "data_size"):
    (root / name).mkdir(parents=True)
    shutil.copy(os.path.join(run_all.HERE, name, "run.py"), root / name / "run.py")
  (root / "legacy" / "results").mkdir(parents=True)
  (root / "legacy" / "run.py").write_text(LEGACY)
  (root / "legacy" / "results" / "results.md").write_text("# old results\n")
  (root / "common").mkdir()
  (root / "common" / "run.py").write_text("")
  monkeypatch.setattr(run_all, "HERE", str(root))
  return str(root)


def test_index_rows_from_results_json_and_for_unported_studies(tmp_path, experiments_dir):
  results = tmp_path / "problem_definition"
  results.mkdir()
  facts = {
    "question": "What kind of problem?",
    "answer": "one line | with a pipe",
    "command": "python experiments/problem_definition/run.py",
    "wall_seconds": 125.0,
    "provenance": {"load_before": [1.5, 1.0, 0.5], "load_after": [2.25, 1.0, 0.5]},
  }
  (results / "results.json").write_text(json.dumps(facts))

  def results_dir_of(name):
    return str(tmp_path / name)

  text = run_all.index(["problem_definition", "legacy", "data_size"], results_dir_of, str(tmp_path))
  rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
  assert len(rows) == 3
  assert rows[0].startswith(
    "| What kind of problem? | one line \\| with a pipe | [report](problem_definition/report.md)"
  )
  assert "2.1 min (load 1.5-2.2)" in rows[0]
  assert "| Does the legacy study help? | not yet ported | [old results](" in rows[1]
  assert os.path.isfile(os.path.join(str(tmp_path), rows[1].split("](")[1].split(")")[0]))
  assert "| no results yet |" in rows[2]  # ported, but nothing written in this folder


def test_studies_skip_the_harness_and_know_which_are_ported(experiments_dir):
  names = run_all.studies()
  assert "common" not in names and {"problem_definition", "data_size", "legacy"} <= set(names)
  assert run_all.ported("data_size") and not run_all.ported("legacy")


def test_provenance_leaves_out_the_studies_own_results(tmp_path, monkeypatch):
  """A full run rewrites its results/ while it runs: those files must not make the tree count as changed, but
  any other tracked change must (the pathspec once excluded the folder and still listed the files inside it)."""
  import subprocess

  from experiments.common import provenance

  def git(*args):
    subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

  (tmp_path / "experiments" / "a" / "results").mkdir(parents=True)
  (tmp_path / "jaxflow").mkdir()
  results, code = tmp_path / "experiments" / "a" / "results" / "results.json", tmp_path / "jaxflow" / "x.py"
  results.write_text("{}")
  code.write_text("x = 1\n")
  git("init", "-q")
  git("add", ".")
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "init")
  monkeypatch.setattr(provenance, "ROOT", str(tmp_path))
  results.write_text('{"a": 1}')
  assert provenance.commit()["changed_files"] == [] and provenance.commit()["dirty"] is False
  code.write_text("x = 2\n")
  assert provenance.commit()["changed_files"] == ["jaxflow/x.py"]


def test_a_quick_study_past_its_limit_fails_instead_of_hanging():
  """tests/experiments/quick.py's limit ends a blocking wait (here a sleep) in the test worker's thread."""
  start = time.perf_counter()
  with pytest.raises(TimeoutError, match=r"a hung study ran past 1 s"):
    with time_limit(1, "a hung study"):
      time.sleep(30)
  assert time.perf_counter() - start < 10
  with time_limit(5, "a quick one"):  # within the limit: nothing happens, and the alarm is off afterwards
    pass
  assert signal.alarm(0) == 0
