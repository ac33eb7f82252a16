"""Whole-split, in-memory loading of tfds datasets as numpy arrays, without TensorFlow.

The training loop asks two things: what a dataset offers (`dataset_spec`, read from the builder's
metadata before any example is loaded, so a config can be checked and a model built first) and the
examples of one split (`load_split`). Both go through `tfds.data_source` on array_record files: random
access with no TensorFlow. jaxflow's datasets are small, so a split is read whole into memory once;
batching and shuffling (from the `data` PRNG stream) happen on those arrays.

tensorflow_datasets is imported inside the functions: importing `jaxflow.data` stays cheap (tfds
alone takes ~0.5 s) for the commands that never touch data. The data dir, the file format and the
quiet preparation are `jaxflow.data.store`'s, shared with `custom` and `graph_builders`.

A user's own data ('folder:PATH', 'csv:PATH', 'npz:PATH'; see `jaxflow.data.custom`) is converted once
into the same array_record format and then goes through the same two functions: the name is passed
as it is, with its prefix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from jaxflow.data import custom, decoded, digits
from jaxflow.data.store import DEFAULT_DATA_DIR_ENV, FILE_FORMAT, DatasetError, prepare_once, resolve_data_dir

# Datasets jaxflow ships a builder for, name -> the function that defines (and so registers with tfds)
# its builder class. Only these are prepared on first use; they are built from data inside an installed
# package, so preparing never downloads.
SHIPPED_DATASETS = types.MappingProxyType({"digits": digits.builder_class})
# Their versions: where tfds prepares them (<data_dir>/<name>/<version>), found without importing tfds.
SHIPPED_VERSIONS = types.MappingProxyType({"digits": digits.VERSION})


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
  """What a dataset offers, read from its metadata before loading any example."""

  name: str  # dataset name as given
  input_feature: str
  label_feature: str
  input_shape: tuple[int, ...]  # of one example, e.g. (8, 8, 1) = [height, width, channels]
  input_dtype: str  # as stored, e.g. 'uint8'
  num_classes: int | None  # from a ClassLabel feature, else None
  split_sizes: dict[str, int]  # e.g. {'train': 1437, 'test': 360}
  feature_names: tuple[str, ...]  # all top-level feature names, for error messages
  class_names: tuple[str, ...] | None = None  # the ClassLabel's names, when it has any
  input_names: tuple[str, ...] | None = None  # a CSV's feature columns, in input order (None elsewhere)


@dataclasses.dataclass(frozen=True)
class Split:
  """One split in memory, in stored order."""

  inputs: np.ndarray  # float32 [n, *input_shape]; uint8 inputs scaled to [0, 1] by /255
  labels: np.ndarray  # int32 [n]
  # The features named by `load_split(metadata_features=...)`, one row per example: text as str, any
  # other feature as stored (ragged ones as an object array).
  metadata: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


def _base_name(name: str) -> str:
  """'mnist/config:3.0.1' -> 'mnist'."""
  return name.split("/", 1)[0].split(":", 1)[0]


def _unknown_dataset(name: str) -> DatasetError:
  shipped = ", ".join(repr(n) for n in SHIPPED_DATASETS)
  return DatasetError(
    f"data.name={name!r} is not a known dataset: use one jaxflow ships ({shipped}), your own data "
    "('folder:PATH', 'csv:PATH' or 'npz:PATH') or any tfds builder (tfds.list_builders())."
  )


def _own_data_without_prefix(name: str) -> DatasetError:
  path = os.path.expanduser(name)
  if os.path.isdir(path):
    hint = f"'folder:{name}' (one sub-folder of images per class)"
  elif path.endswith(".npz"):
    hint = f"'npz:{name}'"
  elif path.endswith((".csv", ".tsv", ".txt")) or os.path.isfile(path):
    hint = f"'csv:{name}'"
  else:
    hint = f"'folder:{name}', 'csv:{name}' or 'npz:{name}'"
  return DatasetError(f"data.name={name!r} is a path; own data are named with their kind: use {hint}")


def _not_prepared(name: str, data_dir: str) -> DatasetError:
  return DatasetError(
    f"data.name={name!r} is not prepared in data_dir={data_dir!r} and jaxflow never downloads: "
    f"prepare it where the data can be fetched, e.g. `tfds build {_base_name(name)} "
    f"--data_dir={data_dir} --file_format={FILE_FORMAT}`, then point data.data_dir or "
    f"${DEFAULT_DATA_DIR_ENV} at that directory."
  )


def _prepared_builder(
  name: str, data_dir: str, *, label_feature: str = "label", metadata_features: Sequence[str] = ()
) -> Any:
  """The tfds builder for `name`, with its data prepared in `data_dir` (returns tfds.core.DatasetBuilder).

  Shipped datasets are prepared here on first use, a user's own data (whose conversion depends on the
  label and metadata columns) whenever its source changed; any other one must already be prepared,
  because a tfds download could be large and jaxflow machines may have no network.
  """
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only reading a dataset needs it.

  if custom.is_custom(name):
    return custom.prepared_builder(name, data_dir, label_feature=label_feature, metadata_features=metadata_features)
  base = _base_name(name)
  if base in SHIPPED_DATASETS:
    SHIPPED_DATASETS[base]()  # Registers the builder with tfds.
    return prepare_once(lambda: tfds.builder(name, data_dir=data_dir, file_format=FILE_FORMAT), name, data_dir)
  if os.path.exists(os.path.expanduser(name)) or name.startswith(("/", "./", "../", "~")):
    raise _own_data_without_prefix(name)
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except tfds.core.registered.DatasetNotFoundError:
    raise _unknown_dataset(name) from None
  except ValueError as e:  # tfds could not even parse the name (a path, a typo with odd characters)
    raise DatasetError(f"{_unknown_dataset(name)} (tfds: {' '.join(str(e).split())[:120]})") from None
  if not builder.is_prepared():
    raise _not_prepared(name, data_dir)
  if builder.info.file_format is None or builder.info.file_format.value != FILE_FORMAT:
    raise DatasetError(
      f"data.name={name!r} is prepared in data_dir={data_dir!r} as {builder.info.file_format}, "
      f"which tfds.data_source can't read: prepare it again with --file_format={FILE_FORMAT}."
    )
  return builder


def _check_feature(field: str, feature: str, name: str, feature_names: tuple[str, ...]) -> None:
  if feature not in feature_names:
    raise DatasetError(f"{field}={feature!r} is not a feature of dataset {name!r}; it has: {', '.join(feature_names)}.")


def dataset_spec(
  name: str,
  *,
  data_dir: str | None,
  input_feature: str = "image",
  label_feature: str = "label",
  metadata_features: Sequence[str] = (),
) -> FeatureSpec:
  """What dataset `name` offers, from its metadata; prepares a shipped dataset or the user's own data.

  `metadata_features` are checked to exist; for 'csv:' and 'npz:' sources they also say which columns
  are metadata rather than inputs, so pass the same ones as to `load_split`.
  Raises DatasetError for an unknown name (field `data.name`), a non-shipped dataset that isn't
  prepared in the data dir, a source that can't be converted, or a missing feature
  (`data.input_feature` / `data.label_feature` / `data.metadata_features`).
  """
  known_dir, kept = _kept(name, data_dir, input_feature, label_feature, metadata_features)
  if kept is not None:
    return kept
  return _spec_and_builder(name, data_dir, input_feature, label_feature, metadata_features, known_dir)[0]


def _prepared_dir_without_tfds(name: str, data_dir: str, label_feature: str, metadata_features) -> str | None:
  """Where `name` is prepared, for a shipped dataset or a user's source; None for anything else."""
  if custom.is_custom(name):
    try:
      return custom.prepared_dir(
        name, data_dir=data_dir, label_feature=label_feature, metadata_features=metadata_features
      )
    except DatasetError:  # the tfds path says what is wrong with the source
      return None
  if name in SHIPPED_VERSIONS:
    return os.path.join(data_dir, name, SHIPPED_VERSIONS[name])
  return None


def _kept(
  name: str, data_dir: str | None, input_feature: str, label_feature: str, metadata_features: Sequence[str]
) -> tuple[str | None, FeatureSpec | None]:
  """(the prepared folder, found without tfds; the spec an earlier run kept there, `jaxflow.data.decoded`).

  The folder is returned either way so that the tfds path does not find it again: for a user's source that
  means hashing the whole file."""
  metadata_features = tuple(metadata_features)
  builder_dir = _prepared_dir_without_tfds(name, resolve_data_dir(data_dir), label_feature, metadata_features)
  if builder_dir is None:
    return None, None
  fields = decoded.read_spec(builder_dir, (input_feature, label_feature, metadata_features))
  if fields is None or fields.get("name") != name:
    return builder_dir, None
  try:
    spec = FeatureSpec(**fields)
  except TypeError:  # kept by another jaxflow version: read through tfds again
    return builder_dir, None
  tuples = ("input_shape", "feature_names", "class_names", "input_names")  # JSON kept them as lists
  spec = dataclasses.replace(spec, **{f: tuple(getattr(spec, f)) for f in tuples if getattr(spec, f) is not None})
  return builder_dir, spec


def _spec_and_builder(
  name: str,
  data_dir: str | None,
  input_feature: str,
  label_feature: str,
  metadata_features: Sequence[str],
  known_dir: str | None,
) -> tuple[FeatureSpec, Any]:
  """The spec through tfds; `known_dir` is `_kept`'s folder, where the spec is kept for the next run."""
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only reading a dataset needs it.

  stamp = decoded.info_stamp(known_dir) if known_dir else None  # before the builder reads the metadata
  builder = _prepared_builder(
    name, resolve_data_dir(data_dir), label_feature=label_feature, metadata_features=metadata_features
  )
  features = builder.info.features
  feature_names = tuple(features.keys())
  _check_feature("data.input_feature", input_feature, name, feature_names)
  _check_feature("data.label_feature", label_feature, name, feature_names)
  for feature in metadata_features:
    if feature not in feature_names:
      raise DatasetError(
        f"data.metadata_features (with data.group_feature)={tuple(metadata_features)!r} names {feature!r}, which is "
        "not a feature of "
        f"dataset {name!r}; it has: {', '.join(feature_names)}."
      )
  inputs, labels = features[input_feature], features[label_feature]
  spec = FeatureSpec(
    name=name,
    input_feature=input_feature,
    label_feature=label_feature,
    input_shape=tuple(inputs.shape),
    input_dtype=np.dtype(inputs.np_dtype).name,
    num_classes=labels.num_classes if isinstance(labels, tfds.features.ClassLabel) else None,
    split_sizes={split: info.num_examples for split, info in builder.info.splits.items()},
    feature_names=feature_names,
    class_names=tuple(labels.names) if isinstance(labels, tfds.features.ClassLabel) else None,
    input_names=_csv_columns(builder.info.description, input_feature, tuple(inputs.shape)),
  )
  features = (input_feature, label_feature, tuple(metadata_features))
  if known_dir and os.path.realpath(known_dir) == os.path.realpath(str(builder.data_dir)):  # what the fast path reads
    # Not prepared before this call: the metadata read is what it just wrote.
    stamp = stamp or decoded.info_stamp(known_dir)
    decoded.write_spec(known_dir, features, dataclasses.asdict(spec), stamp)
  return spec, builder


def _csv_columns(description: str | None, input_feature: str, shape: tuple[int, ...]) -> tuple[str, ...] | None:
  """The feature columns a CSV conversion recorded in its description ("features = columns a, b, c; ..."),
  when they match the input's width; own CSV data only."""
  found = re.search(r"features = columns (.*?); label column", description or "")
  if input_feature != "features" or not found or len(shape) != 1:
    return None
  names = tuple(n.strip() for n in found.group(1).split(","))
  return names if len(names) == shape[0] else None


# What a split field may hold (tfds' split syntax, the parts jaxflow's datasets use), for error messages.
SPLIT_SYNTAX = (
  "a split name, NAME[FROM:TO] with FROM and TO example indices or percents in [-100%, 100%], "
  "or a sum A+B (e.g. 'train[:80%]', 'train[100:]', 'train+test')"
)


def _check_split(split: str, split_field: str, name: str, splits: Mapping[str, Any]) -> int:
  """The number of examples `split` selects: a split name or tfds' slicing syntax over known splits
  ('train[:90%]', 'train+test'), given the builder's `info.splits`. A name the dataset lacks, a malformed
  slice, a slice beyond its split, or one that selects no examples is a one-line DatasetError."""
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only reading a dataset needs it.

  parts = re.split(r"\s*\+\s*", split.strip())
  bases = [part.split("[", 1)[0].strip() for part in parts]
  if not all(base in splits for base in bases):
    raise DatasetError(
      f"{split_field}={split!r} is not a split of dataset {name!r}; it has: {', '.join(splits)} "
      "(tfds slices such as 'train[:90%]' work too)."
    )
  try:
    tfds.core.ReadInstruction.from_spec(split)
  except (ValueError, AssertionError):
    raise DatasetError(
      f"{split_field}={split!r} is not a valid split of dataset {name!r}; allowed: {SPLIT_SYNTAX}."
    ) from None
  total = 0
  for part, base in zip(parts, bases):
    size = splits[base].num_examples
    try:
      count = splits[part].num_examples
    except (ValueError, AssertionError):  # a slice beyond the split: train[:5000] of 1437 examples
      raise DatasetError(
        f"{split_field}={split!r} reaches beyond split {base!r} of dataset {name!r}, which has {size} examples; "
        f"allowed: {SPLIT_SYNTAX}."
      ) from None
    if count <= 0:
      which = "" if part == split else f" (its part {part!r})"
      raise DatasetError(
        f"{split_field}={split!r}{which} selects no examples (split {base!r} of {name!r} has {size}); "
        "allowed: a slice that selects at least one example, e.g. 'train[:80%]'."
      )
    total += count
  return total


def split_size(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  input_feature: str = "image",
  label_feature: str = "label",
  split_field: str = "data.split",
  metadata_features: Sequence[str] = (),
) -> int:
  """How many examples `load_split` would return, from the dataset's metadata (no example is read); the
  same checks and one-line DatasetErrors as `load_split`."""
  metadata_features = tuple(dict.fromkeys(metadata_features))
  known_dir, kept = _kept(name, data_dir, input_feature, label_feature, metadata_features)
  if kept is not None and split in kept.split_sizes:
    return kept.split_sizes[split]
  _, builder = _spec_and_builder(name, data_dir, input_feature, label_feature, metadata_features, known_dir)
  return _check_split(split, split_field, name, builder.info.splits)


def _read_all(source: Any) -> list[dict[str, Any]]:
  """Every example of a tfds data source, in stored order, with one batched read.

  `__getitems__` reads all records in one array_record call instead of one call per index; decoding
  (PNG, for images) stays per example inside tfds.
  """
  return list(source.__getitems__(list(range(len(source)))))


def _to_float_inputs(values: np.ndarray) -> np.ndarray:
  """float32 inputs: uint8 (images) scaled to [0, 1] by /255, anything else cast as it is."""
  if values.dtype == np.uint8:
    return values.astype(np.float32) / np.float32(255.0)
  return values.astype(np.float32)


def _metadata_values(values: list[Any], is_text: bool) -> np.ndarray:
  """One feature of every example as one array: text (bytes through data_source) as str."""
  if is_text:
    return np.asarray([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values])
  arrays = [np.asarray(v) for v in values]
  if all(a.shape == arrays[0].shape for a in arrays):
    return np.stack(arrays)
  ragged = np.empty(len(arrays), dtype=object)  # e.g. a Sequence feature of varying length
  ragged[:] = arrays
  return ragged


def load_split(
  name: str,
  split: str,
  *,
  data_dir: str | None,
  input_feature: str = "image",
  label_feature: str = "label",
  split_field: str = "data.split",
  metadata_features: Sequence[str] = (),
) -> Split:
  """Split `split` of dataset `name` in memory: inputs float32 [n, *input_shape], labels int32 [n].

  Order is the stored order: shuffling is the training loop's job, from its `data` PRNG stream.
  `split_field` is the config field that named the split, for the error message when it is unknown.
  `metadata_features` are other features of the dataset, returned by name in `Split.metadata`.
  """
  metadata_features = tuple(dict.fromkeys(metadata_features))  # unique, in the order given
  known_dir, kept = _kept(name, data_dir, input_feature, label_feature, metadata_features)
  if kept is not None and split in kept.split_sizes:
    cached = _read_decoded(known_dir, split, input_feature, label_feature, metadata_features)
    if cached is not None:
      return cached
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only reading a dataset needs it.

  _, builder = _spec_and_builder(name, data_dir, input_feature, label_feature, metadata_features, known_dir)
  _check_split(split, split_field, name, builder.info.splits)
  stamp = decoded.info_stamp(str(builder.data_dir))  # the preparation the examples below are read from
  cached = _read_decoded(builder.data_dir, split, input_feature, label_feature, metadata_features)
  if cached is not None:
    return cached
  if custom.is_custom(name):
    source = builder.as_data_source(split=split)  # tfds.data_source resolves registered names only
  else:
    source = tfds.data_source(name, split=split, data_dir=resolve_data_dir(data_dir), download=False)
  examples = _read_all(source)
  if not examples:
    raise DatasetError(f"{split_field}={split!r} of dataset {name!r} holds no examples.")
  inputs = np.stack([example[input_feature] for example in examples])
  labels = np.asarray([example[label_feature] for example in examples], dtype=np.int32)
  features = builder.info.features
  metadata = {
    feature: _metadata_values(
      [example[feature] for example in examples], isinstance(features[feature], tfds.features.Text)
    )
    for feature in metadata_features
  }
  path = decoded.arrays_path(builder.data_dir, split, input_feature, label_feature, metadata_features)
  decoded.write_arrays(path, stamp, inputs, labels, metadata)
  return Split(inputs=_to_float_inputs(inputs), labels=labels, metadata=metadata)


def _read_decoded(builder_dir, split: str, input_feature: str, label_feature: str, metadata_features) -> Split | None:
  """The split as an earlier run decoded and kept it (`jaxflow.data.decoded`), or None."""
  path = decoded.arrays_path(builder_dir, split, input_feature, label_feature, metadata_features)
  kept = decoded.read_arrays(path, str(builder_dir), metadata_features)
  if kept is None:
    return None
  inputs, labels, metadata = kept
  return Split(inputs=_to_float_inputs(inputs), labels=labels, metadata=metadata)
