"""Writing a parsed source through tfds as array_record, in `<data_dir>/jaxflow_custom/<config>/1.0.0/`.

The source is parsed and checked in Python first (so a bad row raises a one-line DatasetError before
anything is written), then written by tfds itself and read back with `tfds.builder_from_directory` and
`as_data_source`, i.e. the same `tfds.data_source` path as digits. `tfds.dataset_builders.
store_as_tfds_dataset` is the obvious tool, but in tfds 4.9.10 its `AdhocBuilder._split_generators`
calls `isinstance(dataset, tf.data.Dataset)` on every split, which imports TensorFlow and fails without
it. So a small subclass of `AdhocBuilder` (its constructor and `_info` serve as they are) overrides only
`_split_generators` to hand the examples over, and is made per source with the source's BuilderConfig
as its class attribute (tfds looks configs up on the class; one set only on the instance, as
AdhocBuilder does, works but logs "Using custom data configuration"). Images are PNG-encoded with
Pillow before tfds sees them (tfds' own encoder needs TensorFlow); numeric features are
`Tensor(encoding=BYTES)`, which stores raw bytes: float64 and int64 metadata come back exact (tfds'
default float encoding would round float64 to float32).

tensorflow_datasets is imported inside the functions: importing `jaxflow.data` stays cheap (tfds alone
takes ~0.5 s) for the commands that never touch data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from jaxflow.data.custom.parsed import Table
from jaxflow.data.store import FILE_FORMAT, prepare_once

TFDS_NAME = "jaxflow_custom"  # Prepared copies live in <data_dir>/jaxflow_custom/<config>/<VERSION>/.
VERSION = "1.0.0"


def _connector(spec: tuple) -> Any:
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only converting a source needs it.

  kind = spec[0]
  if kind == "image":
    return tfds.features.Image(shape=spec[1], encoding_format="png")
  if kind == "class":
    return tfds.features.ClassLabel(names=list(spec[1]))
  if kind == "array":
    return tfds.features.Tensor(shape=spec[2], dtype=spec[1], encoding=tfds.features.Encoding.BYTES)
  return tfds.features.Text()


def _examples(columns: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
  """(key, example) in stored order; with disable_shuffling, tfds writes them in key order."""
  n = len(next(iter(columns.values())))
  for index in range(n):
    yield index, {feature: values[index] for feature, values in columns.items()}


def _builder_class(config: Any) -> type:
  """An AdhocBuilder that takes iterables of (key, example) without asking whether they are tf.data.

  Made per source so that its BuilderConfig is a class attribute (see the module docstring).
  """
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only converting a source needs it.

  class CustomSource(tfds.dataset_builders.AdhocBuilder, skip_registration=True):
    BUILDER_CONFIGS = [config]

    def _split_generators(self, dl_manager):
      del dl_manager  # Nothing to download: the examples are in memory already.
      return dict(self._split_datasets)

  return CustomSource


def write(table: Table, name: str, config_name: str, data_dir: str) -> None:
  """Writes `table` as dataset `name`'s copy `config_name` in `data_dir`, through tfds."""
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only converting a source needs it.

  config = tfds.core.BuilderConfig(name=config_name, version=VERSION, description=table.description)
  features = tfds.features.FeaturesDict({f: _connector(spec) for f, spec in table.features.items()})
  source_class = _builder_class(config)

  def make_builder():  # fresh generators each time: a second builder is only asked whether a copy is in place
    return source_class(
      name=TFDS_NAME,
      version=VERSION,
      config=config,
      features=features,
      split_datasets={split: _examples(columns) for split, columns in table.splits.items()},
      data_dir=data_dir,
      description=table.description,
      file_format=FILE_FORMAT,
      disable_shuffling=True,  # keep the order chosen here (keys 0..n-1)
    )

  # Another process converting the same source at once: whichever renames its copy into place first wins.
  prepare_once(make_builder, name, data_dir, reason="converted once per version of the source")
