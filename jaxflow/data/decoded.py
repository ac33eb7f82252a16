"""What a run keeps beside a prepared dataset so the next run reads it with numpy alone.

Every run used to import tensorflow_datasets (~0.4 s of CPU here), build the tfds builder from its
dataset_info.json and decode every example (a PNG per digits image, ~0.5 s) before its first step. Both
results are kept in the prepared dataset's own versioned folder (`.jaxflow_decoded/`):

- the decoded arrays of a split (`<key>.npz`, numbers only, read with allow_pickle=False: a dataset with
  ragged metadata is not kept), and
- the FeatureSpec the builder's metadata gave (`spec-<key>.json`).

Both are stamped with dataset_info.json's size and modification time as they were before the dataset was read,
and written only if the stamp is unchanged when they are written: a dataset prepared again (a new
dataset_info.json, also one copied over the old folder) is read through tfds again, and a process that read the
old version cannot leave its arrays or spec under the new one's stamp.

The folder is found without tfds: a shipped dataset is prepared under `<data_dir>/<name>/<version>`, a
user's source under `custom.prepared_dir` (whose name changes when the source does). Anything else (a
dataset tfds downloaded, a name with a version or config, tfds' split slicing) takes the tfds path, and
anything unreadable here counts as not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence

import numpy as np

DECODED_DIR = ".jaxflow_decoded"
INFO_FILE = "dataset_info.json"


def _key(*parts) -> str:
  return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:20]


def arrays_path(builder_dir: str, split: str, input_feature: str, label_feature: str, metadata_features) -> str:
  key = _key(split, input_feature, label_feature, list(metadata_features))
  return os.path.join(str(builder_dir), DECODED_DIR, key + ".npz")


def read_arrays(path: str, builder_dir: str, metadata_features) -> tuple[np.ndarray, np.ndarray, dict] | None:
  """(inputs as stored, labels, metadata), or None when not kept, kept for another preparation of the dataset,
  or damaged (decode again)."""
  try:
    with np.load(path, allow_pickle=False) as stored:
      if stored["info_stamp"].tolist() != info_stamp(builder_dir):
        return None
      metadata = {feature: stored[f"metadata/{feature}"] for feature in metadata_features}
      return stored["inputs"], stored["labels"], metadata
  except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
    return None


def write_arrays(path: str, stamp: list[int] | None, inputs: np.ndarray, labels: np.ndarray, metadata: dict) -> None:
  """Keeps the arrays decoded from the dataset as it was at `stamp` (info_stamp taken before reading it)."""
  if inputs.dtype == object or any(values.dtype == object for values in metadata.values()):
    return
  arrays = {"inputs": inputs, "labels": labels, **{f"metadata/{k}": v for k, v in metadata.items()}}
  _write_if_unchanged(path, stamp, lambda f: np.savez(f, info_stamp=np.asarray(stamp, np.int64), **arrays))


def _write_if_unchanged(path: str, stamp: list[int] | None, write) -> None:
  """`write(file)` into a temporary file beside `path`, renamed onto it while the dataset's stamp is still
  `stamp`; nothing when the dataset was prepared again meanwhile, or the data dir is read-only."""
  folder = os.path.dirname(path)
  if stamp is None or stamp != info_stamp(os.path.dirname(folder)):
    return
  try:
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
  except OSError:
    return
  try:
    with os.fdopen(fd, "wb") as f:
      write(f)
    if stamp == info_stamp(os.path.dirname(folder)):
      os.replace(tmp, path)
  except OSError:
    pass
  finally:
    if os.path.exists(tmp):
      os.remove(tmp)


def _spec_path(builder_dir: str, input_feature: str, label_feature: str, metadata_features) -> str:
  key = _key("spec", input_feature, label_feature, list(metadata_features))
  return os.path.join(str(builder_dir), DECODED_DIR, f"spec-{key}.json")


def info_stamp(builder_dir: str) -> list[int] | None:
  """dataset_info.json's [size, mtime_ns]: what says which preparation of the dataset is in the folder."""
  try:
    info = os.stat(os.path.join(str(builder_dir), INFO_FILE))
  except OSError:
    return None
  return [info.st_size, info.st_mtime_ns]


def write_spec(builder_dir: str, features: tuple[str, str, Sequence[str]], spec_fields: dict, stamp) -> None:
  """Keeps a FeatureSpec's fields (dataclasses.asdict) read from the dataset as it was at `stamp`;
  `features` = (input, label, metadata)."""
  text = json.dumps({"info": stamp, "spec": spec_fields}).encode()
  _write_if_unchanged(_spec_path(builder_dir, *features), stamp, lambda f: f.write(text))


def read_spec(builder_dir: str, features: tuple[str, str, Sequence[str]]) -> dict | None:
  """The kept FeatureSpec fields, or None when not kept or the dataset was prepared again since."""
  try:
    with open(_spec_path(builder_dir, *features)) as f:
      kept = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(kept, dict) or kept.get("info") != info_stamp(builder_dir):
    return None
  return kept.get("spec")
