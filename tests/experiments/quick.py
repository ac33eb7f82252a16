"""What every study's --quick test shares: running quick studies, and the experiments/ standard's outputs.

The structure is checked, not the numbers (a quick run trains a few steps on two seeds): report.md has every
section in order, results.json the keys experiments/run_all.py and the index read, every plot is a PNG file.

A study's quick run is `experiments/<name>/run.py`'s `main(["--quick", ...])` called in the test worker itself,
by the module fixture of the one test file that checks it. Why not a subprocess: the worker has already paid
Python's and jax's imports (tests/conftest.py prepares the data through jaxflow), a subprocess paid them again
(~1.5-3 CPU-s a run, measured), and the studies set no JAX option of their own that could reach another test:
their compilation cache is the session's (JAXFLOW_COMPILATION_CACHE, set by tests/conftest.py for every test, so
programs another test compiled are loaded, not compiled again). What must run in a process of its own still
does: the hardware study's pinned worker per thread setting, the randomness study's `jaxflow seeds compare`.
Why not groups of studies in one run any more: with the imports paid by the worker, a group saved nothing, and
each test file ran (and was charged for) every study of its group; one study per fixture also lets xdist spread
the studies over its workers.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal

from experiments.common import report

PNG = b"\x89PNG\r\n\x1a\n"


def run_quick(tmp_path_factory, studies: tuple[str, ...]) -> str:
  """Runs each study's --quick into OUT/<study>, one after another with one --workdir; returns OUT."""
  out = str(tmp_path_factory.mktemp("quick_out"))
  work = out + "_work"
  os.makedirs(work, exist_ok=True)
  for name in studies:
    main = importlib.import_module(f"experiments.{name}.run").main
    with time_limit(LIMIT_SECONDS, f"experiments/{name} --quick"):
      main(["--quick", "--out", os.path.join(out, name), "--workdir", work])
  return out


# What the subprocess these studies ran in was allowed: a hung study fails its tests instead of holding an xdist
# worker until CI's own limit.
LIMIT_SECONDS = 900


@contextlib.contextmanager
def time_limit(seconds: int, what: str):
  """SIGALRM raises in the test's (main) thread after `seconds`, also out of a blocking read of a pipe; the
  study's own `finally` blocks then stop its processes (experiments/hardware's Workers.close kills them)."""

  def expired(signum, frame):
    raise TimeoutError(f"{what} ran past {seconds} s")

  previous = signal.signal(signal.SIGALRM, expired)
  signal.alarm(seconds)
  try:
    yield
  finally:
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def quick_outputs(tmp_path_factory, study: str) -> str:
  """The folder of `study`'s quick outputs (run_quick of that study alone)."""
  return os.path.join(run_quick(tmp_path_factory, (study,)), study)


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
