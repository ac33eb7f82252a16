"""Where a study's runs train: in this process (`local`, the default) or as tasks on a Ray cluster (`ray`).

  with open_executor("ray", "10.0.0.1:6379") as cluster:   # None for "local"
    outcomes = cluster.map(train_fn, jobs, workdirs=[[wd0], [wd1]])

A study (tune, seeds) keeps its own loop on the driver: it decides which runs to train, hands each job (the
config as data plus the run's workdir path) to `map`, and afterwards reads every run's summary.json back from
its workdir, so its records are the ones a local study writes. The cluster's nodes must see the workdirs at
the same paths (a shared filesystem) and have jaxflow installed.

Failures. A task whose worker process or node dies is retried by Ray (`MAX_RETRIES`); the retry trains the
same workdir again, which resumes from the run's last checkpoint (a dead process's workdir lock is freed by
the kernel, see jaxflow.workdir.lock). A task still lost after its retries comes back as a `TaskLost` in its
slot of `map`'s result, and the study records that run as failed and goes on. Each attempt is noted in the
workdirs it trains (`tasks.json`: task id, attempt, node, host, pid, start time), so a retry can be seen.

Ray is an optional extra (`pip install 'jaxflow[ray]'`), imported only when `--executor=ray` is chosen.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
from collections.abc import Callable, Sequence

from jaxflow.config import ConfigError, one_line
from jaxflow.workdir import read_json, write_json

EXECUTORS = ("local", "ray")
MAX_RETRIES = 3  # Ray's retries of a task whose worker or node died (not of a run that raised)
TASKS_FILE = "tasks.json"
CONNECT_TIMEOUT_S = 5.0
# The driver's jaxflow settings (data dir, compilation cache, ...) travel with its tasks.
ENV_PREFIX = "JAXFLOW_"


class TaskLost(Exception):
  """A task that did not come back (its worker or node died more often than MAX_RETRIES, or Ray failed)."""


def check(name: str = "local", address: str | None = None) -> str | None:
  """Refuses, in one ConfigError line naming the flag, an unknown executor, an --address without
  --executor=ray, a missing ray extra, and an address where no cluster answers; returns the address to join
  (None for `local`)."""
  if name not in EXECUTORS:
    raise ConfigError(f"--executor={name!r} is not known; allowed: {', '.join(EXECUTORS)}")
  if address is not None and name != "ray":
    raise ConfigError(f"--address={address} needs --executor=ray (allowed: --executor={' | '.join(EXECUTORS)})")
  if name != "ray":
    return None
  _import_ray()
  return check_address(address)


def open_executor(name: str = "local", address: str | None = None):
  """A context manager giving None for `local` (the study trains in this process, as always) or a connected
  `RayExecutor`; `check`'s refusals come before anything connects."""
  address = check(name, address)
  return contextlib.nullcontext() if name == "local" else RayExecutor(address)


def _import_ray():
  try:
    import ray  # optional extra, ~240 MB installed: only when --executor=ray is chosen
  except ImportError:
    raise ConfigError("--executor=ray needs the ray extra: pip install 'jaxflow[ray]'") from None
  return ray


def check_address(address: str | None) -> str:
  """'auto' (Ray's own lookup: RAY_ADDRESS, or a cluster `ray start` began on this machine), or HOST:PORT of
  a head node that answers a TCP connection within CONNECT_TIMEOUT_S."""
  if address in (None, "", "auto"):
    return "auto"
  host, _, port = address.rpartition(":")
  if not host or not port.isdigit() or not 0 < int(port) < 65536:
    raise ConfigError(f"--address={address} must be HOST:PORT of a Ray cluster's head (e.g. 10.0.0.1:6379) or auto")
  try:
    socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
  except OSError as e:
    raise ConfigError(
      f"--address={address}: no Ray cluster answers there ({one_line(e.strerror or str(e))}); start one with "
      f"`ray start --head --port={port}` or give its head's HOST:PORT"
    ) from None
  return address


def _forwarded_env() -> dict[str, str]:
  return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}


class RayExecutor:
  """A connection to a Ray cluster; `map` runs one task per job and waits for all of them."""

  name = "ray"

  def __init__(self, address: str):
    """`address`: as `check` returned it (checked there: joined here without probing it again)."""
    self._ray = ray = _import_ray()
    self.address = address
    self._owned = not ray.is_initialized()  # a notebook already connected keeps its connection
    if self._owned:
      try:
        ray.init(
          address=self.address, runtime_env={"env_vars": _forwarded_env()}, logging_level="WARNING", log_to_driver=True
        )
      except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError... for a cluster it cannot join
        raise ConfigError(f"--address={self.address}: cannot join the Ray cluster there: {one_line(str(e))}") from None
    try:
      resources = ray.cluster_resources()
    except Exception as e:  # joined, then the head went away: leave Ray as found, say so in one line
      with contextlib.suppress(Exception):  # a shutdown failing too must not hide why
        self.close()
      raise ConfigError(f"--address={self.address}: the Ray cluster did not answer: {one_line(str(e))}") from None
    # A task asks for one GPU where the cluster has them (Ray hides every GPU from a task that asks for none).
    self.gpus = int(resources.get("GPU", 0))
    self.slots = max(1, self.gpus or int(resources.get("CPU", 1)))  # tasks that can run at once

  def __enter__(self) -> RayExecutor:
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  def close(self) -> None:
    if self._owned and self._ray.is_initialized():
      self._ray.shutdown()
    self._owned = False

  def map(self, fn: Callable, jobs: Sequence, *, workdirs: Sequence[Sequence[str]]) -> list:
    """`fn(job)` for every job as one Ray task each (fn: a module-level function, pickled by reference);
    returns their results in order, a `TaskLost` where a task did not come back. `workdirs[i]`: the run
    workdirs job i trains, where each attempt is noted."""
    ray = self._ray
    remote = ray.remote(run_task).options(
      max_retries=MAX_RETRIES, retry_exceptions=False, num_cpus=1, num_gpus=1 if self.gpus else 0
    )
    refs = [remote.remote(fn, job, list(dirs)) for job, dirs in zip(jobs, workdirs, strict=True)]
    results = []
    try:
      for ref in refs:
        try:
          results.append(ray.get(ref))
        except ray.exceptions.RayError as e:
          results.append(TaskLost(one_line(f"{type(e).__name__}: {e}")[:500]))
    finally:
      for ref in refs[len(results) :]:  # interrupted (Ctrl-C): the cluster does not go on training
        ray.cancel(ref, force=True)
    return results


def run_task(fn: Callable, job, workdirs: list[str]):
  """The body of every task, on a worker: notes this attempt in each workdir, then runs `fn(job)`."""
  import ray  # inside a Ray task: ray is installed where this runs

  context = ray.get_runtime_context()
  task_id = context.get_task_id()
  now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
  for workdir in workdirs:
    note_attempt(
      workdir, {"task_id": task_id, "node_id": context.get_node_id(), "host": socket.gethostname(), "started": now}
    )
  return fn(job)


def note_attempt(workdir: str, record: dict) -> dict:
  """Appends one attempt to WORKDIR/tasks.json; `attempt` counts the records of the same task id (Ray keeps a
  task's id across its retries), from 1."""
  path = os.path.join(workdir, TASKS_FILE)
  try:
    records = read_json(path)
  except (OSError, ValueError):
    records = []
  records = records if isinstance(records, list) else []
  attempt = 1 + sum(r.get("task_id") == record.get("task_id") for r in records if isinstance(r, dict))
  entry = {**record, "attempt": attempt, "pid": os.getpid()}
  os.makedirs(workdir, exist_ok=True)
  write_json(path, [*records, entry], indent=1)
  return entry


def attempts(workdir: str) -> list[dict]:
  """The task attempts noted in a workdir ([] for a run trained locally)."""
  try:
    records = read_json(os.path.join(workdir, TASKS_FILE))
  except (OSError, ValueError):
    return []
  return records if isinstance(records, list) else []
