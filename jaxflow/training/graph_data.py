"""Graph datasets in the training loop: batches built on the host, padded to a few fixed budgets.

Graphs of different sizes cannot be gathered by index from one device array like the image datasets,
so the loop takes these batches from the host, one jitted step each; padding every batch to one of a
few (n_node, n_edge, n_graph) budgets (jaxflow/data/graphs.py) keeps that to one compilation per budget.

- `karate`: Zachary's karate club, semi-supervised node classification. One full-graph batch per epoch;
  the loss sees the labelled nodes (train mask), evaluation the others (eval mask).
- `graph_cycles`: generated graph classification (does the graph contain a cycle?), drawn with a seed
  from the run's `data` stream and served through tfds; each epoch's order is a permutation from the
  same stream, like the image datasets'.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np

from jaxflow import rng
from jaxflow.data import graphs as graph_lib
from jaxflow.data.loading import FeatureSpec

Batch = dict  # {"inputs": GraphsTuple, "labels": int32 [n], "mask": float32 [n]}; n = nodes or graphs
GRAPH_DATASETS = ("karate", graph_lib.CYCLES_NAME)


@dataclasses.dataclass(frozen=True)
class HostData:
  steps_per_epoch: int
  train_batches: Callable[[int], Iterator[Batch]]  # epoch -> that epoch's batches
  eval_batches: list[Batch]
  probe: Batch  # a fixed training batch for the layer statistics


def spec(name: str) -> FeatureSpec:
  """What the dataset offers, without building it: node-feature width, classes, split sizes."""
  if name == "karate":
    sizes, width = {"train": 34, "test": 34}, 34  # transductive: one graph, train/eval by node masks
  else:
    sizes, width = dict(graph_lib.CYCLES_SPLIT_SIZES), graph_lib.DEGREE_FEATURES
  return FeatureSpec(
    name=name,
    input_feature="graph",
    label_feature="label",
    input_shape=(width,),
    input_dtype="float32",
    num_classes=2,
    split_sizes=sizes,
    feature_names=("graph", "label"),
  )


def input_structure(name: str) -> jraph.GraphsTuple:
  """A one-graph, two-node GraphsTuple of shapes: the parameters depend on feature widths only."""
  width = spec(name).input_shape[0]
  shape = lambda s, d: jax.ShapeDtypeStruct(s, d)
  return jraph.GraphsTuple(
    nodes=shape((2, width), jnp.float32),
    edges=None,
    senders=shape((1,), jnp.int32),
    receivers=shape((1,), jnp.int32),
    n_node=shape((1,), jnp.int32),
    n_edge=shape((1,), jnp.int32),
    globals=None,
  )


def _batch(graph, labels, mask) -> Batch:
  return {"inputs": graph, "labels": np.asarray(labels, np.int32), "mask": np.asarray(mask, np.float32)}


def _karate() -> HostData:
  club = graph_lib.karate_club()
  train = _batch(club["graph"], club["labels"], club["train_mask"])
  return HostData(
    steps_per_epoch=1,
    train_batches=lambda epoch: iter([train]),
    eval_batches=[_batch(club["graph"], club["labels"], club["eval_mask"])],
    probe=train,
  )


def _cycles(config: ml_collections.ConfigDict, data_stream: jax.Array) -> HostData:
  d, batch_size = config.data, config.train.batch_size
  seed = rng.dataset_seed(data_stream)
  train_graphs, train_labels = graph_lib.load_graph_split(d.name, d.train_split, seed=seed, data_dir=d.data_dir)
  eval_graphs, eval_labels = graph_lib.load_graph_split(d.name, d.eval_split, seed=seed, data_dir=d.data_dir)
  budgets = graph_lib.budgets_for(train_graphs + eval_graphs, batch_size)  # shared: eval compiles no new shape
  batches = lambda graphs, labels, order: [
    _batch(*b) for b in graph_lib.graph_batches(graphs, labels, batch_size, order=order, budgets=budgets)
  ]

  def train_batches(epoch: int) -> Iterator[Batch]:
    order = np.asarray(jax.random.permutation(rng.step_key(data_stream, epoch), len(train_graphs)))
    yield from batches(train_graphs, train_labels, order)

  eval_batches = batches(eval_graphs, eval_labels, np.arange(len(eval_graphs)))
  probe = batches(train_graphs[:batch_size], train_labels[:batch_size], np.arange(min(batch_size, len(train_graphs))))[
    0
  ]
  return HostData(math.ceil(len(train_graphs) / batch_size), train_batches, eval_batches, probe)


def load_graph_data(config: ml_collections.ConfigDict, data_stream: jax.Array) -> HostData:
  return _karate() if config.data.name == "karate" else _cycles(config, data_stream)
