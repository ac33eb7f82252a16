"""One writer per workdir: a lock held for the whole life of a command that writes one.

Two processes writing one workdir corrupt it (interleaved logs, two checkpoint managers racing, a
config.json that does not match its checkpoints). Every command that writes a workdir (train, seeds,
tune, profile, audit, explain into a run) holds `WORKDIR/.jaxflow.lock` with `fcntl.flock` while it runs.
A second process gets a one-line refusal naming the holder (pid, host, command, since when). The kernel
releases a flock when its process dies, SIGKILL included, so a lock left by a dead process is simply
free; the lock file still names that process, and the next holder says it takes over from it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import socket
import sys

from jaxflow.config import ConfigError

LOCK_FILE = ".jaxflow.lock"


class WorkdirInUse(ConfigError):
  """Another live process holds the workdir's lock."""


def _holder(fd: int) -> dict:
  try:
    text = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
    holder = json.loads(text) if text else {}
  except (OSError, ValueError):
    return {}
  return holder if isinstance(holder, dict) else {}


def _describe(holder: dict) -> str:
  if not holder:
    return "another process"
  return (
    f"{holder.get('command', 'jaxflow')} (pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')})"
  )


def _open(workdir: str) -> int:
  """The lock file's descriptor, creating the workdir; one-line errors for a workdir that cannot be one."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f"--workdir={workdir} is a file, not a directory; choose a directory (it is created if missing)")
  try:
    os.makedirs(workdir, exist_ok=True)
    return os.open(os.path.join(workdir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
  except OSError as e:
    raise ConfigError(f"--workdir={workdir} cannot be created or written: {e.strerror}") from None


class WorkdirLock:
  """A held lock; `release()` (or leaving the `with` block) lets the next writer in."""

  def __init__(self, workdir: str, fd: int):
    self.workdir, self._fd = workdir, fd

  def release(self) -> None:
    if self._fd is None:
      return
    os.ftruncate(self._fd, 0)  # a released lock names nobody
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None

  def __enter__(self) -> WorkdirLock:
    return self

  def __exit__(self, *exc) -> None:
    self.release()


def acquire(workdir: str, *, command: str) -> WorkdirLock:
  """Takes `workdir`'s lock for `command` (e.g. "jaxflow train"); WorkdirInUse when a live process holds it."""
  fd = _open(workdir)
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    holder = _holder(fd)
    os.close(fd)
    raise WorkdirInUse(
      f"workdir {workdir} is in use by {_describe(holder)}; wait for it to finish or use another --workdir"
    ) from None
  previous = _holder(fd)
  if previous and previous.get("pid") != os.getpid():
    print(
      f"jaxflow: warning: taking over the lock of workdir {workdir} from {_describe(previous)}, "
      "which ended without releasing it",
      file=sys.stderr,
    )
  now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
  record = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": now}
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
  # Out of this host's cache now, not at the release: on a filesystem hosts share (NFS, a bucket's mount)
  # another host reads the record while it is held (a multi-host job's parallel.check_shared, which compares
  # it across processes; a refused writer naming this holder). Best effort: a filesystem that cannot sync
  # still takes the lock.
  with contextlib.suppress(OSError):
    os.fsync(fd)
  return WorkdirLock(workdir, fd)
