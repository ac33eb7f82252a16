"""A run after the first reads its dataset with numpy alone (jaxflow.data.decoded): the same spec and arrays as
the tfds path, no tensorflow_datasets import, and the tfds path again whenever the dataset was prepared again
or the user's source changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np

from jaxflow.data import decoded, loading
from tests.conftest import ROOT

FEATURES = ("image", "label", ())


def _digits_dir(data_dir) -> str:
  return os.path.join(str(data_dir), "digits", loading.SHIPPED_VERSIONS["digits"])


def _prepared_copy(tmp_path) -> str:
  """A data dir of its own holding the session's prepared digits (copied: preparing again costs seconds),
  without what earlier runs kept beside it."""
  loading.dataset_spec("digits", data_dir=None)  # prepared in the session's data dir, once
  data_dir = str(tmp_path / "data")
  shutil.copytree(os.path.join(loading.resolve_data_dir(None), "digits"), os.path.join(data_dir, "digits"))
  shutil.rmtree(os.path.join(_digits_dir(data_dir), decoded.DECODED_DIR), ignore_errors=True)
  return data_dir


def test_kept_spec_and_arrays_equal_the_tfds_path(tmp_path):
  data_dir = _prepared_copy(tmp_path)
  spec, builder = loading._spec_and_builder("digits", data_dir, "image", "label", (), _digits_dir(data_dir))
  assert os.path.samefile(str(builder.data_dir), _digits_dir(data_dir))  # where the fast path looks
  through_tfds = loading.load_split("digits", "test", data_dir=data_dir)  # decodes and keeps the arrays
  folder, kept = loading._kept("digits", data_dir, "image", "label", ())
  assert kept is not None and kept == spec  # every field, tuples included
  again = loading._read_decoded(folder, "test", "image", "label", ())
  np.testing.assert_array_equal(again.inputs, through_tfds.inputs)
  np.testing.assert_array_equal(again.labels, through_tfds.labels)
  assert loading.split_size("digits", "test", data_dir=data_dir) == 360
  # Preparing the dataset again writes a new dataset_info.json: the kept spec no longer counts.
  info = os.path.join(_digits_dir(data_dir), decoded.INFO_FILE)
  stat = os.stat(info)
  os.utime(info, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
  assert loading._kept("digits", data_dir, "image", "label", ())[1] is None
  assert loading.dataset_spec("digits", data_dir=data_dir) == spec  # through tfds, which keeps it again
  assert loading._kept("digits", data_dir, "image", "label", ())[1] == spec
  # ... nor the arrays kept for the old preparation (a folder copied over the old one keeps .jaxflow_decoded/).
  assert loading._read_decoded(folder, "test", "image", "label", ()) is None
  assert np.array_equal(loading.load_split("digits", "test", data_dir=data_dir).labels, through_tfds.labels)
  assert loading._read_decoded(folder, "test", "image", "label", ()) is not None  # decoded and kept again
  # A damaged npz (a truncated write) is decoded again, not an error.
  arrays = decoded.arrays_path(_digits_dir(data_dir), "test", "image", "label", ())
  with open(arrays, "r+b") as f:
    f.truncate(100)
  assert loading._read_decoded(folder, "test", "image", "label", ()) is None
  assert np.array_equal(loading.load_split("digits", "test", data_dir=data_dir).inputs, through_tfds.inputs)
  # A damaged or foreign spec file is not trusted.
  spec_file = decoded._spec_path(_digits_dir(data_dir), *FEATURES)
  with open(spec_file, "w") as f:
    json.dump({"info": decoded.info_stamp(_digits_dir(data_dir)), "spec": {"name": "digits", "extra": 1}}, f)
  assert loading._kept("digits", data_dir, "image", "label", ())[1] is None
  with open(spec_file, "w") as f:
    f.write("{not json")
  assert loading._kept("digits", data_dir, "image", "label", ())[1] is None


def test_a_changed_source_is_converted_again(tmp_path):
  data_dir, source = str(tmp_path / "data"), tmp_path / "rows.npz"
  x, y = np.arange(40, dtype=np.float32).reshape(20, 2), np.arange(20) % 2
  np.savez(source, x=x, y=y)
  name = f"npz:{source}"
  first = loading.load_split(name, "train", data_dir=data_dir, input_feature="features")
  assert loading._kept(name, data_dir, "features", "label", ())[1] is not None
  np.savez(source, x=x[:10] + 100, y=y[:10])  # another source: another prepared folder, nothing kept there yet
  assert loading._kept(name, data_dir, "features", "label", ())[1] is None
  second = loading.load_split(name, "train", data_dir=data_dir, input_feature="features")
  assert len(first.labels) == 20 and len(second.labels) == 10 and second.inputs.min() >= 100


def test_a_second_process_reads_digits_without_tensorflow_datasets(tmp_path):
  data_dir = _prepared_copy(tmp_path)
  first = loading.load_split("digits", "train", data_dir=data_dir)
  code = (
    "import sys, json; from jaxflow.data import loading\n"
    f"s = loading.load_split('digits', 'train', data_dir={data_dir!r})\n"
    f"spec = loading.dataset_spec('digits', data_dir={data_dir!r})\n"
    "print(json.dumps(['tensorflow_datasets' in sys.modules, float(s.inputs.sum()), int(s.labels.sum()), "
    "spec.split_sizes]))"
  )
  done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
  assert done.returncode == 0, done.stderr
  imported, inputs_sum, labels_sum, sizes = json.loads(done.stdout.strip().splitlines()[-1])
  assert imported is False
  assert inputs_sum == float(first.inputs.sum()) and labels_sum == int(first.labels.sum())
  assert sizes == {"train": 1437, "test": 360}
