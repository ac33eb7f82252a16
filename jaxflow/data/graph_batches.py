"""Graph datasets as the training loop takes them: batches built on the host, padded to fixed budgets.

Graphs of different sizes cannot be gathered by index from one device array like the array datasets,
so the loop takes these batches from the host, one jitted step each; padding every batch to one of a
few (n_node, n_edge, n_graph) budgets (`jaxflow.data.graphs`) keeps that to one compilation per budget.

- `karate`: Zachary's karate club, semi-supervised node classification. One full-graph batch per epoch;
  the loss sees the labelled nodes (train mask), evaluation the others (eval mask).
- `graph_cycles`: generated graph classification (does the graph contain a cycle?), drawn with a seed
  from the run's `data` stream and served through tfds; each epoch's order is a permutation from the
  same stream, like the array datasets', and the epoch has `steps_per_epoch` full batches (the one rule
  of `jaxflow.data.registry`: the remainder of a permutation waits for the next epoch's draw).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np

from jaxflow import rng
from jaxflow.data import graphs as graph_lib
from jaxflow.data.graph_builders import load_graph_split
from jaxflow.data.graph_cycles import CYCLES_SPLIT_SIZES, DEGREE_FEATURES
from jaxflow.data.loading import DatasetError, FeatureSpec
from jaxflow.data.steps import steps_per_epoch

Batch = dict  # {"inputs": GraphsTuple, "labels": int32 [n], "mask": float32 [n]}; n = nodes or graphs
KARATE = "karate"
KARATE_CLUB_SIZE = 17  # members per club (34 nodes)


@dataclasses.dataclass(frozen=True)
class HostData:
  steps_per_epoch: int
  train_batches: Callable[[int], Iterator[Batch]]  # epoch -> that epoch's batches
  eval_batches: list[Batch]
  probe: Batch  # a fixed training batch for the layer statistics


def karate_labelled_per_class(train_examples: int | None) -> int:
  """`data.train_examples` on the karate club: the labelled nodes, half per club (None: the two leaders).

  Checked here, from the config alone, so a count the club cannot serve is refused before anything runs."""
  if train_examples is None:
    return 1
  most = 2 * (KARATE_CLUB_SIZE - 1)  # karate_club keeps at least one member per club unlabelled
  if not isinstance(train_examples, int) or train_examples % 2 or not 2 <= train_examples <= most:
    raise DatasetError(
      f"data.train_examples={train_examples!r} on {KARATE!r} is the number of labelled nodes, half per club: "
      f"an even number in 2..{most}"
    )
  return train_examples // 2


def spec(name: str, *, train_examples: int | None = None) -> FeatureSpec:
  """What the dataset offers, without building it: node-feature width, classes, split sizes."""
  if name == KARATE and train_examples is not None:  # labelled nodes train, the others evaluate
    labelled = 2 * karate_labelled_per_class(train_examples)
    sizes, width = {"train": labelled, "test": 2 * KARATE_CLUB_SIZE - labelled}, 34
  elif name == KARATE:
    sizes, width = {"train": 34, "test": 34}, 34  # transductive: one graph, train/eval by node masks
  else:
    sizes, width = dict(CYCLES_SPLIT_SIZES), DEGREE_FEATURES
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


def input_structure(feature_spec: FeatureSpec) -> jraph.GraphsTuple:
  """A one-graph, two-node GraphsTuple of shapes: the parameters depend on feature widths only."""
  width = feature_spec.input_shape[0]
  return jraph.GraphsTuple(
    nodes=jax.ShapeDtypeStruct((2, width), jnp.float32),
    edges=None,
    senders=jax.ShapeDtypeStruct((1,), jnp.int32),
    receivers=jax.ShapeDtypeStruct((1,), jnp.int32),
    n_node=jax.ShapeDtypeStruct((1,), jnp.int32),
    n_edge=jax.ShapeDtypeStruct((1,), jnp.int32),
    globals=None,
  )


def as_batch(graph, labels, mask) -> Batch:
  return {"inputs": graph, "labels": np.asarray(labels, np.int32), "mask": np.asarray(mask, np.float32)}


def karate_data(config: ml_collections.ConfigDict, data_stream: jax.Array) -> HostData:
  """The club as one batch: the same graph every step, the train mask for the loss, the eval mask after.

  By default the two leaders are labelled, nothing is drawn; `data.train_examples` labels that many nodes,
  half per club, the leaders and then members drawn from the `data` stream (a study varying it varies them)."""
  n = config.data.train_examples
  seed = None if n is None else rng.dataset_seed(data_stream)
  club = graph_lib.karate_club(labelled_per_class=karate_labelled_per_class(n), draw_seed=seed)
  train = as_batch(club["graph"], club["labels"], club["train_mask"])
  return HostData(
    steps_per_epoch=1,
    train_batches=lambda epoch: iter([train]),
    eval_batches=[as_batch(club["graph"], club["labels"], club["eval_mask"])],
    probe=train,
  )


def cycles_splits(config: ml_collections.ConfigDict, data_stream: jax.Array):
  """((train graphs, labels), (eval graphs, labels)) of the generated set the `data` stream draws."""
  d = config.data
  seed = rng.dataset_seed(data_stream)
  train = load_graph_split(d.name, d.train_split, seed=seed, data_dir=d.data_dir)
  evaluation = load_graph_split(d.name, d.eval_split, seed=seed, data_dir=d.data_dir)
  if d.train_examples is not None:  # the first N, as the problem's train_size says (it was silently ignored here)
    train = (train[0][: d.train_examples], train[1][: d.train_examples])
  return train, evaluation


def cycles_data(config: ml_collections.ConfigDict, data_stream: jax.Array) -> HostData:
  batch_size = config.train.batch_size
  (train_graphs, train_labels), (eval_graphs, eval_labels) = cycles_splits(config, data_stream)
  budgets = graph_lib.budgets_for(train_graphs + eval_graphs, batch_size)  # shared: eval compiles no new shape
  steps = steps_per_epoch(len(train_graphs), batch_size)

  def batches(graphs, labels, order):
    return [as_batch(*b) for b in graph_lib.graph_batches(graphs, labels, batch_size, order=order, budgets=budgets)]

  def train_batches(epoch: int) -> Iterator[Batch]:
    order = np.asarray(jax.random.permutation(rng.step_key(data_stream, epoch), len(train_graphs)))
    yield from batches(train_graphs, train_labels, order[: steps * batch_size])

  eval_batches = batches(eval_graphs, eval_labels, np.arange(len(eval_graphs)))
  probe_size = min(batch_size, len(train_graphs))
  probe = batches(train_graphs[:batch_size], train_labels[:batch_size], np.arange(probe_size))[0]
  return HostData(steps, train_batches, eval_batches, probe)
