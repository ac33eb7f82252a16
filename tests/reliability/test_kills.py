"""SIGKILL at any moment, again and again: the same command resumes and ends with the uninterrupted run's
parameters (bitwise) and logs (every record once, the same values), TensorBoard included."""

from __future__ import annotations

import os
import time

import pytest

from tests.reliability import runs

# Each chain kills one workdir's run at these points in turn, then lets it finish. A point is reached when
# its condition holds (polled every few ms); "t+S" is S seconds after the process started.
POINTS = {
  "imports": lambda w, t0: time.monotonic() - t0 > 0.2,
  "config.json": lambda w, t0: os.path.exists(os.path.join(w, "config.json")),
  "first log line": lambda w, t0: (
    os.path.getsize(os.path.join(w, "metrics.jsonl")) > 0 if os.path.exists(os.path.join(w, "metrics.jsonl")) else False
  ),
  "checkpoint folder": lambda w, t0: (
    os.path.isdir(os.path.join(w, "checkpoints", "latest"))
    and bool(os.listdir(os.path.join(w, "checkpoints", "latest")))
  ),
  "1 committed": lambda w, t0: len(runs.committed_steps(w)) >= 1,
  "3 committed": lambda w, t0: len(runs.committed_steps(w)) >= 3,
  # Epoch 6 of 8 saved: the kill lands in the 7th epoch, late in training, whatever the machine's load.
  "epoch 6 saved": lambda w, t0: any(step >= 6 * 11 for step in runs.committed_steps(w)),
  "summary.json": lambda w, t0: os.path.exists(os.path.join(w, "summary.json")),
}
# Every chain kills at least 5 times, and each kind of moment is somewhere: during imports (0.2 s, a process that
# imports; a point that already holds when the process starts kills a child of the fork server, which imported
# before it forked, at the start of its main), before any checkpoint (config.json, the first
# log line, a checkpoint being written), right after a commit (1 and 3 committed, the latter with keep=3's
# deletions under way), at a random instant after start (t+S: imports or a restore), late in training, after
# summary.json, and on a finished workdir. Each kill after imports is a process that costs ~2 CPU-s, so a
# moment is killed once, not once per chain: "1 committed" from a fresh workdir ends nothing but the mid chain
# (it also ended the early one, whose final run now starts over from an uncommitted checkpoint instead), and the
# late chain goes from a fresh workdir straight to "epoch 6 saved" ("3 committed" is the mid chain's). The runs
# are 8 epochs (tests/reliability/runs.py), so a resumed run ends about 2 s after it starts on an idle machine:
# the late chain's former t+2.0/2.5/3.0 kills landed after the run's end (or, under load, in imports) and are
# replaced by "epoch 6 saved"; the mid chain's third timed kill in the import window (t+1.0) is left out.
CHAINS = {
  "early": ["imports", "config.json", "first log line", "imports", "checkpoint folder"],
  "mid": ["1 committed", "t+0.5", "3 committed", "first log line", "t+1.5", "3 committed"],
  "late": ["epoch 6 saved", "summary.json", "3 committed", "t+0.8", "1 committed"],
}


def point(name: str):
  if name.startswith("t+"):
    seconds = float(name[2:])
    return lambda w, t0: time.monotonic() - t0 > seconds
  return POINTS[name]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  workdir = runs.finished(tmp_path_factory)  # the uninterrupted run, shared with test_damage
  return {"summary": runs.summary(workdir), "records": runs.records(workdir), "tb": runs.tensorboard_scalars(workdir)}


@pytest.fixture(scope="module")
def rerun(tmp_path_factory):
  """Where each chain's last run, the one that must finish, runs (runs.Rerunner: its stderr and exit status as
  a process of its own gives them, without paying the imports again)."""
  rerunner = runs.Rerunner(tmp_path_factory.mktemp("reruns"))
  yield rerunner
  assert rerunner.close() == ""


@pytest.mark.slow
@pytest.mark.parametrize("chain", sorted(CHAINS))
def test_killed_again_and_again_resumes_bitwise(tmp_path, reference, rerun, chain):
  workdir = str(tmp_path / "run")
  killed = []
  for name in CHAINS[chain]:
    # A kill during the imports, or at a random instant (imports or a restore), needs a process that imports;
    # every other point is reached as well by a child of the fork server (tests/forkserver.py), which has them.
    proc, t0 = runs.start(workdir, fresh=name == "imports" or name.startswith("t+")), time.monotonic()
    runs.wait_for(proc, lambda: point(name)(workdir, t0))
    status = runs.stop(proc)
    if status == -9:
      killed.append(name)
    else:  # the run ended before the point: it must have ended well
      assert status == 0, proc.stderr.read()
  print(f"chain {chain}: {len(killed)} kills at {killed}")
  assert len(killed) >= len(CHAINS[chain]) - 2  # the points land inside runs, not after them
  status, stderr = rerun(workdir)
  assert status == 0 and stderr.count("\n") <= 1, stderr
  assert runs.summary(workdir)["params_sha256"] == reference["summary"]["params_sha256"]
  assert runs.records(workdir) == reference["records"]  # every record once, the same values
  assert runs.tensorboard_scalars(workdir) == reference["tb"]
