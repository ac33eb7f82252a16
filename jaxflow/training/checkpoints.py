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
            # Only new-best checkpoints carry a metric (see `save`), so "best" never depends on how
            # orbax breaks ties, and the rest are kept by LatestN alone.
            checkpoint_managers.BestN(
                get_metric_fn=lambda m: m[best_metric], reverse=best_mode == "min", n=1, keep_checkpoints_without_metrics=False
            ),
        ]
    )
    # best_fn as well as the policy: without it orbax neither records metrics nor answers best_step().
    options = ocp.CheckpointManagerOptions(
        preservation_policy=policy, best_fn=lambda m: m[best_metric], best_mode=best_mode,
        keep_checkpoints_without_metrics=False, create=True, cleanup_tmp_directories=True,
    )
    self._manager = ocp.CheckpointManager(os.path.abspath(directory), options=options, item_names=("state", "meta"))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def best_step(self) -> int | None:
    return self._manager.best_step()

  def all_steps(self) -> list[int]:
    return list(self._manager.all_steps())

  def save(self, state: TrainState, *, meta: dict, best_value: float | None = None) -> None:
    """Saves asynchronously; `best_value` marks this checkpoint as the new best (else None)."""
    step = int(jax.device_get(state.step))
    self._manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(_state_tree(state)), meta=ocp.args.JsonSave(meta)),
        metrics=None if best_value is None else {self._best_metric: best_value},
    )

  def restore(self, step: int, template: TrainState) -> tuple[TrainState, dict]:
    """Restores into `template`'s structure, dtypes and shardings (a freshly created state)."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _state_tree(template))
    restored = self._manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore())
    )
    tree = restored["state"]
    return template.replace(step=tree["step"], params=tree["params"], opt_state=tree["opt_state"]), restored["meta"]

  def read_params(self, step: int):
    """The parameters of checkpoint `step` as saved, without a template (for inspection and transfer)."""
    restored = self._manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    return restored["state"]["params"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()
