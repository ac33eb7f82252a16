"""Orbax checkpoints: the latest K in `checkpoints/latest/`, the best in `checkpoints/best/`.

A checkpoint holds the TrainState's leaves (`step`, `params`, `opt_state`) and a small JSON `meta`
(epoch, early-stopping state), so a resumed run continues exactly where the saved one stood.

Why two managers: the loop keeps the best state in memory and writes it only at save points (an orbax
save costs ~30 ms in the caller plus ~60 ms of background CPU here, several epochs of a small model, so
one save per improvement would dominate a run). The best is written *before* the latest at each save
point, so any latest checkpoint's recorded best is on disk when a run resumes from it. Saves are
asynchronous; `wait()` before reading one back or before exiting.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from jaxflow.training.state import TrainState

LATEST, BEST = "latest", "best"


def _state_tree(state: TrainState) -> dict[str, Any]:
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


def _manager(directory: str, keep: int, name: str, *, read_only: bool = False) -> ocp.CheckpointManager:
  # Multi-host saves meet at barriers named after the step; the best and the latest managers save the
  # same step at the end of a run, and two barriers of one name collide ("Barrier
  # _async_write_complete.44 is already ongoing"): each manager gets its own prefix.
  multiprocessing = ocp.options.MultiprocessingOptions(barrier_sync_key_prefix=name)
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


class Checkpointer:
  """`save` / `save_best`, `restore`, `latest_step` / `best_step` over the two managers."""

  def __init__(self, directory: str, *, keep: int, read_only: bool = False):
    self.directory = directory
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
    return sorted(self._managers[which].all_steps())

  def save(self, state: TrainState, *, meta: dict, which: str = LATEST) -> None:
    """Saves asynchronously; a step already saved in that manager is left as it is."""
    manager = self._managers[which]
    step = int(jax.device_get(state.step))
    if step in manager.all_steps():
      return
    args = ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)), meta=ocp.args.JsonSave(meta))
    manager.save(step, args=args, force=True)

  def restore(self, step: int, template: TrainState, *, which: str = LATEST) -> tuple[TrainState, dict]:
    """Restores into `template`'s structure, dtypes and shardings (a freshly created state)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _state_tree(template))
    restored = self._managers[which].restore(
      step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
    tree = restored["state"]
    return template.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"]), restored["meta"]

  def read_params(self, step: int, *, which: str = LATEST):
    """The parameters of a checkpoint, without a template (for inspection and transfer), on this
    process's first device, whatever layout wrote them (8 devices, two hosts, ...)."""
    manager = self._managers[which]
    metadata = manager.item_metadata(step)["state"]
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    abstract = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), metadata)
    restored = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract)))
    return restored["state"]["params"]

  def wait(self) -> None:
    for manager in self._managers.values():
      manager.wait_until_finished()

  def close(self) -> None:
    for manager in self._managers.values():
      manager.close()


def read_run_params(workdir: str, *, which: str = LATEST, fallback: bool = False):
  """(params, step, which) of a run's latest (or best) checkpoint, opened read-only, on this process's
  first device whatever layout wrote it; `fallback`: the other kind when that one is missing. None
  when the run has no such checkpoint."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    return None
  ckpt = Checkpointer(directory, keep=1, read_only=True)
  try:
    order = (which, BEST if which == LATEST else LATEST) if fallback else (which,)
    for kind in order:
      step = ckpt.best_step() if kind == BEST else ckpt.latest_step()
      if step is not None:
        return ckpt.read_params(step, which=kind), int(step), kind
    return None
  finally:
    ckpt.close()
