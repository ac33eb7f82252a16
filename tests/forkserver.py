"""Real `jaxflow` processes for the tests that signal, kill or pair them, without paying the imports each time.

A `jaxflow train` process spends ~1.6 CPU-s importing jax, flax, optax, orbax and jaxflow before it reads its
config, and the reliability tests start dozens of them to kill or signal (104 processes in the suite, 56 of
them `jaxflow train`). The fork server is one process per xdist worker that imported all of that once, started
no backend (no XLA exists in it yet; its only other threads are OpenBLAS's, whose fork handlers numpy relies on)
and forks a child per `start`. The child is a process of its own: its own pid and signal dispositions,
killed, signalled and exiting as `jaxflow` does, running the console script's `jaxflow.cli.main.main` on the
argv, cwd and environment it was given, stdout and stderr on the files it was given, and ending through the
interpreter's normal exit (atexit handlers run, as in a `jaxflow` process).

What it is not: a process that imports. A test about the import phase (a kill during imports, a kill at a
random instant), about the console script itself, or one that gives a JAX_* or PYTHON* setting read at import
or interpreter start (other than the server's own) starts a real process: `start` falls back to
subprocess.Popen by itself for anything it cannot serve, and `fresh=True` asks for one. Also shared by every
child: the server's hash seed and numpy's global random state, so two children of one job cannot disagree on
a set's iteration order as two fresh processes could (nothing in jaxflow depends on one today), and
`sys.path[0]` is the repository (a fresh `jaxflow` has its script's folder there).

    python -m tests.forkserver --serve STATUS_DIR   (stdin: one JSON job per line; stdout: the child's pid)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JAXFLOW = os.path.join(os.path.dirname(sys.executable), "jaxflow")


def _import_time_settings(env, default_platform: str) -> dict[str, str]:
  """What a child cannot change once the server has imported: jax's JAX_* variables (read when jax is imported;
  no JAX_PLATFORMS means the platform jax picks, `default_platform`) and Python's PYTHON* ones (hash seed,
  warnings, path: read when the interpreter starts). A job whose settings differ gets a process of its own."""
  settings = {k: v for k, v in env.items() if k.startswith(("JAX_", "PYTHON"))}
  settings.setdefault("JAX_PLATFORMS", default_platform)
  return settings


class Forked:
  """What the tests use of subprocess.Popen, for a child of the fork server: pid, poll, wait, kill,
  send_signal, returncode (negative: the signal that ended it, as Popen says), and `stderr` (the file it wrote,
  read back) when it was asked for."""

  def __init__(self, server: Server, pid: int, job: int, stderr: str | None):
    self.server, self.pid, self.job, self.returncode = server, pid, job, None
    self.args = ["forked", str(pid)]
    self.stderr = open(stderr) if stderr else None

  def poll(self) -> int | None:
    if self.returncode is None:
      ended = self.server.ended(self.job, self.pid)
      if ended is not None:
        self.returncode = ended
    return self.returncode

  def wait(self, timeout: float | None = None) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    while self.poll() is None:
      if deadline is not None and time.monotonic() > deadline:
        raise subprocess.TimeoutExpired(self.args, timeout)
      time.sleep(0.003)
    return self.returncode

  def send_signal(self, signum: int) -> None:
    if self.poll() is None:
      try:
        os.kill(self.pid, signum)
      except ProcessLookupError:  # it ended between the poll and the signal
        pass

  def kill(self) -> None:
    self.send_signal(signal.SIGKILL)

  def terminate(self) -> None:
    self.send_signal(signal.SIGTERM)


class Server:
  """The fork server of this process (started on first use, ended at exit)."""

  def __init__(self):
    import jax  # the platform a process of this environment would pick (the worker's own: jax is loaded here)

    self.owner, self.jobs = os.getpid(), 0  # a forked copy of this process must not close the owner's server
    self.status_dir = tempfile.mkdtemp(prefix="jaxflow_forkserver_")
    self.platform = os.environ.get("JAX_PLATFORMS") or jax.default_backend()
    self.env = {**os.environ, "JAX_PLATFORMS": self.platform}
    self.proc = subprocess.Popen(
      [sys.executable, "-m", "tests.forkserver", "--serve", self.status_dir],
      stdin=subprocess.PIPE,
      stdout=subprocess.PIPE,
      text=True,
      cwd=ROOT,
      env=self.env,
    )
    self.cpu_seconds = 0.0  # CPU of the children seen to end (tests/conftest.py's CPU log adds it)
    atexit.register(self.close)

  def serves(self, command: list[str], env) -> bool:
    """The `jaxflow` console script, or `python SCRIPT.py ...` (a test's worker script: run as __main__ in the
    child, so a worker that sets XLA_FLAGS before it imports jax still does so before any backend exists)."""
    runnable = command[0] == JAXFLOW or (command[0] == sys.executable and command[1:2] and command[1].endswith(".py"))
    same = _import_time_settings(env, self.platform) == _import_time_settings(self.env, self.platform)
    return bool(runnable) and same and self.proc.poll() is None

  def start(self, command: list[str], *, cwd: str, env, stdout: str | None, stderr: str | None) -> Forked:
    for path in (stdout, stderr):  # empty and present before the handle opens its stderr for reading
      if path:
        open(path, "w").close()
    argv = ["jaxflow", *command[1:]] if command[0] == JAXFLOW else command[1:]  # a script: its own argv
    self.jobs += 1  # status files are named by job, not by pid (a pid is reused once its process is reaped)
    job = {"id": self.jobs, "argv": argv, "cwd": str(cwd), "env": dict(env), "stdout": stdout, "stderr": stderr}
    self.proc.stdin.write(json.dumps(job) + "\n")
    self.proc.stdin.flush()
    line = self.proc.stdout.readline()
    if not line:
      raise RuntimeError("the fork server died")
    return Forked(self, int(line), self.jobs, stderr)

  def ended(self, job: int, pid: int) -> int | None:
    """The child's exit status once the server has reaped it, else None. A server that died leaves no status:
    a child that is gone then raises instead of being waited for forever."""
    path = os.path.join(self.status_dir, str(job))
    if not os.path.exists(path):
      if self.proc.poll() is not None and not os.path.exists(f"/proc/{pid}"):
        raise RuntimeError(f"the fork server died; its child {pid} ended with an unknown status")
      return None
    with open(path) as f:
      code, cpu = json.load(f)
    os.remove(path)
    self.cpu_seconds += cpu
    return code

  def close(self) -> None:
    if os.getpid() != self.owner:  # a forked copy of the test process: the server is not its own
      return
    if self.proc.poll() is None:
      self.proc.stdin.close()
      try:
        self.proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
    self.proc.stdout.close()
    shutil.rmtree(self.status_dir, ignore_errors=True)


_servers: dict[int, Server] = {}  # per process id: a forked test process must not write to its parent's server


def server() -> Server:
  if os.getpid() not in _servers:
    _servers[os.getpid()] = Server()
  return _servers[os.getpid()]


def children_cpu() -> float:
  """CPU seconds of this process's forked children seen to end so far."""
  return _servers[os.getpid()].cpu_seconds if os.getpid() in _servers else 0.0


def start(command: list[str], *, cwd=ROOT, env=None, stdout=None, stderr=None, fresh: bool = False):
  """`command` (the `jaxflow` console script and its arguments) as a process of its own: forked from the server
  when it can serve it, else subprocess.Popen. `stdout` / `stderr`: paths of files the process writes (None:
  discarded); the returned handle's `stderr` reads that file back."""
  env = os.environ if env is None else env
  if not fresh and server().serves(command, env):
    return server().start(command, cwd=cwd, env=env, stdout=stdout, stderr=stderr)
  out = open(stdout, "w") if stdout else subprocess.DEVNULL
  if stderr and stderr == stdout:  # one file through one descriptor (2>&1)
    err = subprocess.STDOUT
  else:
    err = open(stderr, "w") if stderr else subprocess.DEVNULL
  proc = subprocess.Popen(command, stdout=out, stderr=err, cwd=cwd, env=env)
  for f in (out, err):
    if f not in (subprocess.DEVNULL, subprocess.STDOUT):
      f.close()
  proc.stderr = open(stderr) if stderr else None
  return proc


# --------------------------------------------------------------------------------------------------
# The server process


def ended(proc, timeout: float) -> int:
  """The exit status of a process `start` returned (forked or not) once it ends, SIGKILLed past `timeout` (or
  when the wait is interrupted: a test's process is never left running)."""
  try:
    proc.wait(timeout=timeout)
  finally:
    if proc.poll() is None:
      proc.kill()
      proc.wait()
  return proc.returncode


def _serve(status_dir: str) -> dict:
  """Imports what `jaxflow train` imports, then forks a child per job; returns the job in a child."""
  import jaxflow.cli.main
  import jaxflow.run.train
  import jaxflow.training.checkpoints
  import jaxflow.training.writers  # noqa: F401

  jobs: dict[int, int] = {}  # child pid -> job id

  def reap(signum, frame) -> None:
    while True:
      try:
        pid, status, usage = os.wait4(-1, os.WNOHANG)
      except ChildProcessError:
        return
      if pid == 0:
        return
      record = [os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime]
      path = os.path.join(status_dir, str(jobs.pop(pid)))
      with open(path + ".tmp", "w") as f:
        json.dump(record, f)
      os.replace(path + ".tmp", path)

  signal.signal(signal.SIGCHLD, reap)
  while True:
    line = sys.stdin.readline()
    if not line:
      return {}
    job = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # reaped only once its job is known
    pid = os.fork()
    if pid == 0:
      signal.signal(signal.SIGCHLD, signal.SIG_DFL)
      signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
      return job
    jobs[pid] = job["id"]
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    sys.stdout.write(f"{pid}\n")
    sys.stdout.flush()


def _run_child(job: dict) -> int:
  """In the forked child: the job's files, cwd, environment and argv, then the console script's main."""
  null = os.open(os.devnull, os.O_RDWR)
  os.dup2(null, 0)
  opened = {}  # one file for stdout and stderr both, when they name the same path (2>&1)
  for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
    if path and path not in opened:
      opened[path] = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(opened[path] if path else null, fd)
  os.chdir(job["cwd"])
  os.environ.clear()
  os.environ.update(job["env"])
  sys.argv = list(job["argv"])
  if job["argv"][0] != "jaxflow":  # a worker script, as `python SCRIPT.py ARGS` runs it
    import runpy

    sys.path[0] = os.path.dirname(os.path.abspath(job["argv"][0]))
    runpy.run_path(job["argv"][0], run_name="__main__")
    return 0
  from jaxflow.cli.main import main

  return main(job["argv"])


if __name__ == "__main__":
  assert sys.argv[1] == "--serve", sys.argv
  child_job = _serve(sys.argv[2])
  if child_job:
    sys.exit(_run_child(child_job))
