"""Ctrl-C and SIGTERM (what SLURM and preemption send): a checkpoint at the next boundary, the logs
flushed, exit 130 / 143 with one line saying how to resume, no traceback; resuming gives the uninterrupted
run's parameters. Also on a one-step-per-dispatch run (stopped at a log point inside an epoch) and on two
jax.distributed processes, which agree on where to stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from tests import forkserver
from tests.reliability import runs

# One step per dispatch and 89 steps per epoch: a signal is taken at the next log point (every 5 steps), almost
# always inside an epoch. The signal follows the first committed checkpoint (epoch 1's: orbax finishes a commit
# before it starts the next save, so it is seen by epoch 2's end); a step takes ~3 ms here, so 5 epochs leave
# at least 2 (~180 steps, ~0.5 s) for the signal to land before the end.
STEPWISE = ["--config.train.steps_per_dispatch=1", "--config.train.batch_size=16", "--config.train.epochs=5"]
# Fused epochs take ~20 ms each (eval included): 50 of them, so that the signal, sent once the first checkpoint
# (after epoch 1) is committed, lands ~1 s before the end. A checkpoint every 10 epochs, not every epoch: each
# orbax save holds the loop ~0.14 s, and the save a signal asks for is written at the next epoch's end whatever
# the cadence.
FUSED = ["--config.train.epochs=50", "--config.checkpoint.every_epochs=10"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """The uninterrupted runs, trained in this process (cli.main, what the console script calls): what is
  tested is the interrupted process and its rerun, and their parameters must equal these bitwise whichever
  process computed them."""
  out = {}
  for name, extra in (("fused", FUSED), ("stepwise", STEPWISE)):
    workdir = tmp_path_factory.mktemp(name)
    assert runs.train_here(workdir, *extra) == 0
    out[name] = (runs.summary(workdir), runs.records(workdir))
  return out


@pytest.mark.slow
@pytest.mark.parametrize(
  ("signum", "status", "kind"),
  [(signal.SIGINT, 130, "fused"), (signal.SIGTERM, 143, "fused"), (signal.SIGTERM, 143, "stepwise")],
)
def test_a_signal_saves_says_how_to_resume_and_resumes_bitwise(tmp_path, capsys, reference, signum, status, kind):
  workdir = str(tmp_path / "run")
  extra = STEPWISE if kind == "stepwise" else FUSED
  proc = runs.start(workdir, *extra)
  assert runs.wait_for(proc, lambda: len(runs.committed_steps(workdir)) >= 1)
  assert runs.stop(proc, signum) == status
  err = proc.stderr.read()
  name = signal.Signals(signum).name
  assert err.count("\n") == 1 and err.startswith(f"jaxflow train: stopped by {name} at step "), err
  assert "rerun the same command to resume" in err and "Traceback" not in err
  stopped_at = int(err.split(" at step ")[1].split()[0])
  assert stopped_at in runs.committed_steps(workdir)  # the checkpoint is where it says
  if kind == "stepwise":
    assert stopped_at % 5 == 0 or stopped_at % 89 == 0  # a log point, or an epoch's end
  assert runs.train_here(workdir, *extra) == 0, capsys.readouterr().err  # the rerun, in this process
  summary, records = reference[kind]
  assert runs.summary(workdir)["resumed_from_step"] == stopped_at
  assert runs.summary(workdir)["params_sha256"] == summary["params_sha256"]
  assert runs.records(workdir) == records


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _two_processes(workdir: str, port: int, tmp_path, tag: str, *extra: str) -> list[subprocess.Popen]:
  """Processes 0 and 1 of a `jaxflow train` job on 127.0.0.1 (8 epochs of the small run unless `extra` flags
  say otherwise), one device each, stderr to files."""
  procs = []
  for i in range(2):
    args = [
      # SIGTERM follows the second committed checkpoint (epoch 2's: orbax finishes a commit before it starts the
      # next save, so it is seen by epoch 3's end), and with epoch e+1 dispatched before epoch e's end is handled
      # both stop at epoch 5's end at the latest: 8 epochs leave 3 after it. An epoch's end (save, evaluation,
      # the agreement on a stop) is most of a 2-process run's time here, not its steps: 12 epochs cost ~1 CPU-s
      # more per run.
      *runs.flags(*extra),  # the small run: 8 epochs
      f"--workdir={workdir}",
      "--config.parallel.mode=sharded",
      f"--config.parallel.coordinator=127.0.0.1:{port}",
      "--config.parallel.num_processes=2",
      f"--config.parallel.process_id={i}",
      "--config.parallel.init_timeout_seconds=60",
    ]
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    # Forked from the fork server (tests/forkserver.py): what is tested starts after the imports.
    stderr = str(tmp_path / f"{tag}_err{i}.txt")
    procs.append(forkserver.start([runs.JAXFLOW, "train", *args], env=env, stderr=stderr))
    procs[-1].err = procs[-1].stderr  # what _finish reads back
  return procs


def _finish(procs, timeout: float = 240) -> list[tuple[int, str]]:
  out = []
  for p in procs:
    forkserver.ended(p, timeout)
    p.err.seek(0)
    out.append((p.returncode, p.err.read()))
  return out


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_two_processes_agree_where_to_stop_and_resume_bitwise(tmp_path):
  """SIGTERM reaches one process of two; both stop at the same epoch's end, save, exit 143, and the
  rerun ends where an uninterrupted 2-process run ends."""
  straight = str(tmp_path / "straight")
  done = _finish(_two_processes(straight, _free_port(), tmp_path, "straight"))
  assert [s for s, _ in done] == [0, 0], done
  workdir = str(tmp_path / "run")
  procs = _two_processes(workdir, _free_port(), tmp_path, "run")
  assert runs.wait_for(procs[0], lambda: len(runs.committed_steps(workdir)) >= 2)
  procs[1].send_signal(signal.SIGTERM)
  stopped = _finish(procs)
  assert [s for s, _ in stopped] == [143, 143], stopped
  steps = {err.split(" at step ")[1].split()[0] for _, err in stopped}
  assert len(steps) == 1, stopped  # the same step on both
  resumed = _finish(_two_processes(workdir, _free_port(), tmp_path, "resumed"))
  assert [s for s, _ in resumed] == [0, 0], resumed
  assert runs.summary(workdir)["params_sha256"] == runs.summary(straight)["params_sha256"]
  assert runs.records(workdir) == runs.records(straight)
