"""Orbax checkpoints: the latest K plus the best, restorable into a fresh process.

A checkpoint holds the TrainState's leaves (`step`, `params`, `opt_state`) and a small JSON `meta`
(epoch, early-stopping state, the metric it was saved with), so a resumed run continues exactly where
the saved one stood. Saves are asynchronous; `wait()` before reading one back or before exiting.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from jaxflow.training.state import TrainState


def _state_tree(state: TrainState) -> dict[str, Any]:
  return {"step": state.step, "params": state.params, "opt_state": state.opt_state}


class Checkpointer:
  """A thin CheckpointManager: `save`, `restore`, `latest_step`, `best_step`."""

  def __init__(self, directory: str, *, keep: int, best_metric: str, best_mode: str):
    self._best_metric = best_metric
    policy = checkpoint_managers.AnyPreservationPolicy(
        [
            checkpoint_managers.LatestN(n=keep),
            checkpoint_managers.BestN(get_metric_fn=lambda m: m[best_metric], reverse=best_mode == "min", n=1),
        ]
    )
    options = ocp.CheckpointManagerOptions(preservation_policy=policy, create=True, cleanup_tmp_directories=True)
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: TrainState, *, meta: dict, metrics: dict[str, float]) -> None:
    step = int(jax.device_get(state.step))
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)), meta=ocp.args.JsonSave(meta)),
        metrics={self._best_metric: metrics[self._best_metric]},
    )

  def restore(self, step: int, template: TrainState) -> tuple[TrainState, dict]:
    """Restores into `template`'s structure, dtypes and shardings (a freshly created state)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _state_tree(template))
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
    tree = restored["state"]
    return template.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"]), restored["meta"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
