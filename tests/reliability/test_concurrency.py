"""One writer per workdir: a second process is refused in one line naming the holder; a lock left by a
killed process is taken over with a warning; overwrite=True cannot pull a workdir from under a live run,
and once it has the lock it removes everything the old run wrote."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from jaxflow import cli
from jaxflow.workdir import LOCK_FILE, acquire_lock, read_metrics
from tests import forkserver
from tests.conftest import ROOT, merge_overrides
from tests.reliability import runs
from tests.reliability.test_signals import _finish, _free_port, _two_processes  # the 2-process launcher


@pytest.mark.slow
@pytest.mark.parametrize("second", [[], ["--config.train.overwrite=True", "--config.optim.lr=0.01"]])
def test_a_second_process_is_refused_while_the_first_runs(tmp_path, second):
  workdir = str(tmp_path / "run")
  first = runs.start(workdir)
  try:
    assert runs.wait_for(first, lambda: os.path.exists(os.path.join(workdir, "config.json")))
    # Paused while the second one tries: it holds the lock as a live process (the kernel's flock) whatever it
    # does, and a paused one can neither finish before the second gets to the lock nor spend CPU meanwhile.
    first.send_signal(signal.SIGSTOP)
    other = runs.train(workdir, *second)
    assert other.returncode == 2, other.stderr
    line = other.stderr.strip()
    assert line.count("\n") == 0 and line.startswith(
      f"jaxflow train: error: workdir {workdir} is in use by jaxflow train"
    )
    assert f"(pid {first.pid} on {socket.gethostname()} since " in line and "another --workdir" in line
  finally:
    first.send_signal(signal.SIGCONT)
    assert runs.stop(first, signal.SIGTERM) in (0, 143)
  config = json.load(open(os.path.join(workdir, "config.json")))["config"]
  assert config["optim"]["lr"] != 0.01  # the refused overwrite changed nothing


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, capsys):
  workdir = str(tmp_path / "run")
  proc = runs.start(workdir)
  assert runs.wait_for(proc, lambda: len(runs.committed_steps(workdir)) >= 1)
  assert runs.stop(proc) == -9
  assert json.load(open(os.path.join(workdir, LOCK_FILE)))["pid"] == proc.pid  # still names the dead holder
  status, err = runs.train_here(workdir), capsys.readouterr().err  # the next run, in this process
  assert status == 0, err
  assert "taking over the lock" in err and f"pid {proc.pid}" in err
  assert open(os.path.join(workdir, LOCK_FILE)).read() == ""  # released cleanly at the end


@pytest.mark.slow
def test_overwrite_removes_everything_the_old_run_wrote(tmp_path, capsys):
  """Both runs in this process (cli.main, what the console script calls): nothing here is about processes,
  and each `jaxflow` process would pay its imports again."""
  workdir = str(tmp_path / "run")
  assert cli.main(["jaxflow", "train", *runs.flags("--config.data.label_noise.rate=0.1"), f"--workdir={workdir}"]) == 0
  os.makedirs(os.path.join(workdir, "explain"))
  assert os.path.exists(os.path.join(workdir, "label_noise.json"))
  assert runs.summary(workdir)["steps"] == 88  # 8 epochs, not the 2 below
  extra = runs.flags("--config.train.overwrite=True", "--config.train.epochs=2")
  assert cli.main(["jaxflow", "train", *extra, f"--workdir={workdir}"]) == 0, capsys.readouterr().err
  left = sorted(os.listdir(workdir))
  assert left == sorted([LOCK_FILE, "checkpoints", "config.json", "metrics.jsonl", "summary.json", "tb"]), left
  assert runs.summary(workdir)["steps"] == 22


def test_the_lock_record_is_synced_while_held(tmp_path, monkeypatch):
  """The holder's record is fsync'ed once written: on NFS (or a bucket's mount) a write sits in the writing
  host's cache until a sync or the close, which a held lock does not do, so another host would read an empty
  lock file (parallel.check_shared would call a shared workdir unshared; a refused writer could not name the
  holder)."""
  from jaxflow.workdir import lock

  synced, fsync = [], os.fsync

  def record(fd):
    synced.append(os.pread(fd, 4096, 0))
    fsync(fd)

  monkeypatch.setattr(lock.os, "fsync", record)
  with acquire_lock(str(tmp_path / "run"), command="jaxflow test"):
    assert [json.loads(text)["command"] for text in synced] == ["jaxflow test"]


@pytest.mark.parametrize("where", ["a file", "below a file"])
def test_a_workdir_that_cannot_be_one_is_one_line(tmp_path, capsys, where):
  blocker = tmp_path / "plain.txt"
  blocker.write_text("not a directory")
  workdir = blocker if where == "a file" else blocker / "run"
  status = cli.main(["jaxflow", "train", *runs.flags(), f"--workdir={workdir}"])
  assert status == 2
  expected = "is a file, not a directory" if where == "a file" else "cannot be created or written"
  err = capsys.readouterr().err
  assert blocker.read_text() == "not a directory" and err.count("\n") == 1 and expected in err, err


def test_a_workdir_whose_tb_is_a_file_is_one_line(tmp_path, capsys):
  """The logs cannot be opened (tb/ is a file): one line naming it, exit 2, the file untouched (the previous
  code: FileExistsError's traceback)."""
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "tb").write_text("not a folder")
  status = cli.main(["jaxflow", "train", *runs.flags(), f"--workdir={workdir}"])
  err = capsys.readouterr().err
  assert status == 2 and err.count("\n") == 1, err
  assert f"workdir {workdir}: cannot write its logs (File exists: {workdir / 'tb'})" in err
  assert (workdir / "tb").read_text() == "not a folder"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_workdir_in_use_stops_both_processes_of_a_multi_host_run_with_one_line(tmp_path):
  """Process 0 is refused the workdir's lock (held here, by a live process): both processes exit 2 with one
  line each and write nothing, instead of process 1 waiting for process 0 in its first collective (the
  previous code: 30 s, then exit 1 with gloo's C++ error)."""
  workdir = str(tmp_path / "busy")
  with acquire_lock(workdir, command="a test holding the run"):
    done = _finish(_two_processes(workdir, _free_port(), tmp_path, "busy"), timeout=90)
  assert [code for code, _ in done] == [2, 2], [out[-2000:] for _, out in done]
  errors = [[line for line in out.splitlines() if line.startswith("jaxflow")] for _, out in done]
  assert len(errors[0]) == 1 and f"workdir {workdir} is in use by a test holding the run" in errors[0][0], errors
  assert errors[1] == [
    f"jaxflow train: error: process 0 failed at the lock of workdir {workdir} (its error says why); "
    "process 1 stops with it"
  ]
  assert os.listdir(workdir) == [LOCK_FILE]


# A command run with every file it writes limited to 8 KiB: a write past that fails with EFBIG (File too large),
# as a full disk's fails with ENOSPC (SIGXFSZ, which the kernel sends with it, ignored). Set by a shell between
# the test and the command (a preexec_fn would run in this multithreaded process). Such a command runs without
# the session's compilation cache (NO_CACHE): the entries it could not finish would be read by later tests.
FILES_OF_8_KIB = ["bash", "-c", 'trap "" XFSZ; ulimit -f 8; exec "$@"', "files_of_8_kib"]


# 12 epochs without a checkpoint until the last: metrics.jsonl passes 8 KiB at about epoch 7 (each epoch's
# records ~1.3 KiB), before any checkpoint file is written (which would fail too).
GROWING_LOGS = ("--config.train.epochs=12", "--config.checkpoint.every_epochs=0")
NO_CACHE = {"JAXFLOW_COMPILATION_CACHE": "off"}


def _hosts(
  tmp_path,
  workdirs: list[str],
  *extra: str,
  ids=(0, 1),
  timeout_s: int = 60,
  envs=None,
  cwds=None,
  small_files=(),
  port: int | None = None,
) -> list[tuple[int, str]]:
  """Processes `ids` of a 2-process `jaxflow train` of one epoch on 127.0.0.1 (the small run, `extra` flags
  replacing its own), one device each, process i in `workdirs[i]` with `envs[i]` added to its environment,
  `cwds[i]` its working directory and, for i in `small_files`, no file it writes larger than 8 KiB: each one's
  (exit status, stderr) once all ended. The coordinator's `port`: a free one unless given."""
  port, procs = port or _free_port(), []
  for i in ids:
    args = [
      *runs.flags(*merge_overrides("--config.train.epochs=1", *extra)),
      f"--workdir={workdirs[i]}",
      "--config.parallel.mode=sharded",
      f"--config.parallel.coordinator=127.0.0.1:{port}",
      "--config.parallel.num_processes=2",
      f"--config.parallel.process_id={i}",
      f"--config.parallel.init_timeout_seconds={timeout_s}",
    ]
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=1"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu", **(envs[i] if envs else {})}
    # Forked from the fork server (tests/forkserver.py), which starts a real process for what it cannot serve
    # (a file-size limit's wrapper command, a JAX_* setting of its own).
    command = [*(FILES_OF_8_KIB if i in small_files else []), runs.JAXFLOW, "train", *args]
    stderr = str(tmp_path / f"err{i}.txt")
    procs.append(forkserver.start(command, cwd=cwds[i] if cwds else ROOT, env=env, stderr=stderr))
    procs[-1].err = procs[-1].stderr  # what _finish reads back
  return _finish(procs, timeout=90)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_multi_host_train_whose_peer_never_starts_is_one_line(tmp_path):
  """Process 0 of 2 alone: after parallel.init_timeout_seconds it exits 2 with one line naming where it waited
  (the previous code: jax aborted it with a C++ stack trace, exit 134)."""
  [(code, output)] = _hosts(tmp_path, [str(tmp_path / "alone")], ids=(0,), timeout_s=3)
  assert code == 2, output[-2000:]
  [line] = output.strip().splitlines()
  assert line.startswith(
    "jaxflow train: jax.distributed did not start within parallel.init_timeout_seconds=3: process 0 of 2 waited "
    "at 127.0.0.1:"
  )
  assert line.endswith("for its peers; start every process (same config, process_id 0 .. num_processes - 1)")


@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_coordinator_port_another_process_holds_is_one_line(tmp_path):
  """Process 0 serves the coordinator: on a port another process listens on, one line naming it, exit 2 (was a
  segmentation fault inside jax's start, exit -11; or, on a port taken a moment later, jax's traceback, exit 1)."""
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    [(code, output)] = _hosts(tmp_path, [str(tmp_path / "run")], ids=(0,), timeout_s=20, port=port)
  assert code == 2, output[-2000:]
  assert output.strip().splitlines() == [
    f"jaxflow train: error: jax.distributed cannot start: process 0 serves the coordinator at 127.0.0.1:{port}, but "
    f"port {port} is taken (Address already in use); choose another parallel.coordinator (host:port) for the job"
  ]
  assert not os.path.exists(tmp_path / "run" / "checkpoints")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_check_that_fails_on_one_host_only_stops_both_with_one_line(tmp_path):
  """Process 1's data dir cannot be one (a path below a file): its validation fails there only. Both exit 2 in
  seconds, process 1 naming its data dir and process 0 naming process 1, instead of process 0 waiting for it
  in the backend's start (the previous code: 2 min, then exit 1 with a traceback)."""
  workdir = str(tmp_path / "run")
  (tmp_path / "afile").write_text("")
  bad_dir = str(tmp_path / "afile" / "sub")
  done = _hosts(tmp_path, [workdir, workdir], envs=[{}, {"JAXFLOW_DATA_DIR": bad_dir}])
  assert [code for code, _ in done] == [2, 2], [out[-2000:] for _, out in done]
  errors = [[line for line in out.splitlines() if "error:" in line] for _, out in done]
  assert errors[0] == [
    "jaxflow train: error: process 1 failed at the config's validation (its error says why); process 0 stops with it"
  ]
  assert len(errors[1]) == 1 and f"could not be prepared in data_dir='{bad_dir}'" in errors[1][0], errors
  assert not os.path.exists(workdir)  # nothing written


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_a_workdir_that_the_hosts_do_not_share_is_one_line(tmp_path):
  """Each process with a workdir of its own (as hosts with local disks at one path would have): both exit 2
  with one line naming process 1, and nothing but the lock is written (the previous code: both died with
  orbax's traceback about mismatched barriers, after writing config.json and a checkpoint folder; with truly
  separate disks at one path, orbax waits for the other host's files forever)."""
  workdirs = [str(tmp_path / "host0"), str(tmp_path / "host1")]
  done = _hosts(tmp_path, workdirs)
  assert [code for code, _ in done] == [2, 2], [out[-2000:] for _, out in done]
  for workdir, (_, out) in zip(workdirs, done):
    assert [line for line in out.splitlines() if line.startswith("jaxflow")] == [
      f"jaxflow train: error: workdir {workdir}: process 1 does not see the files process 0 wrote there; a "
      "multi-host job needs it on a filesystem every host shares (NFS, a cloud bucket's mount), at the same path"
    ] and "Traceback" not in out, out[-2000:]
  assert os.listdir(workdirs[0]) == [LOCK_FILE] and not os.path.exists(workdirs[1])


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_hosts_that_load_different_data_stop_with_one_line(tmp_path):
  """The same relative source path on two hosts (here: two working directories) holds other arrays of the same
  shape: both exit 2 with one line naming process 1 (the previous code trained each process on its own data and
  exited 0: a silently wrong run)."""
  cwds = [tmp_path / "host0", tmp_path / "host1"]
  for seed, cwd in enumerate(cwds):
    rng = np.random.default_rng(seed)
    (cwd / "data").mkdir(parents=True)
    np.savez(cwd / "data" / "arrays.npz", x=rng.normal(size=(40, 6)).astype(np.float32), y=np.arange(40) % 2)
  workdir = str(tmp_path / "run")
  done = _hosts(
    tmp_path,
    [workdir, workdir],
    "--config.data.name=npz:data/arrays.npz",
    "--config.data.input_feature=features",
    "--config.train.batch_size=8",
    envs=[{"JAXFLOW_DATA_DIR": str(cwd / "prepared")} for cwd in cwds],  # each host its own data dir
    cwds=cwds,
  )
  assert [code for code, _ in done] == [2, 2], [out[-2000:] for _, out in done]
  for _, out in done:
    errors = [line for line in out.splitlines() if "error:" in line]
    assert errors == [
      "jaxflow train: error: data.name='npz:data/arrays.npz': process 1 loaded other examples than process 0 "
      "(another version of the data in its data dir, or another file at the source's path); every host needs the "
      "same data"
    ], out[-2000:]


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_logs_process_0_cannot_open_stop_both_processes_with_one_line(tmp_path):
  """Only process 0 writes the logs; tb/ is a file: both exit 2 in seconds, process 1 naming process 0 (the
  previous code: process 0's traceback, then both waited at their next collective until killed)."""
  workdir = tmp_path / "run"
  workdir.mkdir()
  (workdir / "tb").write_text("not a folder")
  done = _hosts(tmp_path, [str(workdir), str(workdir)])
  assert [code for code, _ in done] == [2, 2], [out[-2000:] for _, out in done]
  errors = [[line for line in out.splitlines() if "error:" in line] for _, out in done]
  assert len(errors[0]) == 1 and "cannot write its logs (File exists:" in errors[0][0], errors
  assert errors[1] == [
    "jaxflow train: error: process 0 failed at opening the runs' logs (its error says why); process 1 stops with it"
  ]


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE")
def test_logs_that_cannot_be_written_mid_run_are_one_line(tmp_path):
  """The log files stop growing at 8 KiB (as on a full disk) in the middle of a run: exit 1, one line naming
  the workdir and the cause (the previous code: OSError's traceback)."""
  workdir = tmp_path / "run"
  done = subprocess.run(
    [*FILES_OF_8_KIB, runs.JAXFLOW, "train", *runs.flags(*GROWING_LOGS), f"--workdir={workdir}"],
    capture_output=True,
    text=True,
    cwd=ROOT,
    timeout=120,
    env={**os.environ, **NO_CACHE},
  )
  lines = [line for line in done.stderr.splitlines() if line.startswith("jaxflow train:")]
  assert done.returncode == 1 and lines == [
    f"jaxflow train: workdir {workdir}: writing its logs failed (File too large); the run stopped, its checkpoints "
    "as they were: rerun the same command to resume once the cause is fixed"
  ], done.stderr[-2000:]
  assert "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo collectives on 127.0.0.1")
def test_logs_process_0_cannot_write_mid_run_stop_both_processes_with_one_line(tmp_path):
  """Process 0's files stop growing at 8 KiB in the middle of a 2-process run (only it writes the logs): both
  exit 1 at that epoch's end with one line each, before its checkpoint, so every checkpoint a rerun could resume
  has its epoch's records (the previous code: process 0's traceback, and both waited at their next collective
  until killed). A 16-unit MLP: each process's part of a checkpoint stays under the limit (a failure inside
  orbax's save still hangs: a known limit)."""
  workdir = str(tmp_path / "run")
  every_epoch = (*GROWING_LOGS, "--config.checkpoint.every_epochs=1", "--config.model.widths=(16,)")
  done = _hosts(tmp_path, [workdir, workdir], *every_epoch, small_files=(0,), envs=[NO_CACHE, {}])
  assert [code for code, _ in done] == [1, 1], [out[-2000:] for _, out in done]
  assert all("Traceback" not in out for _, out in done), [out[-2000:] for _, out in done]
  logged = {record["step"] for record in read_metrics(workdir, "eval")}  # a half-written last line is dropped
  saved = runs.committed_steps(workdir)
  assert saved and set(saved) <= logged and max(saved) < 12 * 11, (saved, sorted(logged))
  lines = [[line for line in out.splitlines() if line.startswith("jaxflow train:")] for _, out in done]
  assert lines[0] == [
    f"jaxflow train: workdir {workdir}: writing its logs failed (File too large); the run stopped, its checkpoints "
    "as they were: rerun the same command to resume once the cause is fixed"
  ]
  assert lines[1] == [
    "jaxflow train: process 0 failed to write the logs (its error says why); process 1 stops with it, the "
    "checkpoints as they were"
  ]
