"""Bring your own data: a folder of images, a CSV or an NPZ as a tfds dataset read like any other.

`config.data.name` names the source with a prefix; `dataset_spec` and `load_split` take the name as it
is, so splits, tfds slicing ('train[:80%]') and everything downstream work unchanged:

- `folder:PATH`: one subfolder per class (class names = subfolder names, sorted), images (png, jpg,
  jpeg, bmp, gif; hidden files and other extensions ignored, subfolders of a class folder not read)
  directly inside. If PATH's subfolders hold class subfolders instead (PATH/train/cat/1.png,
  PATH/test/cat/2.png), they are the splits; else everything is split 'train'. Every image must have
  the same size and mode after RGBA/palette -> RGB and LA/1-bit -> L: grayscale [h, w, 1], colour
  [h, w, 3], uint8. Features: `image`, `label`, `filename` (path relative to PATH).
- `csv:PATH`: a header row; the label column is `data.label_feature`; the columns named in
  `data.metadata_features` are kept as features of their own (int64, float64 or text, whichever all
  values parse as); an optional `split` column assigns rows to splits; every other column must be a
  finite number and they become, in header order, the float32 vector feature `features` [d].
  `csv_line` is each row's line in the file (the header is line 1), as in error messages.
- `npz:PATH`: arrays `x` (else `features`, else `inputs`) [n, ...] and the label `data.label_feature`
  (else `y`, else `label`) [n]; optional `split` [n] of strings and the arrays named by
  `data.metadata_features` [n, ...]; other arrays are ignored. `x` is stored as `features`: uint8 stays
  uint8 (read back /255, like images), any other number becomes float32, [n] becomes [n, 1].
  `npz_index` is each row's index in the arrays.

Labels are integers (classes 0..max) or strings (classes = the distinct strings, sorted; a CSV label
column counts as integers only if every value is one). Float labels are refused: regression targets
are not classes, and `load_split` returns int32 labels.

Stored order: without named splits (no split subfolders, no `split` column or array) everything is
'train' in a fixed pseudo-random order, `np.random.default_rng(SHUFFLE_SEED).permutation(n)`, so that
slices such as 'train[:80%]' / 'train[80%:]' are random subsets rather than the first classes of a
class-sorted listing; a folder's splits are shuffled the same way, since its listing is class-sorted
too. A CSV's or NPZ's named splits keep the file's order (it may mean something, e.g. time). The
provenance features (`filename`, `csv_line`, `npz_index`) map every example back to its source.

Modules: `folder`, `table` (CSV) and `arrays` (NPZ) parse and check a source into a `parsed.Table`;
`fingerprint` names its prepared copy; `builder` writes it through tfds. This package's functions are
what `jaxflow.data.loading` calls.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from jaxflow.data.custom.arrays import read_npz
from jaxflow.data.custom.builder import TFDS_NAME, VERSION, write
from jaxflow.data.custom.fingerprint import config_name, conversion_options, remove_earlier_versions
from jaxflow.data.custom.folder import read_folder
from jaxflow.data.custom.parsed import SHUFFLE_SEED
from jaxflow.data.custom.table import read_csv
from jaxflow.data.store import DatasetError, resolve_data_dir

__all__ = [
  "KINDS",
  "SHUFFLE_SEED",
  "TFDS_NAME",
  "is_custom",
  "prepared_builder",
  "prepared_dir",
]

KINDS = ("folder", "csv", "npz")


def is_custom(name: str) -> bool:
  """Whether dataset name `name` names a user's source ('folder:PATH', 'csv:PATH', 'npz:PATH')."""
  kind, sep, path = name.partition(":")
  return bool(sep) and kind in KINDS and bool(path)


def _source(name: str) -> tuple[str, str]:
  """('csv', '/abs/path.csv') from 'csv:PATH'; PATH may be relative (to the working dir) or use ~."""
  kind, _, path = name.partition(":")
  path = os.path.abspath(os.path.expanduser(path))
  if not os.path.exists(path):
    raise DatasetError(f"data.name={name!r}: {path} does not exist.")
  if (kind == "folder") != os.path.isdir(path):
    what = "a folder" if kind == "folder" else "a file"
    raise DatasetError(f"data.name={name!r}: {path} is not {what}.")
  return kind, path


def prepared_dir(
  name: str,
  *,
  data_dir: str | None,
  label_feature: str = "label",
  metadata_features: Sequence[str] = (),
) -> str:
  """Where the current version of source `name` is (or will be) prepared; converts nothing."""
  kind, path = _source(name)
  config = config_name(kind, path, conversion_options(kind, label_feature, metadata_features))
  return os.path.join(resolve_data_dir(data_dir), TFDS_NAME, config, VERSION)


def prepared_builder(
  name: str,
  data_dir: str,
  *,
  label_feature: str = "label",
  metadata_features: Sequence[str] = (),
) -> Any:
  """A read-only tfds builder over the current version of source `name`, converting it if needed.

  Returns tfds.core.DatasetBuilder; `data_dir` is already resolved.
  """
  import tensorflow_datasets as tfds  # Deferred: ~0.5 s to import, and only reading a source needs it.

  kind, path = _source(name)
  options = conversion_options(kind, label_feature, metadata_features)
  config = config_name(kind, path, options)
  dataset_dir = os.path.join(data_dir, TFDS_NAME, config, VERSION)
  if not os.path.exists(os.path.join(dataset_dir, "dataset_info.json")):
    if kind == "folder":
      table = read_folder(path)
    elif kind == "csv":
      table = read_csv(path, *options)
    else:
      table = read_npz(path, *options)
    write(table, name, config, data_dir)
    remove_earlier_versions(os.path.join(data_dir, TFDS_NAME), config)
  return tfds.builder_from_directory(dataset_dir)
