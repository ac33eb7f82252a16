"""What the reliability tests share: a small run that takes long enough to be interrupted, real processes
started like a user starts them, and what an uninterrupted run leaves behind to compare against."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from tests import forkserver
from tests.conftest import ROOT, built_once, config_path

JAXFLOW = forkserver.JAXFLOW  # the console script the fork server serves
# 8 epochs of 11 steps, a checkpoint after every epoch (keep 3), train logs every 5 steps: many files appear,
# so a kill can land anywhere in a run. Why 8: the kill chains' latest point inside training is "epoch 6 saved"
# (tests/reliability/test_kills.py), which must leave an epoch to train; a damaged newest checkpoint falls
# back to the one before, so 3 must be kept (>= 3 epochs). Each epoch costs ~0.1 CPU-s (mostly its orbax
# save), and every resumed run trains to the end: 30 epochs made each full run ~2.3 CPU-s dearer.
SMALL = [
  f"--config={config_path('digits_mlp.py')}",
  "--config.model.widths=(32,)",
  "--config.train.epochs=8",
  "--config.train.log_every=5",
  "--config.train.histogram_every=1000",
  "--config.train.class_report_every=1000",
  "--config.checkpoint.every_epochs=1",
  "--config.checkpoint.keep=3",
  "--quiet",
]


def flags(*extra: str) -> list[str]:
  """SMALL with `extra` flags replacing SMALL's of the same field (a field may be given only once)."""
  fields = {flag.split("=", 1)[0] for flag in extra}
  return [flag for flag in SMALL if flag.split("=", 1)[0] not in fields] + list(extra)


def train(workdir, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
  """`jaxflow train` on the small run, to the end, as a process of its own (forked from the fork server: the
  imports paid once); its exit status, stdout and stderr."""
  command = [JAXFLOW, "train", *flags(*extra), f"--workdir={workdir}"]
  stdout, stderr = _output_file(workdir, "stdout"), _output_file(workdir, "stderr")
  proc = forkserver.start(command, stdout=stdout, stderr=stderr)
  forkserver.ended(proc, timeout)
  with open(stdout) as out, open(stderr) as err:
    return subprocess.CompletedProcess(command, proc.returncode, out.read(), err.read())


def _output_file(workdir, what: str) -> str:
  """A new file beside `workdir` for a process's stdout or stderr."""
  folder, name = os.path.split(os.path.abspath(workdir))
  os.makedirs(folder, exist_ok=True)
  fd, path = tempfile.mkstemp(dir=folder, prefix=f"{name}.", suffix=f".{what}")
  os.close(fd)
  return path


def train_here(workdir, *extra: str) -> int:
  """The same `jaxflow train` in this process (cli.main, the function the console script calls): for a run
  that must only resume and finish, where a process of its own is not what is tested and would pay the
  imports again. Its exit status; what it printed is in the test's capsys."""
  from jaxflow import cli

  return cli.main(["jaxflow", "train", *flags(*extra), f"--workdir={workdir}"])


class Rerunner:
  """`jaxflow train` reruns in one worker process kept for a test module (tests/reliability/rerun_worker.py):
  `rerun(workdir, *extra)` -> (exit status, stderr), as a `jaxflow` process of its own would give them, without
  paying the imports each time. For runs that must finish, never for the process a test signals or kills."""

  def __init__(self, folder):
    self.folder, self.count = folder, 0
    self.err = open(os.path.join(folder, "worker.err"), "w")
    self.proc = subprocess.Popen(
      [sys.executable, "-m", "tests.reliability.rerun_worker", "--serve"],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      stderr=self.err,
      text=True,
      cwd=ROOT,
    )

  def __call__(self, workdir, *extra: str) -> tuple[int, str]:
    self.count += 1
    stderr = os.path.join(self.folder, f"{self.count}.err")
    job = {"args": [*flags(*extra), f"--workdir={workdir}"], "stderr": stderr}
    self.proc.stdin.write(json.dumps(job) + "\n")
    self.proc.stdin.flush()
    status = self.proc.stdout.readline()
    assert status, open(os.path.join(self.folder, "worker.err")).read()  # the worker died
    with open(stderr) as f:
      return int(status), f.read()

  def close(self) -> str:
    """Ends the worker; what it printed outside the reruns (the caller asserts it is nothing)."""
    self.proc.stdin.close()
    self.proc.wait(timeout=60)
    self.proc.stdout.close()
    self.err.close()
    with open(os.path.join(self.folder, "worker.err")) as f:
      return f.read()


def finished(tmp_path_factory) -> str:
  """The workdir of one uninterrupted small run, trained once per test session (a real `jaxflow train`) and
  shared read-only by every test that compares against it (test_kills, test_damage): copy it before
  changing it."""

  def build(workdir: str) -> None:
    done = train(workdir)
    assert done.returncode == 0, done.stderr

  return built_once(tmp_path_factory, "reliability_small_run", build)


def start(workdir, *extra: str, fresh: bool = False):
  """`jaxflow train` on the small run as a process of its own, to signal or kill: forked from the worker's fork
  server (tests/forkserver.py: the imports paid once), or, `fresh`, a new process that imports (a kill during
  the imports, or at a random instant). `.stderr` of the handle reads what it wrote, once it has ended."""
  command = [JAXFLOW, "train", *flags(*extra), f"--workdir={workdir}"]
  return forkserver.start(command, stderr=_output_file(workdir, "stderr"), fresh=fresh)


def committed_steps(workdir, which: str = "latest") -> list[int]:
  directory = os.path.join(workdir, "checkpoints", which)
  if not os.path.isdir(directory):
    return []
  return sorted(
    int(s)
    for s in os.listdir(directory)
    if s.isdigit() and os.path.exists(os.path.join(directory, s, "commit_success.txt"))
  )


def wait_for(proc, ready, timeout: float = 120) -> bool:
  """Polls `ready()` every few ms until it holds (True) or the process ends first (False)."""
  deadline = time.monotonic() + timeout
  while time.monotonic() < deadline:
    if ready():
      return True
    if proc.poll() is not None:
      return False
    time.sleep(0.003)
  raise TimeoutError("the run neither reached the point nor ended")


def stop(proc, signum: int = signal.SIGKILL, timeout: float = 60) -> int:
  """Sends `signum` (if the process still runs) and returns its exit status."""
  if proc.poll() is None:
    proc.send_signal(signum)  # an ended process is ignored (Popen and the fork server alike)
  return forkserver.ended(proc, timeout)


def summary(workdir) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


def records(workdir) -> list[tuple]:
  """metrics.jsonl as (step, split, every numeric value) tuples, in file order."""
  out = []
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      r = json.loads(line)
      out.append((r["step"], r["split"], tuple(sorted((k, v) for k, v in r.items() if isinstance(v, float)))))
  return out


def tensorboard_scalars(workdir, tag: str = "train/loss") -> list[tuple[int, float]]:
  """(step, value) of a tag as TensorBoard's own reader sees it, purges applied."""
  from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

  acc = EventAccumulator(os.path.join(workdir, "tb"))
  acc.Reload()
  return [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)]
