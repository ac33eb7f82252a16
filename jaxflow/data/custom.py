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

How tfds is used. The source is parsed and checked in Python first (so a bad row raises a one-line
DatasetError before anything is written), then written by tfds itself as array_record in
`<data_dir>/jaxflow_custom/<config>/1.0.0/` and read back with `tfds.builder_from_directory` and
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

Staleness. The config name `<kind>_<stem>_<path hash>_<source hash>_<options hash>` is derived from the
absolute path, the source (a CSV's or NPZ's bytes, sha256; a folder's listing with every file's size
and mtime_ns, so that a large folder isn't read just to be looked up), and the options that shape the
conversion (label column, metadata columns). A source that changed gets a new name and is converted
again; the copies of earlier versions of the same path are deleted once the new one is written. A
folder edited without changing any size or mtime (a copy with preserved times of same-sized files)
would not be noticed: `touch` the folder's files in that case.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from jaxflow.data.loading import DatasetError, _prepare_quietly, resolve_data_dir

KINDS = ("folder", "csv", "npz")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
SHUFFLE_SEED = 0  # The fixed order of unsplit sources and of folder splits; part of the dataset's definition.
SPLIT_COLUMN = "split"
MAX_INT_CLASSES = 100_000
INPUT_FEATURE = "features"  # csv and npz; folders keep tfds' usual "image"
PROVENANCE_FEATURE = {"folder": "filename", "csv": "csv_line", "npz": "npz_index"}
TFDS_NAME = "jaxflow_custom"  # Prepared copies live in <data_dir>/jaxflow_custom/<config>/<VERSION>/.
VERSION = "1.0.0"
# Part of every source hash: bump it when the conversion changes, so no copy made by older code is served.
FORMAT_VERSION = 1

_SPLIT_NAME_RE = re.compile(r"[A-Za-z0-9_]+")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_GRAY_MODES = ("1", "L", "LA")
_COLOR_MODES = ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr")


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


# --- Identity of a source: the prepared copy's name ----------------------------------------------


def _sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _visible(entries: Sequence[os.DirEntry]) -> list[os.DirEntry]:
  return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)


def _folder_listing_digest(path: str) -> str:
  """sha256 of the names, sizes and mtimes under `path`, three levels deep (PATH/split/class/file)."""
  digest = hashlib.sha256()

  def walk(folder: str, rel: str, depth: int) -> None:
    with os.scandir(folder) as it:
      entries = _visible(list(it))
    for entry in entries:
      if entry.is_dir():
        digest.update(f"d {rel}{entry.name}\n".encode())
        if depth < 3:
          walk(entry.path, f"{rel}{entry.name}/", depth + 1)
      else:
        stat = entry.stat()
        digest.update(f"f {rel}{entry.name} {stat.st_size} {stat.st_mtime_ns}\n".encode())

  walk(path, "", 1)
  return digest.hexdigest()


def _conversion_options(kind: str, label_feature: str, metadata_features: Sequence[str]) -> tuple:
  """What besides the source shapes a conversion: for csv/npz, the label and the metadata columns.

  Names that are features of every conversion (the input, the label, the provenance feature) are
  features already, not columns to look for in the source.
  """
  if kind == "folder":
    return ()
  builtin = {INPUT_FEATURE, label_feature, PROVENANCE_FEATURE[kind]}
  columns = tuple(sorted({m for m in metadata_features if m not in builtin}))
  return (label_feature, columns)


def _config_name(kind: str, path: str, options: tuple) -> str:
  stem = os.path.splitext(os.path.basename(path))[0] if kind != "folder" else os.path.basename(path)
  slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")[:32] or "data"
  path_hash = hashlib.sha256(path.encode()).hexdigest()[:8]
  content = _folder_listing_digest(path) if kind == "folder" else _sha256_file(path)
  source_hash = hashlib.sha256(f"{FORMAT_VERSION} {content}".encode()).hexdigest()[:12]
  options_hash = hashlib.sha256(repr(options).encode()).hexdigest()[:6]
  return f"{kind}_{slug}_{path_hash}_{source_hash}_{options_hash}"


def prepared_dir(
  name: str,
  *,
  data_dir: str | None,
  label_feature: str = "label",
  metadata_features: Sequence[str] = (),
) -> str:
  """Where the current version of source `name` is (or will be) prepared; converts nothing."""
  kind, path = _source(name)
  config = _config_name(kind, path, _conversion_options(kind, label_feature, metadata_features))
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
  import tensorflow_datasets as tfds

  kind, path = _source(name)
  options = _conversion_options(kind, label_feature, metadata_features)
  config_name = _config_name(kind, path, options)
  dataset_dir = os.path.join(data_dir, TFDS_NAME, config_name, VERSION)
  if not os.path.exists(os.path.join(dataset_dir, "dataset_info.json")):
    if kind == "folder":
      table = _read_folder(path)
    elif kind == "csv":
      table = _read_csv(path, *options)
    else:
      table = _read_npz(path, *options)
    _write(table, name, config_name, data_dir)
    _remove_earlier_versions(os.path.join(data_dir, TFDS_NAME), config_name)
  return tfds.builder_from_directory(dataset_dir)


def _remove_earlier_versions(root: str, config_name: str) -> None:
  """Deletes the copies of the same path made from earlier contents (same options or not)."""
  kind_slug_path, source_hash, _ = config_name.rsplit("_", 2)
  for entry in os.listdir(root):
    if entry.startswith(f"{kind_slug_path}_") and entry.rsplit("_", 2)[1] != source_hash:
      shutil.rmtree(os.path.join(root, entry), ignore_errors=True)


# --- Writing through tfds --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Table:
  """A source parsed and checked, ready for tfds.

  `features` maps a feature name to ('image', shape) | ('class', names) | ('array', dtype, shape) |
  ('text',); `splits` maps a split name to {feature: values in stored order}.
  """

  features: dict[str, tuple]
  splits: dict[str, dict[str, Any]]
  description: str


def _connector(spec: tuple) -> Any:
  import tensorflow_datasets as tfds

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
  import tensorflow_datasets as tfds

  class CustomSource(tfds.dataset_builders.AdhocBuilder, skip_registration=True):
    BUILDER_CONFIGS = [config]

    def _split_generators(self, dl_manager):
      del dl_manager  # Nothing to download: the examples are in memory already.
      return dict(self._split_datasets)

  return CustomSource


def _write(table: _Table, name: str, config_name: str, data_dir: str) -> None:
  import tensorflow_datasets as tfds

  config = tfds.core.BuilderConfig(name=config_name, version=VERSION, description=table.description)
  features = tfds.features.FeaturesDict({f: _connector(spec) for f, spec in table.features.items()})
  builder = _builder_class(config)(
    name=TFDS_NAME,
    version=VERSION,
    config=config,
    features=features,
    split_datasets={split: _examples(columns) for split, columns in table.splits.items()},
    data_dir=data_dir,
    description=table.description,
    file_format="array_record",
    disable_shuffling=True,  # keep the order chosen here (keys 0..n-1)
  )
  try:
    _prepare_quietly(builder, name, data_dir, reason="converted once per version of the source")
  except OSError:
    # Another process converting the same source renamed its copy into place first: use that one.
    if not os.path.exists(os.path.join(str(builder.data_path), "dataset_info.json")):
      raise


# --- Shared parsing helpers --------------------------------------------------------------------------


def _ordered_splits(names: Sequence[str]) -> list[str]:
  """'train' first, then the others sorted: the order `dataset_spec` reports them in."""
  return sorted(set(names), key=lambda s: (s != "train", s))


def _check_split_name(value: str, where: str) -> None:
  if not _SPLIT_NAME_RE.fullmatch(value) or value == "all":
    raise DatasetError(
      f"{where}: split name {value!r} must be letters, digits and underscores, and not 'all' "
      "(tfds reads 'all' as every split)."
    )


def _split_order(split_of_row: Sequence[str] | None, n: int) -> dict[str, np.ndarray]:
  """Row indices of each split in stored order: file order for named splits, else all shuffled 'train'."""
  if split_of_row is None:
    return {"train": np.random.default_rng(SHUFFLE_SEED).permutation(n)}
  split_of_row = np.asarray(split_of_row)
  return {s: np.flatnonzero(split_of_row == s) for s in _ordered_splits(split_of_row.tolist())}


def _select(columns: dict[str, Any], rows: np.ndarray) -> dict[str, Any]:
  return {f: (v[rows] if isinstance(v, np.ndarray) else [v[i] for i in rows]) for f, v in columns.items()}


def _class_spec(names: Sequence[str]) -> tuple:
  return ("class", tuple(names))


def _int_class_names(labels: np.ndarray) -> tuple[str, ...]:
  return tuple(str(c) for c in range(int(labels.max()) + 1))


def _describe(kind: str, path: str, extra: str) -> str:
  return f"jaxflow {kind} source {path}; {extra}"


# --- Folder of images ---------------------------------------------------------------------------------


def _images_in(folder: str) -> list[str]:
  with os.scandir(folder) as it:
    return [e.path for e in _visible(list(it)) if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS)]


def _subfolders(folder: str) -> list[str]:
  with os.scandir(folder) as it:
    return [e.path for e in _visible(list(it)) if e.is_dir()]


def _folder_layout(path: str) -> dict[str, dict[str, list[str]]]:
  """{split: {class: [image paths, sorted]}}: PATH/class/image, or PATH/split/class/image."""
  expected = "expected PATH/<class>/<image> or PATH/<split>/<class>/<image>"
  tops = _subfolders(path)
  if not tops:
    raise DatasetError(f"{path}: no class subfolders ({expected}).")
  stray = _images_in(path)
  if stray:
    raise DatasetError(f"{stray[0]}: image outside any class folder ({expected}).")
  with_images = [t for t in tops if _images_in(t)]
  if with_images:
    for top in tops:
      if not _images_in(top):
        inner = "holds subfolders but no images" if _subfolders(top) else "holds no images"
        raise DatasetError(
          f"{top}: class folder {inner}, while {with_images[0]} holds images ({expected}; "
          f"images: {', '.join(IMAGE_EXTENSIONS)})."
        )
    return {"train": {os.path.basename(t): _images_in(t) for t in tops}}
  if not any(_subfolders(t) for t in tops):
    raise DatasetError(f"{path}: no images in any class folder ({expected}; images: {', '.join(IMAGE_EXTENSIONS)}).")
  layout = {}
  for top in tops:  # No folder holds images directly, some hold subfolders: these are split folders.
    split = os.path.basename(top)
    _check_split_name(split, top)
    classes = _subfolders(top)
    if not classes:
      raise DatasetError(f"{top}: split folder holds no class subfolders ({expected}).")
    layout[split] = {os.path.basename(c): _images_in(c) for c in classes}
  all_classes = sorted({c for classes in layout.values() for c in classes})
  for cls in all_classes:
    if not any(layout[s].get(cls) for s in layout):
      folders = [os.path.join(path, s, cls) for s in layout if cls in layout[s]]
      raise DatasetError(f"{folders[0]}: class folder holds no images (images: {', '.join(IMAGE_EXTENSIONS)}).")
  return {split: layout[split] for split in _ordered_splits(layout)}


def _read_image(file: str) -> np.ndarray:
  """uint8 [h, w, 1] (grayscale) or [h, w, 3] (colour) pixels of one image file, via Pillow."""
  from PIL import Image

  try:
    with Image.open(file) as image:
      image.load()
      mode = image.mode
      if mode in _GRAY_MODES:
        pixels = np.asarray(image.convert("L"))[..., None]
      elif mode in _COLOR_MODES:
        pixels = np.asarray(image.convert("RGB"))
      else:
        raise DatasetError(
          f"{file}: image mode {mode!r} is not supported (8-bit grayscale or colour only; "
          "convert 16-bit or float images first)."
        )
  except DatasetError:
    raise
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
    reason = " ".join(str(e).split()) or type(e).__name__
    raise DatasetError(f"{file}: cannot read image ({reason}).") from None
  return pixels


def _encode_png(pixels: np.ndarray) -> bytes:
  """PNG bytes by Pillow: tfds' Image feature would encode with TensorFlow."""
  from PIL import Image

  buffer = io.BytesIO()
  Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(buffer, format="png")
  return buffer.getvalue()


def _image_kind(pixels: np.ndarray) -> str:
  height, width, channels = pixels.shape
  return f"{width}x{height} {'grayscale' if channels == 1 else 'RGB'}"


def _read_folder(path: str) -> _Table:
  layout = _folder_layout(path)
  class_names = sorted({c for classes in layout.values() for c in classes})
  class_index = {c: i for i, c in enumerate(class_names)}
  first_file, first_kind, shape = None, None, None
  splits = {}
  for split, classes in layout.items():
    images, labels, filenames = [], [], []
    for cls in sorted(classes):
      for file in classes[cls]:
        pixels = _read_image(file)
        if shape is None:
          first_file, first_kind, shape = file, _image_kind(pixels), pixels.shape
        elif pixels.shape != shape:
          raise DatasetError(
            f"{file}: image is {_image_kind(pixels)}, but {first_file} (the first image) is "
            f"{first_kind}; every image must have the same size and mode."
          )
        images.append(_encode_png(pixels))
        labels.append(class_index[cls])
        filenames.append(os.path.relpath(file, path).replace(os.sep, "/"))
    columns = {"image": images, "label": np.asarray(labels, np.int64), "filename": filenames}
    splits[split] = _select(columns, np.random.default_rng(SHUFFLE_SEED).permutation(len(labels)))
  description = _describe(
    "folder",
    path,
    f"classes (sorted folder names): {', '.join(class_names)}; splits: {', '.join(splits)}; "
    f"each split in the fixed order np.random.default_rng({SHUFFLE_SEED}).permutation(n) of the sorted listing.",
  )
  features = {"image": ("image", shape), "label": _class_spec(class_names), "filename": ("text",)}
  return _Table(features=features, splits=splits, description=description)


# --- Labels shared by CSV and NPZ ----------------------------------------------------------------------


def _int_labels_checked(labels: np.ndarray, where) -> tuple[np.ndarray, tuple[str, ...]]:
  """Integer labels are classes 0..max: negative ones are refused, and so is a max that would make a
  ClassLabel of absurdly many names (sparse ids such as 1000003 are names, not class numbers)."""
  negative = np.flatnonzero(labels < 0)
  if negative.size:
    i = int(negative[0])
    raise DatasetError(f"{where(i)}: label {int(labels[i])} is not a class (integer labels are classes 0..max).")
  if labels.max() >= MAX_INT_CLASSES:
    i = int(np.argmax(labels))
    raise DatasetError(
      f"{where(i)}: label {int(labels[i])} would make {int(labels[i]) + 1} classes (integer labels are "
      f"classes 0..max, at most {MAX_INT_CLASSES}); renumber them 0..k-1."
    )
  labels = labels.astype(np.int64)
  return labels, _int_class_names(labels)


def _string_labels(labels: Sequence[str]) -> tuple[np.ndarray, tuple[str, ...]]:
  names = tuple(sorted(set(labels)))
  index = {c: i for i, c in enumerate(names)}
  return np.asarray([index[v] for v in labels], np.int64), names


# --- CSV ---------------------------------------------------------------------------------------------------


def _parse_numbers(values: list[str]) -> np.ndarray | None:
  """float64 values, or None if any is not a number (numpy parses in C; the slow search is for errors)."""
  try:
    return np.asarray(values, dtype=str).astype(np.float64)
  except ValueError:
    return None


def _metadata_column(values: list[str]) -> tuple[tuple, Any]:
  """(feature spec, values): int64 if every value is an integer, else float64 if a number, else text."""
  if all(_INT_RE.fullmatch(v.strip()) for v in values):
    try:
      return ("array", np.int64, ()), np.asarray([int(v) for v in values], np.int64)
    except OverflowError:
      pass
  numbers = _parse_numbers(values)
  if numbers is not None:
    return ("array", np.float64, ()), numbers
  return ("text",), list(values)


def _read_csv_rows(path: str) -> tuple[list[str], list[list[str]], list[int]]:
  """(header, rows, line of each row); blank lines skipped, ragged rows refused."""
  rows, lines = [], []
  try:
    with open(path, newline="", encoding="utf-8-sig") as f:
      reader = csv.reader(f, skipinitialspace=True)
      header = next(reader, None)
      if header is None:
        raise DatasetError(f"{path}: empty file; expected a header row, then one row per example.")
      header = [h.strip() for h in header]
      for row in reader:
        if not row or (len(row) == 1 and not row[0].strip()):
          continue
        if len(row) != len(header):
          raise DatasetError(
            f"{path} line {reader.line_num}: {len(row)} fields, but the header (line 1) has {len(header)}."
          )
        rows.append(row)
        lines.append(reader.line_num)
  except UnicodeDecodeError as e:
    raise DatasetError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason}).") from None
  except csv.Error as e:
    raise DatasetError(f"{path}: not a readable CSV ({e}).") from None
  return header, rows, lines


def _check_header(path: str, header: list[str], label: str, metadata: tuple[str, ...]) -> None:
  for position, column in enumerate(header, start=1):
    if not column:
      raise DatasetError(
        f"{path}: column {position} has no name (pandas writes its index that way: use to_csv(index=False))."
      )
  seen = set()
  for column in header:
    if column in seen:
      raise DatasetError(f"{path}: column {column!r} appears twice in the header.")
    seen.add(column)
  columns = ", ".join(header)
  if label not in header:
    raise DatasetError(f"{path}: no label column {label!r} (data.label_feature); columns: {columns}.")
  missing = [m for m in metadata if m not in header]
  if missing:
    raise DatasetError(
      f"{path}: data.metadata_features names {missing[0]!r}, which is not a column; columns: {columns}."
    )


def _read_csv(path: str, label: str, metadata: tuple[str, ...]) -> _Table:
  header, rows, lines = _read_csv_rows(path)
  _check_header(path, header, label, metadata)
  if not rows:
    raise DatasetError(f"{path}: no data rows after the header.")
  column = {c: i for i, c in enumerate(header)}
  feature_columns = [c for c in header if c != label and c != SPLIT_COLUMN and c not in metadata]
  if not feature_columns:
    raise DatasetError(
      f"{path}: no feature columns left besides the label, {SPLIT_COLUMN!r} and data.metadata_features."
    )

  def line(i: int) -> str:
    return f"{path} line {lines[i]}"

  cells = np.asarray([[row[column[c]] for c in feature_columns] for row in rows], dtype=str)
  inputs = _parse_numbers(cells.ravel().tolist())
  if inputs is None:
    for i, row in enumerate(rows):
      for c in feature_columns:
        if _parse_numbers([row[column[c]]]) is None:
          raise DatasetError(
            f"{line(i)}, column {c!r}: {row[column[c]]!r} is not a number (every column but the label "
            f"{label!r}, {SPLIT_COLUMN!r} and data.metadata_features is a numeric input)."
          )
  inputs = inputs.reshape(len(rows), len(feature_columns)).astype(np.float32)
  not_finite = np.argwhere(~np.isfinite(inputs))
  if not_finite.size:
    i, j = (int(v) for v in not_finite[0])
    c = feature_columns[j]
    raise DatasetError(f"{line(i)}, column {c!r}: {rows[i][column[c]]!r} is not a finite float32 number.")

  raw_labels = [row[column[label]].strip() for row in rows]
  for i, value in enumerate(raw_labels):
    if not value:
      raise DatasetError(f"{line(i)}, column {label!r}: empty label.")
  if all(_INT_RE.fullmatch(v) for v in raw_labels):
    labels, class_names = _int_labels_checked(np.asarray([int(v) for v in raw_labels]), line)
  else:
    if _parse_numbers(raw_labels) is not None:
      i = next(i for i, v in enumerate(raw_labels) if not _INT_RE.fullmatch(v))
      raise DatasetError(
        f"{line(i)}, column {label!r}: label {raw_labels[i]!r} is not a class (labels are integers 0..max "
        "or names; regression targets are not supported)."
      )
    labels, class_names = _string_labels(raw_labels)

  split_of_row = None
  if SPLIT_COLUMN in column:
    split_of_row = [row[column[SPLIT_COLUMN]].strip() for row in rows]
    for i, value in enumerate(split_of_row):
      _check_split_name(value, f"{line(i)}, column {SPLIT_COLUMN!r}")

  features = {INPUT_FEATURE: ("array", np.float32, (len(feature_columns),)), label: _class_spec(class_names)}
  columns = {INPUT_FEATURE: inputs, label: labels}
  for name in metadata:
    if name in features or name == PROVENANCE_FEATURE["csv"]:
      raise DatasetError(
        f"{path}: metadata column {name!r} has the name of a feature jaxflow stores; rename the column."
      )
    features[name], columns[name] = _metadata_column([row[column[name]] for row in rows])
  features[PROVENANCE_FEATURE["csv"]] = ("array", np.int64, ())
  columns[PROVENANCE_FEATURE["csv"]] = np.asarray(lines, np.int64)
  order = _split_order(split_of_row, len(rows))
  description = _describe(
    "csv",
    path,
    f"features = columns {', '.join(feature_columns)}; label column {label!r}, classes {', '.join(class_names)}; "
    + (
      "splits from the 'split' column, in file order."
      if split_of_row
      else f"all rows 'train' in the order np.random.default_rng({SHUFFLE_SEED}).permutation(n)."
    ),
  )
  return _Table(features, {s: _select(columns, rows_) for s, rows_ in order.items()}, description)


# --- NPZ ---------------------------------------------------------------------------------------------------


def _npz_array(archive: Any, path: str, key: str) -> np.ndarray:
  try:
    return archive[key]
  except ValueError as e:  # object arrays need pickle, which is never loaded from a user's file
    raise DatasetError(
      f"{path}: array {key!r} cannot be read without pickle ({e}); store numbers or strings."
    ) from None


def _read_npz(path: str, label: str, metadata: tuple[str, ...]) -> _Table:
  import zipfile

  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise DatasetError(f"{path}: not a readable NPZ file ({' '.join(str(e).split())}).") from None
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise DatasetError(f"{path}: holds a single array; expected an NPZ archive (np.savez(path, x=..., y=...)).")
  with archive:
    names = list(archive.files)
    listing = ", ".join(names) or "none"
    x_key = next((k for k in ("x", "features", "inputs") if k in names), None)
    y_key = next((k for k in (label, "y", "label") if k in names), None)
    if x_key is None:
      raise DatasetError(f"{path}: no input array 'x' (or 'features', 'inputs'); arrays: {listing}.")
    if y_key is None:
      raise DatasetError(f"{path}: no label array {label!r} (data.label_feature; or 'y', 'label'); arrays: {listing}.")
    missing = [m for m in metadata if m not in names]
    if missing:
      raise DatasetError(
        f"{path}: data.metadata_features names {missing[0]!r}, which is not an array; arrays: {listing}."
      )
    x = _npz_array(archive, path, x_key)
    y = _npz_array(archive, path, y_key)
    split = _npz_array(archive, path, SPLIT_COLUMN) if SPLIT_COLUMN in names else None
    extra = {m: _npz_array(archive, path, m) for m in metadata}

  def row(i: int) -> str:
    return f"{path} index {i}"

  if x.ndim == 0 or x.shape[0] == 0:
    raise DatasetError(f"{path}: array {x_key!r} holds no examples (shape {x.shape}).")
  n = x.shape[0]
  for key, array in ((y_key, y), *(((SPLIT_COLUMN, split),) if split is not None else ()), *extra.items()):
    if array.ndim == 0 or array.shape[0] != n:
      raise DatasetError(f"{path}: array {key!r} has shape {array.shape}, but {x_key!r} has {n} rows.")
  if x.dtype.kind not in "biuf":
    raise DatasetError(f"{path}: array {x_key!r} is {x.dtype}; inputs must be numbers.")
  if x.dtype.kind == "f":
    bad = np.flatnonzero(~np.isfinite(x.reshape(n, -1)).all(axis=1))
    if bad.size:
      raise DatasetError(f"{row(int(bad[0]))}: array {x_key!r} holds a value that is not a finite number.")
  inputs = x if x.dtype == np.uint8 else x.astype(np.float32)
  if inputs.ndim == 1:
    inputs = inputs[:, None]
  if inputs.dtype == np.float32 and not np.isfinite(inputs).all():
    i = int(np.flatnonzero(~np.isfinite(inputs.reshape(n, -1)).all(axis=1))[0])
    raise DatasetError(f"{row(i)}: array {x_key!r} holds a value too large for float32.")

  if y.ndim != 1:
    raise DatasetError(f"{path}: label array {y_key!r} has shape {y.shape}; expected [n] = ({n},).")
  if y.dtype.kind in "biu":
    labels, class_names = _int_labels_checked(y.astype(np.int64), row)
  elif y.dtype.kind in "US":
    labels, class_names = _string_labels([str(v) for v in y.astype(str)])
  elif y.dtype.kind != "f":
    raise DatasetError(f"{path}: label array {y_key!r} is {y.dtype}; labels are integers 0..max or strings.")
  else:
    whole = np.isfinite(y) & (y == np.round(y))
    i = int(np.flatnonzero(~whole)[0]) if not whole.all() else 0
    hint = "; cast with y.astype(int) if they are class ids" if whole.all() else ""
    raise DatasetError(
      f"{row(i)}: label {y[i].item()!r} in array {y_key!r} ({y.dtype}) is not a class (labels are integers 0..max "
      f"or strings; regression targets are not supported{hint})."
    )

  split_of_row = None
  if split is not None:
    if split.dtype.kind not in "US" or split.ndim != 1:
      raise DatasetError(f"{path}: array {SPLIT_COLUMN!r} is {split.dtype} {split.shape}; expected [n] strings.")
    split_of_row = [str(v) for v in split.astype(str)]
    for i, value in enumerate(split_of_row):
      _check_split_name(value, f"{row(i)}, array {SPLIT_COLUMN!r}")

  features = {INPUT_FEATURE: ("array", inputs.dtype, inputs.shape[1:]), label: _class_spec(class_names)}
  columns = {INPUT_FEATURE: inputs, label: labels}
  for name, array in extra.items():
    if name in features or name == PROVENANCE_FEATURE["npz"]:
      raise DatasetError(f"{path}: metadata array {name!r} has the name of a feature jaxflow stores; rename the array.")
    if array.dtype.kind in "US":
      if array.ndim != 1:
        raise DatasetError(f"{path}: metadata array {name!r} holds strings of shape {array.shape}; expected [n].")
      features[name], columns[name] = ("text",), [str(v) for v in array.astype(str)]
    elif array.dtype.kind in "biuf":
      features[name], columns[name] = ("array", array.dtype, array.shape[1:]), array
    else:
      raise DatasetError(f"{path}: metadata array {name!r} is {array.dtype}; expected numbers or strings.")
  features[PROVENANCE_FEATURE["npz"]] = ("array", np.int64, ())
  columns[PROVENANCE_FEATURE["npz"]] = np.arange(n, dtype=np.int64)
  order = _split_order(split_of_row, n)
  description = _describe(
    "npz",
    path,
    f"features = array {x_key!r}, label array {y_key!r}, classes {', '.join(class_names)}; "
    + (
      "splits from the 'split' array, in array order."
      if split_of_row
      else f"all rows 'train' in the order np.random.default_rng({SHUFFLE_SEED}).permutation(n)."
    ),
  )
  return _Table(features, {s: _select(columns, rows_) for s, rows_ in order.items()}, description)
