"""What is profiled: the config's model (jaxflow's registry), trained weights, and its data as batches.

Weights: `config.init_from=RUN` profiles that run's best (else latest) checkpoint; otherwise the config
is trained first, as `jaxflow train` would, into `WORKDIR/train` (a normal run workdir: rerunning the
profile resumes it, i.e. finds it finished and trains nothing). Accuracy numbers of the precision
variants are therefore those of trained weights on the real evaluation split.

Batches: array datasets (images, sequences) give `[b, ...]` slices of the evaluation split (wrapping
around when b exceeds it); graph datasets give b graphs batched and padded to one budget per batch
size (so one compiled program per size). The karate club is one fixed graph: it has one "batch".
"""

from __future__ import annotations

import dataclasses
import os

import jax
import ml_collections
import numpy as np

from jaxflow import models, rng
from jaxflow.data import graph_batches, registry
from jaxflow.data import graphs as graph_lib
from jaxflow.data.problem import Problem
from jaxflow.run.assemble import Compiled, host_data
from jaxflow.run.train import train_and_evaluate
from jaxflow.training import transfer

FAMILIES = {
  "mlp": "mlp",
  "cnn": "cnn",
  "rnn": "rnn",
  "stack": "stack",
  "gcn": "gnn",
  "gat": "gnn",
  "graph_network": "gnn",
}
CALIBRATION_EXAMPLES = 512


@dataclasses.dataclass
class Workload:
  config: ml_collections.ConfigDict
  problem: Problem
  model: object  # flax module
  params: dict  # host (numpy) parameter tree
  family: str
  weights: dict  # where the parameters came from
  eval_set: list  # [(inputs, labels, mask)] covering the evaluation split, host arrays
  calibration: list  # [inputs] from the training split, host arrays
  _make_batch: object = None  # (batch_size, index) -> inputs
  compiled: object = None  # the training run's run.assemble.Compiled: its programs, reused by the training profile
  fixed_batch: int | None = None  # graphs like karate: the only batch size there is
  batch_unit: str = "examples"

  def batches(self, batch_size: int, count: int) -> list:
    """`count` distinct input batches of `batch_size` (host arrays), for rotation."""
    return [self._make_batch(batch_size, k) for k in range(count)]


def trained_params(config: ml_collections.ConfigDict, workdir: str, *, quiet: bool, compiled=None) -> tuple[dict, dict]:
  """(host params, provenance): from `config.init_from`, else trained into WORKDIR/train."""
  if config.init_from is not None:
    return jax.device_get(transfer.source_params(config.init_from)), {
      "source": "init_from",
      "workdir": config.init_from,
    }
  run_dir = os.path.join(workdir, "train")
  summary = train_and_evaluate(config, run_dir, quiet=quiet, compiled=compiled)
  params = jax.device_get(transfer.source_params(run_dir))
  return params, {
    "source": "trained",
    "workdir": run_dir,
    "steps": summary.get("steps"),
    "final_eval": summary.get("final", {}).get("eval"),
    "wall_seconds": summary.get("wall_seconds"),
  }


def _array_batches(inputs, labels: np.ndarray, batch_size: int) -> list:
  n = labels.shape[0]
  out = []
  for start in range(0, n, batch_size):
    rows = np.arange(start, min(start + batch_size, n))
    pad = batch_size - rows.size
    take = np.concatenate([rows, np.zeros(pad, np.int64)])
    mask = np.concatenate([np.ones(rows.size, np.float32), np.zeros(pad, np.float32)])
    out.append((jax.tree.map(lambda a: a[take], inputs), labels[take], mask))
  return out


def load_workload(config: ml_collections.ConfigDict, problem: Problem, workdir: str, *, quiet: bool) -> Workload:
  streams = rng.streams(config)
  compiled = Compiled()
  params, provenance = trained_params(config, workdir, quiet=quiet, compiled=compiled)
  model = models.create_model(config.model, output_dim=problem.output_dim)
  family = FAMILIES.get(config.model.name, config.model.name)
  common = dict(
    config=config, problem=problem, model=model, params=params, family=family, weights=provenance, compiled=compiled
  )
  kind = registry.dataset_kind(config.data.name)
  if kind.graphs:
    return _graph_workload(config, streams, common, kind)
  prepared = host_data(config, problem, streams)  # the data as training sees it
  train, evaluation, eval_labels = prepared.train, prepared.eval, prepared.eval_targets
  n = eval_labels.shape[0]

  def make_batch(batch_size: int, k: int):
    rows = (k * batch_size + np.arange(batch_size)) % n
    return jax.tree.map(lambda a: np.ascontiguousarray(a[rows]), evaluation.inputs)

  sample = jax.tree.map(lambda a: a[:CALIBRATION_EXAMPLES], train.inputs)
  calibration = [b[0] for b in _array_batches(sample, np.zeros(jax.tree.leaves(sample)[0].shape[0]), 256)]
  return Workload(
    **common,
    eval_set=_array_batches(evaluation.inputs, eval_labels, min(512, n)),
    calibration=calibration,
    _make_batch=make_batch,
  )


def _graph_workload(config, streams, common, kind: registry.DatasetKind) -> Workload:
  if kind.whole_graph:
    club = graph_lib.karate_club()
    graph = club["graph"]
    as_int32 = {f: np.asarray(getattr(graph, f), np.int32) for f in ("senders", "receivers", "n_node", "n_edge")}
    graph = graph._replace(nodes=np.asarray(graph.nodes, np.float32), **as_int32)
    return Workload(
      **common,
      eval_set=[(graph, np.asarray(club["labels"], np.int32), np.asarray(club["eval_mask"], np.float32))],
      calibration=[graph],
      _make_batch=lambda batch_size, k: graph,
      fixed_batch=1,
      batch_unit="graph (the whole club, 34 nodes)",
    )
  (train_graphs, _), (eval_graphs, eval_labels) = graph_batches.cycles_splits(config, streams["data"])
  eval_budget = graph_lib.budgets_for(train_graphs + eval_graphs, config.train.batch_size)[-1:]
  eval_set = [
    (g, y, m.astype(np.float32))
    for g, y, m in graph_lib.graph_batches(
      eval_graphs, eval_labels, config.train.batch_size, order=np.arange(len(eval_graphs)), budgets=eval_budget
    )
  ]
  calibration = [
    g
    for g, _, _ in graph_lib.graph_batches(
      train_graphs[:CALIBRATION_EXAMPLES],
      np.zeros(min(CALIBRATION_EXAMPLES, len(train_graphs)), np.int32),
      128,
      order=np.arange(min(CALIBRATION_EXAMPLES, len(train_graphs))),
    )
  ]
  budgets: dict[int, list] = {}

  def make_batch(batch_size: int, k: int):
    if batch_size not in budgets:  # the largest budget for this size: every batch of it has one shape
      pool = eval_graphs * -(-batch_size // len(eval_graphs))  # a batch larger than the split wraps around
      budgets[batch_size] = graph_lib.budgets_for(pool, batch_size)[-1:]
    order = (k * batch_size + np.arange(batch_size)) % len(eval_graphs)
    padded, _ = graph_lib.pad_batch([eval_graphs[i] for i in order], budgets[batch_size])
    return padded

  return Workload(
    **common,
    eval_set=eval_set,
    calibration=calibration,
    _make_batch=make_batch,
    batch_unit="graphs (padded to one budget per size)",
  )
