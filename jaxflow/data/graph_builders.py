"""`graph_cycles` (generated in `jaxflow.data.graph_cycles`) as a tfds dataset, and reading a split of it
back as `jraph.GraphsTuple`s (`load_graph_split`).

Why tfds for data generated in a few hundred milliseconds: the training loop reads every dataset the
same way (`tfds.data_source` on array_record, no TensorFlow), and a prepared dataset on disk is a fixed
artefact of its seed that can be inspected, shared and audited like any other.

The seed is part of the dataset's identity through its builder config: `graph_cycles/seed_<N>` for any
non-negative integer N (prepared under data_dir/graph_cycles/seed_<N>/1.0.0). tfds only knows the
configs listed in BUILDER_CONFIGS, so `get_builder_config` is overridden to make one for any seed; the
config objects are cached per seed because tfds checks that a config passed back in *is* the class's
own object (`builder_config is not cls_builder_config` raises "Cannot name a custom BuilderConfig the
same as an available BuilderConfig").

Features without TensorFlow on tfds 4.9.10 (checked by preparing to array_record and reading back with
`tfds.data_source` while `'tensorflow' not in sys.modules`):
- `tfds.features.Tensor(shape=(None, 2), dtype=np.int32)` serializes and decodes without TF, including
  zero-length arrays, and decodes to a numpy array [m, 2]: used for the edge list.
- `tfds.features.Sequence` works too, but a `Sequence(Scalar)` or `Sequence({...})` decodes to a
  Python list of numpy scalars, not an array, through `data_source`: hence Tensor, not Sequence.
- `Scalar` and `ClassLabel` need nothing (as in digits). Only `Image` from a numpy array needs TF
  (`tf.image.encode_png`); nothing here is an image.

The builder class is defined (and so registered with tfds) on the first call of `graph_cycles_builder`,
not at import: subclassing needs tensorflow_datasets, which takes ~0.5 s to import, and the training
code imports this module whether or not it reads graphs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import jraph
import numpy as np

from jaxflow.data import graph_cycles
from jaxflow.data.store import FILE_FORMAT, DatasetError, prepare_once, resolve_data_dir

_CONFIG_RE = re.compile(r"seed_(\d+)")


def config_name(seed: int) -> str:
  """'seed_<seed>', the builder config that makes `seed` part of the dataset's name."""
  return f"seed_{int(seed)}"


@functools.cache
def _seed_config(seed: int) -> Any:
  """One tfds.core.BuilderConfig per seed (tfds compares configs by identity; see the module docstring)."""
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only preparing or reading needs it.

  return tfds.core.BuilderConfig(name=config_name(seed), description=f"Generated from integer seed {seed}.")


@functools.cache
def graph_cycles_builder() -> type:
  """The `graph_cycles` tfds builder (a tfds.core.GeneratorBasedBuilder), defined and so registered on the
  first call."""
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only preparing or reading needs it.

  class GraphCycles(tfds.core.GeneratorBasedBuilder):
    """Random graphs of 6..16 nodes labelled 1 iff they contain a cycle; balanced; one config per seed."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Prüfer trees minus edges (forests) vs forest plus one cycle-closing edge."}
    BUILDER_CONFIGS = [_seed_config(0)]  # The default; every other seed is made on demand.

    @classmethod
    def get_builder_config(cls, name: str, version=None) -> tfds.core.BuilderConfig | None:
      match = _CONFIG_RE.fullmatch(name)
      return _seed_config(int(match.group(1))) if match else super().get_builder_config(name, version)

    @property
    def seed(self) -> int:
      return int(_CONFIG_RE.fullmatch(self.builder_config.name).group(1))

    def _info(self) -> tfds.core.DatasetInfo:
      # DatasetInfo directly rather than `dataset_info_from_configs`, which reads files beside the module.
      sizes = ", ".join(f"{n} {s}" for s, n in graph_cycles.CYCLES_SPLIT_SIZES.items())
      return tfds.core.DatasetInfo(
        builder=self,
        description=(
          f"Undirected random graphs of {graph_cycles.MIN_NODES}..{graph_cycles.MAX_NODES} nodes and n-1, n-2 or "
          "n-3 edges; label 1 iff the graph contains a cycle (exactly one), 0 for a forest. Node and edge "
          f"counts follow the same law in both classes; classes balanced; chance accuracy 0.5. Splits: {sizes}."
        ),
        features=tfds.features.FeaturesDict(
          {
            "num_nodes": tfds.features.Scalar(dtype=np.int32),
            "edges": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),  # [m, 2], u < v, each edge once
            "label": tfds.features.ClassLabel(names=graph_cycles.CYCLES_CLASSES),
          }
        ),
        supervised_keys=None,
        # Keep the generated order (keys 0..n-1) so that a prepared split can be checked against
        # `generate_cycles`; shuffling is the training loop's job.
        disable_shuffling=True,
      )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
      del dl_manager  # Nothing to download: everything is generated from the seed.
      return {split: self._generate_examples(split) for split in graph_cycles.CYCLES_SPLIT_SIZES}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict]]:
      """Yields (index, {'num_nodes': int, 'edges': int32 [m, 2], 'label': 0 or 1}) in generated order."""
      for index, example in enumerate(graph_cycles.generate_cycles(self.seed, split)):
        yield index, example

  return GraphCycles


# Generated graph datasets jaxflow ships, name -> the function that defines (and so registers) its builder.
GRAPH_BUILDERS = {graph_cycles.CYCLES_NAME: graph_cycles_builder}


def load_graph_split(
  name: str, split: str, *, seed: int, data_dir: str | None = None
) -> tuple[list[jraph.GraphsTuple], np.ndarray]:
  """Split `split` of generated dataset `name` for `seed`, through tfds: (graphs, labels int32 [n]).

  The builder config `seed_<seed>` makes the seed part of the dataset's identity (its own directory
  under data_dir/<name>/); it is prepared on first use and read with `tfds.data_source`, no TensorFlow.
  Each graph is a single-graph GraphsTuple (`graph_cycles.cycles_graph`); stored order (shuffling is the
  loop's job).
  """
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only preparing or reading needs it.

  if name not in GRAPH_BUILDERS:
    known = ", ".join(GRAPH_BUILDERS)
    raise DatasetError(f"data.name={name!r} is not a generated graph dataset; known: {known}.")
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise DatasetError(f"seed={seed!r} must be a non-negative integer (see jaxflow.rng.dataset_seed).")
  GRAPH_BUILDERS[name]()  # Registers the builder with tfds.
  data_dir = resolve_data_dir(data_dir)
  full_name = f"{name}/{config_name(int(seed))}"
  builder = prepare_once(
    lambda: tfds.builder(full_name, data_dir=data_dir, file_format=FILE_FORMAT), full_name, data_dir
  )
  if split not in builder.info.splits:
    raise DatasetError(f"split={split!r} is not a split of {name!r}; it has: {', '.join(builder.info.splits)}.")
  source = builder.as_data_source(split=split)
  examples = list(source.__getitems__(list(range(len(source)))))
  graphs = [graph_cycles.cycles_graph(int(ex["num_nodes"]), ex["edges"]) for ex in examples]
  return graphs, np.array([ex["label"] for ex in examples], dtype=np.int32)
