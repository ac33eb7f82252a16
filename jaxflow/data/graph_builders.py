"""`graph_cycles`: generated graph classification (does the graph contain a cycle?) as a tfds dataset.

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
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from jaxflow.data import graphs as graph_data

_CONFIG_RE = re.compile(r"seed_(\d+)")


def config_name(seed: int) -> str:
  """'seed_<seed>', the builder config that makes `seed` part of the dataset's name."""
  return f"seed_{int(seed)}"


@functools.cache
def _seed_config(seed: int) -> tfds.core.BuilderConfig:
  """One config object per seed (tfds compares configs by identity; see the module docstring)."""
  return tfds.core.BuilderConfig(name=config_name(seed), description=f"Generated from integer seed {seed}.")


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
    sizes = ", ".join(f"{n} {s}" for s, n in graph_data.CYCLES_SPLIT_SIZES.items())
    return tfds.core.DatasetInfo(
      builder=self,
      description=(
        f"Undirected random graphs of {graph_data.MIN_NODES}..{graph_data.MAX_NODES} nodes and n-1, n-2 or "
        "n-3 edges; label 1 iff the graph contains a cycle (exactly one), 0 for a forest. Node and edge "
        f"counts follow the same law in both classes; classes balanced; chance accuracy 0.5. Splits: {sizes}."
      ),
      features=tfds.features.FeaturesDict(
        {
          "num_nodes": tfds.features.Scalar(dtype=np.int32),
          "edges": tfds.features.Tensor(shape=(None, 2), dtype=np.int32),  # [m, 2], u < v, each edge once
          "label": tfds.features.ClassLabel(names=graph_data.CYCLES_CLASSES),
        }
      ),
      supervised_keys=None,
      # Keep the generated order (keys 0..n-1) so that a prepared split can be checked against
      # `generate_cycles`; shuffling is the training loop's job.
      disable_shuffling=True,
    )

  def _split_generators(self, dl_manager: tfds.download.DownloadManager):
    del dl_manager  # Nothing to download: everything is generated from the seed.
    return {split: self._generate_examples(split) for split in graph_data.CYCLES_SPLIT_SIZES}

  def _generate_examples(self, split: str) -> Iterator[tuple[int, dict]]:
    """Yields (index, {'num_nodes': int, 'edges': int32 [m, 2], 'label': 0 or 1}) in generated order."""
    for index, example in enumerate(graph_data.generate_cycles(self.seed, split)):
      yield index, example


# Generated graph datasets jaxflow ships, name -> builder class (importing this module registers them).
GRAPH_BUILDERS = {"graph_cycles": GraphCycles}
