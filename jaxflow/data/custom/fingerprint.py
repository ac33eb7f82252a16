"""Identity of a user's source: the name of its prepared copy, and dropping the copies of older versions.

The config name `<kind>_<stem>_<path hash>_<source hash>_<options hash>` is derived from the absolute
path, the source (a CSV's or NPZ's bytes, sha256; a folder's listing with every file's size and
mtime_ns, so that a large folder isn't read just to be looked up), and the options that shape the
conversion (label column, metadata columns). A source that changed gets a new name and is converted
again; the copies of earlier versions of the same path are deleted once the new one is written. A
folder edited without changing any size or mtime (a copy with preserved times of same-sized files)
would not be noticed: `touch` the folder's files in that case.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence

from jaxflow.data.custom.folder import visible
from jaxflow.data.custom.parsed import INPUT_FEATURE, PROVENANCE_FEATURE

# Part of every source hash: bump it when the conversion changes, so no copy made by older code is served.
FORMAT_VERSION = 1


def _sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def _folder_listing_digest(path: str) -> str:
  """sha256 of the names, sizes and mtimes under `path`, three levels deep (PATH/split/class/file)."""
  digest = hashlib.sha256()

  def walk(folder: str, rel: str, depth: int) -> None:
    with os.scandir(folder) as it:
      entries = visible(list(it))
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


def conversion_options(kind: str, label_feature: str, metadata_features: Sequence[str]) -> tuple:
  """What besides the source shapes a conversion: for csv/npz, the label and the metadata columns.

  Names that are features of every conversion (the input, the label, the provenance feature) are
  features already, not columns to look for in the source.
  """
  if kind == "folder":
    return ()
  builtin = {INPUT_FEATURE, label_feature, PROVENANCE_FEATURE[kind]}
  columns = tuple(sorted({m for m in metadata_features if m not in builtin}))
  return (label_feature, columns)


def config_name(kind: str, path: str, options: tuple) -> str:
  """The prepared copy's name for source `path` as it is now, converted with `options`."""
  stem = os.path.splitext(os.path.basename(path))[0] if kind != "folder" else os.path.basename(path)
  slug = re.sub(r"[^a-z0-9]+", "_", stem.lower()).strip("_")[:32] or "data"
  path_hash = hashlib.sha256(path.encode()).hexdigest()[:8]
  content = _folder_listing_digest(path) if kind == "folder" else _sha256_file(path)
  source_hash = hashlib.sha256(f"{FORMAT_VERSION} {content}".encode()).hexdigest()[:12]
  options_hash = hashlib.sha256(repr(options).encode()).hexdigest()[:6]
  return f"{kind}_{slug}_{path_hash}_{source_hash}_{options_hash}"


def remove_earlier_versions(root: str, config_name: str) -> None:
  """Deletes the copies of the same path made from earlier contents (same options or not)."""
  kind_slug_path, source_hash, _ = config_name.rsplit("_", 2)
  for entry in os.listdir(root):
    if entry.startswith(f"{kind_slug_path}_") and entry.rsplit("_", 2)[1] != source_hash:
      shutil.rmtree(os.path.join(root, entry), ignore_errors=True)
