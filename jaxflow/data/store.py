"""Where prepared datasets live and how they are written: the data dir, the array_record format, the
quiet preparation (by any number of processes at once), and the one error type for a dataset that isn't there.

Every reader of tfds data in jaxflow (`loading` for named and shipped datasets, `custom` for a user's
own files, `graph_builders` for generated graphs) shares these, so they sit below all of them: none of
those modules imports another for them.

tensorflow_datasets is imported inside `_prepare_quietly` only: importing this module stays cheap (tfds
alone takes ~0.5 s) for the commands that never touch data.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable
from typing import Any

DEFAULT_DATA_DIR_ENV = "JAXFLOW_DATA_DIR"

# Without it tfds writes tfrecord, which needs TensorFlow to write and which `tfds.data_source` can't read.
FILE_FORMAT = "array_record"


class DatasetError(ValueError):
  """A dataset, split or feature that the config names and that isn't there; one line, for humans."""


def resolve_data_dir(data_dir: str | None) -> str:
  """The data dir to use: `data_dir` (the config) if set, else $JAXFLOW_DATA_DIR, else
  $XDG_CACHE_HOME/jaxflow/tensorflow_datasets (XDG_CACHE_HOME defaulting to ~/.cache).

  jaxflow keeps its own default rather than tfds' ~/tensorflow_datasets so that prepared data lands
  where caches belong; an empty string counts as unset.
  """
  if data_dir:
    return os.path.expanduser(data_dir)
  if os.environ.get(DEFAULT_DATA_DIR_ENV):
    return os.path.expanduser(os.environ[DEFAULT_DATA_DIR_ENV])
  cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
  return os.path.join(os.path.expanduser(cache_home), "jaxflow", "tensorflow_datasets")


def prepare_once(make_builder: Callable[[], Any], name: str, data_dir: str, reason: str = "first use only") -> Any:
  """`make_builder()`'s tfds builder with its data prepared: by this process when nobody had, else by
  whichever process renamed its copy into place first.

  Several processes may prepare one dataset at once: the processes of a multi-host job, two `jaxflow train`
  in a fresh data dir, pytest-xdist workers. tfds writes each copy in a folder of its own and renames it into
  place at the end; the others' renames then fail (FileExistsError, or ENOTEMPTY's OSError), which used to end
  those processes (and leave a multi-host job's winner waiting for them at its first collective). A process
  that lost reads the winner's copy, through a new builder: its own describes the folder it wrote, now gone.
  Any other OSError (a full disk, a data dir that cannot be one) is a one-line DatasetError naming it.

  A builder made just before another process's copy was renamed into place finds that copy (is_prepared, or
  tfds's download_and_prepare reusing it) but read no info from it: no splits, every read then fails. It is
  made again, from the copy.
  """
  builder = make_builder()
  if not builder.is_prepared():
    try:
      _prepare_quietly(builder, name, data_dir, reason)
    except OSError as e:
      builder = make_builder()
      if not builder.is_prepared():
        raise DatasetError(f"dataset {name!r} could not be prepared in data_dir={data_dir!r}: {e}") from e
  return builder if builder.info.splits else make_builder()


def _prepare_quietly(builder: Any, name: str, data_dir: str, reason: str) -> None:
  """Prepares tfds builder `builder` with one line instead of tfds's progress bars and banners (they
  would bury a CLI's error or result).

  tfds prints its two banners with termcolor to stdout whatever the logging level; they are dropped
  (stdout is swallowed while preparing), errors still propagate as exceptions.
  """
  # Deferred: tensorflow_datasets takes ~0.5 s to import, and only preparing needs it here.
  from tensorflow_datasets.core.utils import tqdm_utils

  print(f"jaxflow: preparing dataset {name!r} in {data_dir} ({reason})", file=sys.stderr)
  was_active = tqdm_utils._active  # tfds keeps this switch module-global; restore it afterwards
  tqdm_utils.display_progress_bar(False)
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      builder.download_and_prepare()
  finally:
    tqdm_utils.display_progress_bar(was_active)
