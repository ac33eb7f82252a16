"""Dataset kinds: the one place that tells datasets apart by name.

Every dataset a config names is one of four kinds, and what a run may do with it follows from the kind,
never from its name checked here and there:

- stored: shipped (`digits`), any prepared tfds dataset, your own `folder:`/`csv:`/`npz:`; array_record
  on disk, whole splits on the device. Everything applies: split slices, adaptation, class subsets,
  imbalance, label noise, augmentation (images), the audit, groups of runs, data parallelism.
- generated (`adding`): drawn in memory from the `data` stream; size limits, groups of runs, data parallelism.
- graphs (`graph_cycles`): generated, served through tfds, batched and padded on the host, one device;
  none of the array preparations.
- whole graph (`karate`): one fixed graph, one full-graph batch per step; the batch size is not bounded by
  the split.

`DatasetKind.spec(config.data)` says what the dataset offers (from metadata, before any example is
loaded), `input_structure(spec)` the model's input with batch 1, and the kind's loader reads it:
`load_splits` (array kinds: train and eval `Split`s) or `load_host_data` (graph kinds: `HostData`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections

from jaxflow import rng
from jaxflow.data import graph_batches, groups, holdout, loading, synthetic
from jaxflow.data.graph_cycles import CYCLES_NAME
from jaxflow.data.loading import FeatureSpec, Split


@dataclasses.dataclass(frozen=True)
class DatasetKind:
  """What a kind of dataset is, how it is read, and which preparations apply to it."""

  name: str  # for messages: "stored", "generated", "graph"
  spec: Callable[[ml_collections.ConfigDict], FeatureSpec]  # config.data -> what the dataset offers
  input_structure: Callable[[FeatureSpec], object]  # the model's input with batch 1, as shapes
  load_splits: Callable | None = None  # (config, data_stream) -> (train Split, eval Split): array kinds
  load_host_data: Callable | None = None  # (config, data_stream) -> HostData: graph kinds
  stored: bool = False  # array_record on disk: tfds split slices, adaptation, metadata features, the audit
  generated: bool = False  # drawn from the run's `data` stream: the data stream decides the examples
  whole_graph: bool = False  # one graph, one full batch per step: steps_per_epoch = 1, any batch size

  @property
  def graphs(self) -> bool:
    """Graph examples: batched on the host, read by graph models only."""
    return self.load_host_data is not None

  @property
  def class_preparation(self) -> bool:
    """Imbalance (class_counts, imbalance_ratio, oversampling, class weights) and label noise."""
    return not self.graphs

  @property
  def on_device(self) -> bool:
    """Whole splits live on the device: steps gather batches by index; groups of runs and data
    parallelism apply."""
    return not self.graphs


def array_structure(feature_spec: FeatureSpec) -> jax.ShapeDtypeStruct:
  return jax.ShapeDtypeStruct((1, *feature_spec.input_shape), jnp.float32)


def _stored_spec(data: ml_collections.ConfigDict) -> FeatureSpec:
  return loading.dataset_spec(
    data.name,
    data_dir=data.data_dir,
    input_feature=data.input_feature,
    label_feature=data.label_feature,
    metadata_features=groups.features_to_read(data),
  )


def read_options(data: ml_collections.ConfigDict) -> dict:
  """The keyword arguments `loading.load_split` takes from config.data."""
  return dict(
    data_dir=data.data_dir,
    input_feature=data.input_feature,
    label_feature=data.label_feature,
    metadata_features=groups.features_to_read(data),
  )


def _stored_splits(config: ml_collections.ConfigDict, data_stream: jax.Array) -> tuple[Split, Split]:
  del data_stream  # stored examples are fixed; the stream only orders them
  d = config.data
  read = read_options(d)
  train = loading.load_split(d.name, d.train_split, **read)
  if holdout.applies(d, _stored_spec(d), stored=True):
    return holdout.split(train, d.holdout)
  return train, loading.load_split(d.name, d.eval_split, **read)


def _generated_splits(config: ml_collections.ConfigDict, data_stream: jax.Array) -> tuple[Split, Split]:
  d = config.data
  splits = synthetic.GENERATED[d.name].generate(rng.dataset_seed(data_stream))
  return splits[d.train_split], splits[d.eval_split]


STORED = DatasetKind(
  "stored", spec=_stored_spec, input_structure=array_structure, load_splits=_stored_splits, stored=True
)
GENERATED = DatasetKind(
  "generated",
  spec=lambda data: synthetic.GENERATED[data.name].spec(data.name),
  input_structure=lambda feature_spec: synthetic.GENERATED[feature_spec.name].input_structure(),
  load_splits=_generated_splits,
  generated=True,
)
GRAPHS = DatasetKind(
  "graph",
  spec=lambda data: graph_batches.spec(data.name),
  input_structure=graph_batches.input_structure,
  load_host_data=graph_batches.cycles_data,
  generated=True,
)
WHOLE_GRAPH = DatasetKind(
  "graph",
  spec=lambda data: graph_batches.spec(data.name, train_examples=data.get("train_examples")),
  input_structure=graph_batches.input_structure,
  load_host_data=graph_batches.karate_data,
  whole_graph=True,
)

# The datasets that are not `stored`, by name; any other name is a stored (tfds or own) dataset.
NAMED_KINDS = {
  **{name: GENERATED for name in synthetic.GENERATED},
  CYCLES_NAME: GRAPHS,
  graph_batches.KARATE: WHOLE_GRAPH,
}
GRAPH_DATASETS = tuple(name for name, kind in NAMED_KINDS.items() if kind.graphs)


def dataset_kind(name: str) -> DatasetKind:
  """The kind of dataset `name` (`config.data.name`)."""
  return NAMED_KINDS.get(name, STORED)
