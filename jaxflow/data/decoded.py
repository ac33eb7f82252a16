"""What a run keeps beside a prepared dataset so the next run reads it with numpy alone.

Every run used to import tensorflow_datasets (~0.4 s of CPU here), build the tfds builder from its
dataset_info.json and decode every example (a PNG per digits image, ~0.5 s) before its first step. Both
results are kept in the prepared dataset's own versioned folder (`.jaxflow_decoded/`):

- the decoded arrays of a split (`<key>.npz`, numbers only, read with allow_pickle=False: a dataset with
  ragged metadata is not kept), and
- the FeatureSpec the builder's metadata gave (`spec-<key>.json`), stamped with dataset_info.json's size and
  modification time, so a dataset prepared again (a new dataset_info.json) is read through tfds again.

The folder is found without tfds: a shipped dataset is prepared under `<data_dir>/<name>/<version>`, a
user's source under `custom.prepared_dir` (whose name changes when the source does). Anything else (a
dataset tfds downloaded, a name with a version or config, tfds' split slicing) takes the tfds path, and
anything unreadable here counts as not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence

import numpy as np

DECODED_DIR = ".jaxflow_decoded"
INFO_FILE = "dataset_info.json"


def _key(*parts) -> str:
  return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:20]


def arrays_path(builder_dir: str, split: str, input_feature: str, label_feature: str, metadata_features) -> str:
  key = _key(split, input_feature, label_feature, list(metadata_features))
  return os.path.join(str(builder_dir), DECODED_DIR, key + ".npz")


def read_arrays(path: str, metadata_features) -> tuple[np.ndarray, np.ndarray, dict] | None:
  """(inputs as stored, labels, metadata) or None when not kept (or damaged: decode again)."""
  try:
    with np.load(path, allow_pickle=False) as stored:
      metadata = {feature: stored[f"metadata/{feature}"] for feature in metadata_features}
      return stored["inputs"], stored["labels"], metadata
  except (OSError, KeyError, ValueError):
    return None


def write_arrays(path: str, inputs: np.ndarray, labels: np.ndarray, metadata: dict) -> None:
  if inputs.dtype == object or any(values.dtype == object for values in metadata.values()):
    return
  arrays = {"inputs": inputs, "labels": labels, **{f"metadata/{k}": v for k, v in metadata.items()}}
  _write_atomically(path, lambda tmp: np.savez(tmp, **arrays), ".npz")


def _write_atomically(path: str, write, suffix: str) -> None:
  tmp = f"{path}.{os.getpid()}.tmp{suffix}"
  try:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    write(tmp)
    os.replace(tmp, path)
  except OSError:  # a read-only data dir: nothing kept, nothing lost
    if os.path.exists(tmp):
      os.remove(tmp)


def _spec_path(builder_dir: str, input_feature: str, label_feature: str, metadata_features) -> str:
  key = _key("spec", input_feature, label_feature, list(metadata_features))
  return os.path.join(str(builder_dir), DECODED_DIR, f"spec-{key}.json")


def _info_stamp(builder_dir: str) -> list[int] | None:
  try:
    info = os.stat(os.path.join(str(builder_dir), INFO_FILE))
  except OSError:
    return None
  return [info.st_size, info.st_mtime_ns]


def write_spec(builder_dir: str, features: tuple[str, str, Sequence[str]], spec_fields: dict) -> None:
  """Keeps a FeatureSpec's fields (dataclasses.asdict) for `read_spec`; `features` = (input, label, metadata)."""
  stamp = _info_stamp(builder_dir)
  if stamp is None:
    return
  text = json.dumps({"info": stamp, "spec": spec_fields})

  def write(tmp: str) -> None:
    with open(tmp, "w") as f:
      f.write(text)

  _write_atomically(_spec_path(builder_dir, *features), write, ".json")


def read_spec(builder_dir: str, features: tuple[str, str, Sequence[str]]) -> dict | None:
  """The kept FeatureSpec fields, or None when not kept or the dataset was prepared again since."""
  try:
    with open(_spec_path(builder_dir, *features)) as f:
      kept = json.load(f)
  except (OSError, ValueError):
    return None
  if not isinstance(kept, dict) or kept.get("info") != _info_stamp(builder_dir):
    return None
  return kept.get("spec")
