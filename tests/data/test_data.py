"""jaxflow.data: the digits tfds builder and whole-split loading, all without TensorFlow or network."""

from __future__ import annotations

import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from jaxflow import data
from jaxflow.data import loading
from tests.conftest import fixed_mock_getitems


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> str:
  """A data dir with digits prepared once for the whole session."""
  data_dir = str(tmp_path_factory.mktemp("tfds"))
  data.dataset_spec("digits", data_dir=data_dir)
  return data_dir


@pytest.fixture(scope="session")
def digits_splits(digits_dir) -> dict[str, data.Split]:
  return {split: data.load_split("digits", split, data_dir=digits_dir) for split in ("train", "test")}


def sklearn_split() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """sklearn's digits as pixel/16 in [0, 1], [n, 8, 8], after the split the builder promises."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  bunch = load_digits()
  x_tr, x_te, y_tr, y_te = train_test_split(
    bunch.images / 16.0,
    bunch.target,
    test_size=0.2,
    stratify=bunch.target,
    random_state=0,
  )
  return {"train": (x_tr, y_tr), "test": (x_te, y_te)}


def test_import_is_light():
  """Importing jaxflow.data pulls in neither TensorFlow nor tfds (checked in a fresh interpreter)."""
  code = "import sys, jaxflow.data; print('tensorflow' in sys.modules, 'tensorflow_datasets' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.split() == ["False", "False"]


def test_digits_spec(digits_dir):
  spec = data.dataset_spec("digits", data_dir=digits_dir)
  assert spec == data.FeatureSpec(
    name="digits",
    input_feature="image",
    label_feature="label",
    input_shape=(8, 8, 1),
    input_dtype="uint8",
    num_classes=10,
    split_sizes={"train": 1437, "test": 360},
    feature_names=("image", "label"),
    class_names=tuple(str(c) for c in range(10)),
  )
  # Prepared as array_record, the format tfds.data_source reads without TensorFlow.
  files = sorted(os.listdir(os.path.join(digits_dir, "digits", "1.0.0")))
  assert "digits-train.array_record-00000-of-00001" in files
  assert "digits-test.array_record-00000-of-00001" in files


def test_digits_splits_shapes_ranges_classes(digits_splits):
  for split, size in (("train", 1437), ("test", 360)):
    loaded = digits_splits[split]
    assert loaded.inputs.shape == (size, 8, 8, 1)
    assert loaded.inputs.dtype == np.float32
    assert loaded.labels.shape == (size,)
    assert loaded.labels.dtype == np.int32
    assert loaded.inputs.min() == 0.0 and loaded.inputs.max() == 1.0
    np.testing.assert_array_equal(np.unique(loaded.labels), np.arange(10))
  assert "tensorflow" not in sys.modules


def test_digits_equals_sklearn_after_the_same_split(digits_splits):
  for split, (pixels, labels) in sklearn_split().items():
    loaded = digits_splits[split]
    np.testing.assert_array_equal(loaded.labels, labels)
    np.testing.assert_allclose(loaded.inputs[..., 0], pixels, rtol=0, atol=1 / 255 + 1e-6)


def test_digits_prepare_is_deterministic(digits_splits, tmp_path):
  again = {split: data.load_split("digits", split, data_dir=str(tmp_path)) for split in ("train", "test")}
  for split in ("train", "test"):
    np.testing.assert_array_equal(again[split].inputs, digits_splits[split].inputs)
    np.testing.assert_array_equal(again[split].labels, digits_splits[split].labels)


def test_split_slicing(digits_dir, digits_splits):
  head = data.load_split("digits", "train[:100]", data_dir=digits_dir)
  np.testing.assert_array_equal(head.inputs, digits_splits["train"].inputs[:100])
  both = data.load_split("digits", "train+test", data_dir=digits_dir)
  assert both.labels.shape == (1797,)


def test_resolve_data_dir_precedence(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  monkeypatch.setenv(data.DEFAULT_DATA_DIR_ENV, str(tmp_path / "env"))
  assert data.resolve_data_dir(str(tmp_path / "arg")) == str(tmp_path / "arg")
  assert data.resolve_data_dir(None) == str(tmp_path / "env")
  monkeypatch.delenv(data.DEFAULT_DATA_DIR_ENV)
  assert data.resolve_data_dir(None) == str(tmp_path / "xdg" / "jaxflow" / "tensorflow_datasets")
  monkeypatch.delenv("XDG_CACHE_HOME")
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  assert data.resolve_data_dir("") == str(tmp_path / "home" / ".cache" / "jaxflow" / "tensorflow_datasets")


def test_unknown_dataset_error(tmp_path):
  with pytest.raises(data.DatasetError) as info:
    data.dataset_spec("no_such_dataset", data_dir=str(tmp_path))
  message = str(info.value)
  assert "data.name='no_such_dataset'" in message
  assert "'digits'" in message and "tfds.list_builders()" in message
  assert "\n" not in message


def test_unprepared_tfds_dataset_is_not_downloaded(tmp_path):
  with pytest.raises(data.DatasetError, match=r"data.name='mnist' is not prepared .*tfds build mnist"):
    data.dataset_spec("mnist", data_dir=str(tmp_path))
  assert not (tmp_path / "downloads").exists()


def test_unknown_split_error(digits_dir):
  with pytest.raises(data.DatasetError) as info:
    data.load_split("digits", "validation", data_dir=digits_dir, split_field="data.eval_split")
  assert str(info.value) == (
    "data.eval_split='validation' is not a split of dataset 'digits'; it has: train, test "
    "(tfds slices such as 'train[:90%]' work too)."
  )


SYNTAX = "allowed: a split name, NAME[FROM:TO] with FROM and TO example indices or percents in [-100%, 100%]"


@pytest.mark.parametrize(
  "split, says",
  [
    (
      "train[:0%]",
      "data.train_split='train[:0%]' selects no examples (split 'train' of 'digits' has 1437); "
      "allowed: a slice that selects at least one example, e.g. 'train[:80%]'.",
    ),
    ("train[5:5]", "data.train_split='train[5:5]' selects no examples"),
    ("train[50%:10%]", "data.train_split='train[50%:10%]' selects no examples"),
    ("train[:10]+test[:0]", "data.train_split='train[:10]+test[:0]' (its part 'test[:0]') selects no examples"),
    ("train[:80%", f"data.train_split='train[:80%' is not a valid split of dataset 'digits'; {SYNTAX}"),
    ("train[::2]", f"data.train_split='train[::2]' is not a valid split of dataset 'digits'; {SYNTAX}"),
    ("train[:101%]", f"data.train_split='train[:101%]' is not a valid split of dataset 'digits'; {SYNTAX}"),
    (
      "train[:5000]",
      "data.train_split='train[:5000]' reaches beyond split 'train' of dataset 'digits', which has 1437",
    ),
    ("train+", "data.train_split='train+' is not a split of dataset 'digits'; it has: train, test"),
  ],
)
def test_a_bad_split_spec_is_one_line_naming_the_field_and_the_syntax(digits_dir, split, says):
  for read in (loading.split_size, data.load_split):  # the size (from metadata) and the load check alike
    with pytest.raises(data.DatasetError) as info:
      read("digits", split, data_dir=digits_dir, split_field="data.train_split")
    assert str(info.value).startswith(says) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize("split", ["train", "train[:80%]", "train[-10%:]", "train[100:200]+test[:10]", "train + test"])
def test_split_size_is_what_load_split_loads(digits_dir, split):
  size = loading.split_size("digits", split, data_dir=digits_dir)
  assert size == len(data.load_split("digits", split, data_dir=digits_dir).labels) > 0


@pytest.mark.parametrize("field", ["input_feature", "label_feature"])
def test_unknown_feature_error(digits_dir, field):
  with pytest.raises(data.DatasetError) as info:
    data.dataset_spec("digits", data_dir=digits_dir, **{field: "pixels"})
  assert str(info.value) == f"data.{field}='pixels' is not a feature of dataset 'digits'; it has: image, label."


def write_mnist_metadata(data_dir: str) -> None:
  """mnist's dataset_info.json/features.json as `tfds build` would leave them, with no records.

  `tfds.testing.mock_data` finds its real metadata only in a source checkout (the wheel has no
  testing/metadata); without it the splits are unknown, so the test writes the metadata itself.
  """
  import tensorflow_datasets as tfds

  builder = tfds.builder("mnist", data_dir=data_dir, file_format="array_record")
  sizes = {"train": 60000, "test": 10000}
  infos = [
    tfds.core.SplitInfo(name=n, shard_lengths=[k], num_bytes=0, filename_template=None) for n, k in sizes.items()
  ]
  builder.info.set_splits(tfds.core.SplitDict(infos))
  builder.data_path.mkdir(parents=True)
  builder.info.write_to_directory(builder.data_path)


def test_mnist_mock_loads_through_the_same_api(tmp_path):
  import tensorflow_datasets as tfds
  from tensorflow_datasets.testing import mocking

  metadata_dir = str(tmp_path / "metadata")
  write_mnist_metadata(metadata_dir)
  with (
    tfds.testing.mock_data(
      num_examples=12,
      data_dir=metadata_dir,
      policy=tfds.testing.MockPolicy.USE_FILES,
    ),
    mock.patch.object(mocking, "_getitems", fixed_mock_getitems),
  ):
    spec = data.dataset_spec("mnist", data_dir=str(tmp_path / "ignored"))
    loaded = data.load_split("mnist", "train", data_dir=str(tmp_path / "ignored"))
  assert spec.input_shape == (28, 28, 1)
  assert spec.input_dtype == "uint8"
  assert spec.num_classes == 10
  assert spec.split_sizes == {"train": 60000, "test": 10000}
  assert loaded.inputs.shape == (12, 28, 28, 1) and loaded.inputs.dtype == np.float32
  assert 0.0 <= loaded.inputs.min() and loaded.inputs.max() <= 1.0 and loaded.inputs.max() > 0.5
  assert loaded.labels.dtype == np.int32 and set(loaded.labels.tolist()) <= set(range(10))
  assert "tensorflow" not in sys.modules
