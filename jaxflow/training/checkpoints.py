"""Orbax checkpoints, verified on restore: the latest K in `checkpoints/latest/`, the best in `checkpoints/best/`.

A checkpoint holds the TrainState's leaves (`step`, `params`, `opt_state`) and a small JSON `meta`
(epoch, early-stopping state, and since this version the hash of the config that wrote it and of its
parameters), so a resumed run continues exactly where the saved one stood, and only under its own config.

Restoring is verified: a checkpoint whose files are damaged (orbax cannot read it) or whose parameters no
longer hash to what was saved (a bit flip) is named in one line, moved aside to `checkpoints_damaged/`
and the next older one is tried; a checkpoint of another config is never resumed. Readers (`init_from`,
`jaxflow explain`, the seeds and tune readers) share the verified path, read-only.

Why two managers: the loop keeps the best state in memory and writes it only at save points (an orbax save
costs ~30 ms in the caller plus ~60 ms of background CPU here), so one save per improvement would dominate a
small run. The best is written *before* the latest at each save point, so any latest checkpoint's recorded
best is on disk when a run resumes from it. Saves are asynchronous; `wait()` before reading or exiting.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import sys
import traceback
import warnings
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxflow.config import ConfigError
from jaxflow.training import parallel
from jaxflow.training.state import TrainState, params_sha256, tree_sha256

LATEST, BEST = "latest", "best"
DAMAGED_DIR = "checkpoints_damaged"  # beside checkpoints/: what failed verification, kept for inspection


class CheckpointError(ConfigError):
  """No checkpoint of the run can be restored (one line, with the choices the user has)."""


class ForeignCheckpoint(ConfigError):
  """A checkpoint written under another config: never resumed."""


def _state_tree(state: TrainState) -> dict[str, Any]:
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


def _manager(directory: str, keep: int, name: str, *, read_only: bool = False) -> ocp.CheckpointManager:
  # Multi-host saves meet at barriers named after the step; the best and the latest managers save the
  # same step at the end of a run, and two barriers of one name collide ("Barrier
  # _async_write_complete.44 is already ongoing"): each manager gets its own prefix. So do the runs of a group
  # (a seeds study over several processes saves every seed's step at once): the prefix names the folder too.
  folder = hashlib.sha256(os.path.abspath(directory).encode()).hexdigest()[:12]
  multiprocessing = ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=f"{name}_{folder}")
  # read_only: a reader (explain, init_from, a test) must neither create folders nor clean up the
  # temporary folders of a run that may be saving right now.
  options = ocp.CheckpointManagerOptions(
    max_to_keep=keep,
    create=not read_only,
    cleanup_tmp_directories=not read_only,
    multiprocessing_options=multiprocessing,
    read_only=read_only,
  )
  handlers = {"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()}
  return ocp.CheckpointManager(os.path.abspath(directory), options=options, item_handlers=handlers)


@contextlib.contextmanager
def _quiet_orbax():
  """orbax logs what it tolerates (an unreadable _CHECKPOINT_METADATA) as absl ERROR lines; what it cannot
  tolerate raises, and jaxflow says what matters in one line: the logs stay out of the terminal."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.CRITICAL)
  try:
    yield
  finally:
    logger.setLevel(level)


class _AbortedReads(logging.Filter):
  def filter(self, record: logging.LogRecord) -> bool:
    # asyncio says "Future exception ..." of a read's future and "Task exception ..." of its coroutine.
    return "exception was never retrieved" not in record.getMessage()


def _silence_aborted_reads() -> None:
  """After a restore failed half-way, the reads it had started end later, on orbax's closed event loop:
  tensorstore reports each as an unraisable "RuntimeError: Event loop is closed", orbax's abandoned read
  coroutines raise as they are collected (or are never awaited), asyncio logs each unretrieved future, and a
  callback tensorstore runs on its own thread prints its "Event loop is closed" through sys.excepthook.
  Nothing is lost (one line says which checkpoint was damaged), so these are dropped for the rest of the
  process; every other error still reaches the previous hooks. Installed before a restore, not after it
  failed: tensorstore's thread can print while orbax's exception is still on its way out (seen in 2 of 12
  concurrent reruns of a run whose newest checkpoint lost its manifest). Returns what puts the previous hooks
  back, which `restore` calls when the restore succeeded (no reads were aborted: nothing is muted after a resume);
  None when they were installed already."""
  if getattr(sys.unraisablehook, "jaxflow_filter", False):
    return None
  previous = sys.unraisablehook

  def hook(unraisable):
    if isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed":
      return
    frames = traceback.extract_tb(unraisable.exc_traceback) if unraisable.exc_traceback else []
    if any("/orbax/checkpoint/" in frame.filename for frame in frames):  # a read the failed restore started
      return
    previous(unraisable)

  previous_excepthook = sys.excepthook

  def excepthook(kind, value, tb):
    if not (isinstance(value, RuntimeError) and str(value) == "Event loop is closed"):
      previous_excepthook(kind, value, tb)

  hook.jaxflow_filter = True
  sys.unraisablehook = hook
  sys.excepthook = excepthook
  aborted_reads = _AbortedReads()
  logging.getLogger("asyncio").addFilter(aborted_reads)
  before = list(warnings.filters)
  warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
  never_awaited = warnings.filters[0]
  # An identical filter of the process's own is moved to the front, not added: undo puts it back where it was.
  own_index = next((i for i, f in enumerate(before) if f == never_awaited), None)

  def undo() -> None:
    if sys.unraisablehook is hook:
      sys.unraisablehook = previous
    if sys.excepthook is excepthook:
      sys.excepthook = previous_excepthook
    logging.getLogger("asyncio").removeFilter(aborted_reads)
    if never_awaited in warnings.filters:
      warnings.filters.remove(never_awaited)
      if own_index is not None:
        warnings.filters.insert(min(own_index, len(warnings.filters)), never_awaited)
      getattr(warnings, "_filters_mutated", lambda: None)()  # invalidates the modules' cached decisions (3.11-3.13)

  return undo


def _reason(error: Exception) -> str:
  text = " ".join(str(error).split())
  return f"{type(error).__name__}: {text[:160]}"


class Checkpointer:
  """`save`, verified `restore_latest` / `restore`, `latest_step` / `best_step` over the two managers."""

  def __init__(self, directory: str, *, keep: int, read_only: bool = False):
    self.directory, self.read_only = directory, read_only
    self.workdir = os.path.dirname(os.path.abspath(directory))
    # The worker thread that writes background saves (one per process, shared by a group's runs: orbax's
    # saves must not run concurrently), its unfinished saves, and the steps each manager was given.
    self.worker, self._pending = None, []
    self._submitted: dict[str, set[int]] = {LATEST: set(), BEST: set()}
    with _quiet_orbax():  # listing the steps reads each one's info file
      self._managers = {
        which: _manager(os.path.join(directory, which), keep if which == LATEST else 1, which, read_only=read_only)
        for which in (LATEST, BEST)
        if not read_only or os.path.isdir(os.path.join(directory, which))
      }

  def latest_step(self) -> int | None:
    return self._managers[LATEST].latest_step() if LATEST in self._managers else None

  def best_step(self) -> int | None:
    return self._managers[BEST].latest_step() if BEST in self._managers else None

  def all_steps(self, which: str = LATEST) -> list[int]:
    return sorted(self._managers[which].all_steps()) if which in self._managers else []

  def save(
    self,
    state: TrainState,
    *,
    meta: dict,
    which: str = LATEST,
    config_hash: str | None = None,
    background: bool = False,
  ) -> None:
    """Saves with the config's, the parameters' and the whole state's hashes in its meta; a step already
    saved in that manager is left as it is. `background` (with a `worker` set): the hashing and orbax's
    save call (10-90 ms here, the first one of a process the slowest) run on that worker thread, off the
    training loop; only for a state no later dispatch donates. A failed background save is raised at the
    next save or wait."""
    self._raise_failed()
    step = int(jax.device_get(state.step))
    if step in self._submitted[which] or step in self._managers[which].all_steps():
      return  # saved already (the same best again at the next save point, a signal's save after an epoch's)
    self._submitted[which].add(step)
    if background and self.worker is not None:
      self._pending.append(self.worker.submit(self._save_now, state, meta, which, config_hash, step))
    else:
      self._save_now(state, meta, which, config_hash, step)

  def _save_now(self, state: TrainState, meta: dict, which: str, config_hash: str | None, step: int) -> None:
    manager = self._managers[which]
    tree = _state_tree(state)
    meta = {**meta, "params_sha256": params_sha256(state.params), "state_sha256": tree_sha256(tree)}
    meta["config_hash"] = config_hash
    args = ocp.args.Composite(state=ocp.args.StandardSave(tree), meta=ocp.args.JsonSave(meta))
    manager.save(step, args=args, force=True)

  def _raise_failed(self) -> None:
    done = [f for f in self._pending if f.done()]
    self._pending = [f for f in self._pending if not f.done()]
    for future in done:
      future.result()

  def _restore_one(self, step: int, template: TrainState, which: str, config_hash: str | None):
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _state_tree(template))
    restored = self._managers[which].restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
    tree, meta = restored["state"], restored["meta"]
    _verify(meta, tree["params"], config_hash, f"{which} checkpoint step {step} in {self.directory}", self.workdir)
    if meta.get("state_sha256") is not None and tree_sha256(tree) != meta["state_sha256"]:
      raise CheckpointError(
        f"{which} checkpoint step {step} in {self.directory} is damaged (its optimizer state no longer matches "
        "the hash saved with it)"
      )
    state = template.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"])
    return state, meta

  def restore(self, step: int, template: TrainState, *, which: str = LATEST, config_hash: str | None = None):
    """(state, meta) of one checkpoint, restored into `template`'s structure, dtypes and shardings, and
    verified (ForeignCheckpoint: another config; CheckpointError: damaged)."""
    undo = _silence_aborted_reads()
    try:
      with _quiet_orbax():
        restored = self._restore_one(step, template, which, config_hash)
    except ConfigError:  # another config's checkpoint, read whole: no read left behind
      if undo is not None:
        undo()
      raise
    except Exception as e:  # orbax raises whatever its damaged files make it raise
      raise CheckpointError(f"{which} checkpoint step {step} in {self.directory} is damaged ({_reason(e)})") from None
    if undo is not None:  # a whole restore leaves no read behind: the process's own hooks again
      undo()
    return restored

  def restore_latest(self, template: TrainState, *, config_hash: str | None):
    """(state, meta, step) of the newest checkpoint that restores and verifies, trying older ones; a damaged
    one is named and moved aside. (template, None, None) when there is none at all; CheckpointError when
    none of several restores."""
    steps = sorted(self.all_steps(LATEST), reverse=True)
    failures = []
    for step in steps:
      try:
        state, meta = self.restore(step, template, config_hash=config_hash)
        error = None
      except CheckpointError as e:
        error = e
      # Several processes: a step is taken only if it verified in all of them (each would resume elsewhere).
      if parallel.true_everywhere(error is None):
        return state, meta, step
      error = error or CheckpointError(f"latest checkpoint step {step} in {self.directory} failed in another process")
      failures.append(str(error))
      print(f"jaxflow: warning: {error}; trying an older one", file=sys.stderr)
      self._set_aside(LATEST, step)
    if failures:
      raise CheckpointError(
        f"workdir {self.workdir}: none of its {len(steps)} checkpoint(s) restores (damaged, moved to {DAMAGED_DIR}/); "
        "rerun with --config.train.overwrite=True to start afresh, or use another --workdir"
      )
    return template, None, None

  def _set_aside(self, which: str, step: int) -> None:
    """Moves a damaged step out of orbax's folder (it would be listed, and never saved again, otherwise). By
    process 0 alone, the others waiting for it: each moving the one folder at once, a process removed the copy
    another had just set aside (a multi-host rerun kept no damaged checkpoint)."""
    if self.read_only:
      return
    source = os.path.join(self.directory, which, str(step))
    target = os.path.join(self.workdir, DAMAGED_DIR, f"{which}_{step}")

    def move() -> None:
      if os.path.exists(target):
        shutil.rmtree(target)
      os.makedirs(os.path.dirname(target), exist_ok=True)
      if os.path.exists(source):
        shutil.move(source, target)

    parallel.run_on_main(move, what=f"setting aside {which} checkpoint step {step}")
    self._managers[which].reload()

  def read_params(self, step: int, *, which: str = LATEST):
    """The verified parameters of a checkpoint, without a template (for inspection and transfer), on this
    process's first device, whatever layout wrote them (8 devices, two hosts, ...)."""
    manager = self._managers[which]
    metadata = manager.item_metadata(step)["state"]
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata)
    items = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    restored = manager.restore(step, args=items)
    params = restored["state"]["params"]
    _verify(restored["meta"], params, None, f"{which} checkpoint step {step} in {self.directory}", self.workdir)
    return params

  def wait(self) -> None:
    """Until every save is on disk (background ones first); raises what a background save raised."""
    pending, self._pending = self._pending, []
    for future in pending:
      future.result()
    for manager in self._managers.values():
      manager.wait_until_finished()

  def close(self) -> None:
    try:
      self.wait()
    finally:
      for manager in self._managers.values():
        manager.close()


def _verify(meta: dict, params, config_hash: str | tuple[str, ...] | None, what: str, workdir: str) -> None:
  """The checkpoint was written under `config_hash` (or one of several: a run extended with more epochs
  accepts its earlier configs' checkpoints), when both are known, and its parameters still hash to what was
  saved. Checkpoints written before the hashes were recorded carry none and pass."""
  saved_config = meta.get("config_hash")
  accepted = (config_hash,) if isinstance(config_hash, str) else config_hash
  if accepted is not None and saved_config is not None and saved_config not in accepted:
    raise ForeignCheckpoint(
      f"workdir {workdir} holds checkpoints of a different config; "
      "use another --workdir, or --config.train.overwrite=True to discard that run"
    )
  saved_params = meta.get("params_sha256")
  if saved_params is not None and params_sha256(params) != saved_params:
    raise CheckpointError(f"{what} is damaged (its parameters no longer match the hash saved with them)")


def read_run_params(workdir: str, *, which: str = LATEST, fallback: bool = False):
  """(params, step, which) of a run's newest verified latest (or best) checkpoint, opened read-only, on this
  process's first device whatever layout wrote it; `fallback`: the other kind when that one has none that
  verifies. None when the run has no checkpoint; CheckpointError when it has some and none verifies."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return None
  ckpt = Checkpointer(directory, keep=1, read_only=True)
  failures = []
  try:
    order = (which, BEST if which == LATEST else LATEST) if fallback else (which,)
    for kind in order:
      for step in sorted(ckpt.all_steps(kind), reverse=True):
        try:
          return ckpt.read_params(step, which=kind), int(step), kind
        except CheckpointError as e:
          failures.append(str(e))
        except Exception as e:  # damaged files
          failures.append(f"{kind} checkpoint step {step} is damaged ({_reason(e)})")
    if failures:
      raise CheckpointError(f"workdir {workdir}: no checkpoint verifies ({failures[0]})")
    return None
  finally:
    ckpt.close()
