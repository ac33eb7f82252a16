"""Where a step runs: one device, a per-device program with explicit collectives, or one sharded program.

`config.parallel.mode`:
- `single`: `jax.jit` on the default device.
- `pmap`: data parallel the pmap way (replicated state, each device steps on its slice of the global
  batch, gradients averaged with `lax.pmean`), written with `jax.shard_map` over a 1-D `data` mesh:
  since JAX 0.8 `jax.pmap` is itself built on jit + shard_map, and its helpers (device_put_replicated)
  are gone in 0.10.
- `sharded`: one `jax.jit` program over the same mesh; the batch is constrained to
  `NamedSharding(mesh, P('data'))` and the parameters are replicated, so XLA's SPMD partitioner inserts
  the gradient all-reduce itself.
- `auto`: `sharded` when there is more than one device, else `single`.

The math lives once. The pure steps in steps.py call the `Layout` hooks below (`local_rows`,
`constrain`, `dropout_key`, `mean`, `sum`), which are identities for `single` and `sharded` (except the
sharding constraint) and the collectives for `pmap`; `Layout.jit` is the only place a program is wrapped.

Randomness per device. Augmentation draws per example from `fold_in(step_key, global example index)`,
so every mode draws the same images. Dropout: in `sharded` mode the mask is drawn for the global batch
from the step key and partitioned like the activations (threefry is partitionable: jax's
`jax_threefry_partitionable`, on by default), so every device draws a different slice and the result
equals the single-device run's. In `pmap` mode each device draws its own mask from
`fold_in(step_key, device index)`, the classic pattern: masks differ per device, but are not those of a
single-device run, so `pmap` matches `single` to rounding only without dropout (tested both ways).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import socket
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxflow.config import ConfigError

MODES = ("auto", "single", "pmap", "sharded")
DATA_AXIS = "data"


@dataclasses.dataclass(frozen=True)
class Layout:
  """A resolved parallel mode and its mesh (None for `single`). Hashable: it is a static argument."""

  mode: str
  mesh: Mesh | None = None

  @property
  def num_devices(self) -> int:
    return 1 if self.mesh is None else self.mesh.size

  @property
  def replicated(self):
    return None if self.mesh is None else NamedSharding(self.mesh, P())

  # -- inside a traced step ------------------------------------------------------------------------

  def local_rows(self, rows: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(this device's part of a global batch's row indices [b] or [b_local], their positions in the
    global batch): the positions are what per-example randomness is keyed by."""
    if self.mode != "pmap":
      return rows, jnp.arange(rows.shape[0])
    per_device = rows.shape[0] // self.num_devices
    start = jax.lax.axis_index(DATA_AXIS) * per_device
    return jax.lax.dynamic_slice_in_dim(rows, start, per_device), start + jnp.arange(per_device)

  def local_batch(self, batch):
    """A pre-built global batch (leading axis b) -> this device's rows (pmap) or the batch, constrained."""
    if self.mode == "pmap":
      per_device = jax.tree.leaves(batch)[0].shape[0] // self.num_devices
      start = jax.lax.axis_index(DATA_AXIS) * per_device
      return jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, start, per_device), batch)
    return self.constrain(batch)

  def constrain(self, batch):
    """`sharded`: every leaf's leading (batch) axis split over the `data` axis; otherwise unchanged."""
    if self.mode != "sharded":
      return batch
    return jax.tree.map(lambda a: jax.lax.with_sharding_constraint(a, NamedSharding(self.mesh, P(DATA_AXIS))), batch)

  def dropout_key(self, key: jax.Array) -> jax.Array:
    return jax.random.fold_in(key, jax.lax.axis_index(DATA_AXIS)) if self.mode == "pmap" else key

  def mean(self, tree):
    return jax.lax.pmean(tree, DATA_AXIS) if self.mode == "pmap" else tree

  def sum(self, tree):
    return jax.lax.psum(tree, DATA_AXIS) if self.mode == "pmap" else tree

  # -- around the programs -------------------------------------------------------------------------

  def jit(self, fn, *, donate_argnums=(), static_argnames=()):
    """The one wrapper of every program. `pmap`: a shard_map whose inputs and outputs are all
    replicated (state, the device-resident dataset, keys); each device then takes its rows itself."""
    if self.mode != "pmap":
      return jax.jit(fn, donate_argnums=donate_argnums, static_argnames=static_argnames)

    def per_device(*args, **static):
      # check_vma=False: the pmap semantics, where each device's gradient is its own until `mean`
      # (lax.pmean) averages it. With shard_map's default varying-type checks, the gradient of a
      # replicated parameter would instead come back already psum'd over devices (an implicit
      # all-reduce), and the explicit pmean would silently turn a mean into N times the mean.
      body = functools.partial(fn, **static)
      return jax.shard_map(body, mesh=self.mesh, in_specs=P(), out_specs=P(), check_vma=False)(*args)

    return jax.jit(per_device, donate_argnums=donate_argnums, static_argnames=static_argnames)

  def place(self, tree):
    """Replicated on every device of the mesh (of every process), or left where it is for `single`."""
    return tree if self.mesh is None else put(tree, self.replicated)


def put(tree, sharding):
  """`tree` laid out as `sharding` says, across processes too. One process: `jax.device_put`. Several:
  device_put cannot place values on another process's devices (PITFALLS.md), so each process builds its own
  shards from the whole host value, which every process holds alike (the same configs, streams and initial
  states); a leaf already spread over the processes is laid out anew by an identity program."""
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def global_array(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return leaf if leaf.sharding == sharding else jax.jit(lambda x: x, out_shardings=sharding)(leaf)
    if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
      data = np.asarray(jax.random.key_data(leaf))
      raw = jax.make_array_from_callback(data.shape, sharding, lambda index: data[index])
      return jax.random.wrap_key_data(raw, impl=jax.random.key_impl(leaf))
    value = np.asarray(leaf)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

  return jax.tree.map(global_array, tree)


def on_device(tree):
  """`jax.device_put(tree)`: host values onto the default device; an array spread over several processes (a
  group's run, taken from its run axis) stays where it is, which device_put cannot move."""
  return jax.tree.map(
    lambda x: x if isinstance(x, jax.Array) and not x.is_fully_addressable else jax.device_put(x), tree
  )


def fetch(tree):
  """`tree` as host values (`jax.device_get`); a leaf split over several processes (a group's per-run metrics
  with the run axis over every process's devices) is all-gathered first, so every process gets all of it.
  A collective then: every process calls it at the same point of the same loop."""
  if jax.process_count() == 1:
    return jax.device_get(tree)  # the whole tree in one call: every buffer's copy starts before the first wait

  def host(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable and not leaf.is_fully_replicated:
      return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))
    return jax.device_get(leaf)

  return jax.tree.map(host, tree)


SINGLE = Layout("single")  # one device, no mesh: the default layout


def create_layout(mode: str, *, num_devices: int | None = None) -> Layout:
  """`mode` resolved against the devices present (all processes' devices, after jax.distributed)."""
  devices = jax.devices()
  if num_devices is not None:
    devices = devices[:num_devices]
  if mode == "auto":
    mode = "sharded" if len(devices) > 1 else "single"
  if mode == "single":
    return Layout("single")
  return Layout(mode, Mesh(np.asarray(devices), (DATA_AXIS,)))


DISTRIBUTED_ENV = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


def distributed_settings(parallel_config) -> dict | None:
  """jax.distributed.initialize's arguments from `config.parallel` (else the JAX_COORDINATOR_ADDRESS /
  JAX_NUM_PROCESSES / JAX_PROCESS_ID environment variables), {} to let jax detect a managed cluster
  (SLURM, Open MPI, TPU pods: `parallel.detect_cluster=True`), or None for a single process."""
  if parallel_config.detect_cluster:
    return {}
  coordinator = parallel_config.coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
  if not coordinator:
    return None
  num = (
    parallel_config.num_processes if parallel_config.num_processes is not None else os.environ.get("JAX_NUM_PROCESSES")
  )
  pid = parallel_config.process_id if parallel_config.process_id is not None else os.environ.get("JAX_PROCESS_ID")
  return {"coordinator_address": coordinator, "num_processes": int(num), "process_id": int(pid)}


START_FAILED = 2  # the exit status of a process whose peers never joined (the CLI's status for bad input)


def initialize_distributed(parallel_config, *, command: str = "jaxflow") -> None:
  """Joins the job's processes before anything touches a device (a no-op for a single process, and when
  this process already joined, e.g. a second run in the same Python process). A peer that never starts ends
  this process after `parallel.init_timeout_seconds` with one line on stderr, exit 2: jax itself aborts a few
  seconds later with a C++ stack trace (exit 134), and once initialized it catches SIGTERM, so nothing else
  stops a waiting process. `command` begins the line."""
  settings = distributed_settings(parallel_config)
  if settings is None or jax.distributed.is_initialized():
    return
  timeout = float(parallel_config.init_timeout_seconds)
  watchdog = threading.Timer(timeout, _never_joined, args=(settings, timeout, command))
  watchdog.daemon = True
  watchdog.start()
  try:
    _check_coordinator_port(settings)
    jax.distributed.initialize(**settings, initialization_timeout=int(timeout))
  except jax.errors.JaxRuntimeError as e:  # e.g. the coordinator's port taken between the check and the start
    said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    where = settings.get("coordinator_address", "the cluster's coordinator")
    raise ConfigError(f"jax.distributed could not start at {where}: {said}") from None
  finally:
    watchdog.cancel()


def _check_coordinator_port(settings: dict) -> None:
  """Process 0 serves the coordinator on its address's port: one another process holds ends jax's start with a
  segmentation fault (a listening socket) or a traceback ("Failed to start RPC server"); this says so in one line
  first. Bound as gRPC binds it (every address, SO_REUSEADDR: a port in TIME_WAIT is free)."""
  address = settings.get("coordinator_address") or ""
  port = address.rpartition(":")[2]
  if settings.get("process_id") != 0 or not port.isdigit():
    return
  try:
    probe, anywhere = socket.socket(socket.AF_INET6, socket.SOCK_STREAM), "::"
  except OSError:  # no IPv6 on this host
    probe, anywhere = socket.socket(socket.AF_INET, socket.SOCK_STREAM), "0.0.0.0"
  with probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
      probe.bind((anywhere, int(port)))
    except OSError as e:
      raise ConfigError(
        f"jax.distributed cannot start: process 0 serves the coordinator at {address}, but port {port} is taken "
        f"({e.strerror}); choose another parallel.coordinator (host:port) for the job"
      ) from None


def _never_joined(settings: dict, timeout: float, command: str) -> None:
  where = settings.get("coordinator_address", "the cluster's coordinator")
  me = (
    f"process {settings['process_id']} of {settings['num_processes']}" if "process_id" in settings else "this process"
  )
  print(
    f"{command}: jax.distributed did not start within parallel.init_timeout_seconds={timeout:g}: {me} waited "
    f"at {where} for its peers; start every process (same config, process_id 0 .. num_processes - 1)",
    file=sys.stderr,
    flush=True,
  )
  os._exit(START_FAILED)


def barrier(name: str) -> None:
  """All processes of a multi-host job meet here (a no-op for one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def several_processes() -> bool:
  """One process of several? Without jax.distributed, False without starting the backend: a one-process run
  leaves that to its first program, after train.deterministic's XLA_FLAGS are set (run.determinism_flags)."""
  return jax.distributed.is_initialized() and jax.process_count() > 1


def main_decides(decision: bool) -> bool:
  """Process 0's `decision`, in every process: for a choice made from process-local inputs (a clock) that
  every process must make alike (whether to enter a collective such as a checkpoint save). A collective
  itself with several processes: every process calls it at the same point. One process: `decision`, without
  starting the backend."""
  if not several_processes():
    return decision
  return bool(multihost_utils.broadcast_one_to_all(np.int32(decision)))


def true_everywhere(flag: bool) -> bool:
  """Whether `flag` holds in every process: for an outcome each process found on its own that all must act on
  alike (a checkpoint that restored here may have failed to elsewhere). One process: `flag`, without starting
  the backend."""
  if not several_processes():
    return flag
  return bool(np.asarray(multihost_utils.process_allgather(np.int32(flag))).all())


def differing_processes(digest: bytes) -> list[int]:
  """The processes whose `digest` (of what each found on its own: a file, its data) differs from process 0's;
  [] for one process, without starting the backend. A collective: every process calls it at the same point."""
  if not several_processes():
    return []
  mine = np.frombuffer(hashlib.sha256(digest).digest()[:8], np.int32)  # 64 bits: two int32s
  seen = np.asarray(multihost_utils.process_allgather(mine)).reshape(-1, 2)
  return [int(i) for i in np.flatnonzero((seen != seen[0]).any(axis=1))]


def check_shared(paths: list[str], *, what: str) -> None:
  """Every process sees at `paths` the bytes process 0 sees (files process 0 has just written), else a
  ConfigError in every process naming those that do not (`what`: where the paths are). Several
  hosts with workdirs on their own disks would otherwise each write a part of every checkpoint where no other
  host reads it, and orbax waits for the missing parts forever. One process: nothing to check."""
  if not several_processes():
    return
  digest = hashlib.sha256()
  for path in paths:
    try:
      with open(path, "rb") as f:
        digest.update(f.read())
    except OSError:
      digest.update(b"\0missing:" + path.encode())
  others = differing_processes(digest.digest())
  if others:
    raise ConfigError(
      f"{what}: process {', '.join(map(str, others))} does not see the files process 0 wrote there; a multi-host "
      "job needs it on a filesystem every host shares (NFS, a cloud bucket's mount), at the same path"
    )


def run_everywhere(fn, *, what: str):
  """`fn()` in every process, which then learn whether it failed in any: a process where it failed raises its
  own error, the others a ConfigError naming the processes that failed. For checks whose inputs are each
  process's own (its data dir, its files, its devices): a process that stopped alone would leave the others
  waiting for it in their first collective (2 min in the backend's start, then a traceback). `fn` must hold no
  collective of its own: a process failing before it would meet the others' in this one's all-gather instead.
  A single process just calls `fn` (and does not start the backend for it). Returns what `fn` returned."""
  if not several_processes():
    return fn()
  result, error = None, None
  try:
    result = fn()
  except BaseException as e:  # told to the others first, then raised here
    error = e
  failed = np.asarray(multihost_utils.process_allgather(np.int32(error is not None))).reshape(-1)
  if error is not None:
    raise error
  if failed.any():
    who = ", ".join(str(int(i)) for i in np.flatnonzero(failed))
    raise ConfigError(
      f"process {who} failed at {what} (its error says why); process {jax.process_index()} stops with it"
    )
  return result


def run_on_main(fn, *, what: str) -> None:
  """`fn()` on process 0 only; the others wait for it and share its outcome, so a failure there (a
  ConfigError: a different config in the workdir, a workdir in use; an OSError; Ctrl-C) stops every process
  with one line instead of leaving them at the next collective until gloo gives up (30 s, then a C++ error).
  A single process just calls `fn` (and does not start the backend for it)."""
  run_everywhere(lambda: fn() if jax.process_index() == 0 else None, what=what)
