"""data.adapt: resize, grayscale and relabel, alone and through validation and training."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

import jaxflow
from jaxflow import data
from jaxflow.config import ConfigError
from jaxflow.data import adapt
from jaxflow.run.validate import validate
from tests.conftest import config_path, fixed_mock_getitems, merge_overrides

TINY = ["model.widths=(32,)", "train.batch_size=64", "train.epochs=2", "checkpoint.every_epochs=0"]


def digits(*overrides):
  return jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*TINY, *overrides))


def test_relabel_merges_and_drops():
  a = adapt.Adaptation(relabel=(0, 0, 1, -1))
  keep, labels = a.labels(np.array([0, 1, 2, 3, 2, 0]))
  assert keep.tolist() == [True, True, True, False, True, True]
  assert labels.tolist() == [0, 0, 1, 1, 0]
  assert a.num_classes(4) == 2


def test_resize_keeps_a_constant_image_constant_and_grayscale_weights():
  images = np.full((3, 28, 28, 1), 0.25, np.float32)
  small = adapt.Adaptation(resize=(8, 8)).inputs(images)
  assert small.shape == (3, 8, 8, 1)
  np.testing.assert_allclose(small, 0.25, atol=1e-6)
  rgb = np.zeros((1, 2, 2, 3), np.float32)
  rgb[0, 0, 0] = (1, 0, 0)
  rgb[0, 1, 1] = (1, 1, 1)
  gray = adapt.Adaptation(grayscale=True).inputs(rgb)
  assert gray.shape == (1, 2, 2, 1)
  assert gray[0, 0, 0, 0] == pytest.approx(0.299) and gray[0, 1, 1, 0] == pytest.approx(1.0) and gray[0, 0, 1, 0] == 0


def test_apply_filters_metadata_rows_with_the_examples():
  split = data.Split(
    inputs=np.zeros((4, 2, 2, 1), np.float32),
    labels=np.array([0, 1, 2, 1], np.int32),
    metadata={"daylight": np.array(["d", "n", "d", "n"])},
  )
  out = adapt.apply(split, adapt.Adaptation(relabel=(0, -1, 1)))
  assert (
    out.labels.tolist() == [0, 1]
    and out.metadata["daylight"].tolist() == ["d", "d"]
    and out.inputs.shape == (2, 2, 2, 1)
  )


def test_adapted_problem_is_checked_against_the_adapted_dataset():
  problem = validate(
    digits(
      "data.adapt.resize=(4, 4)", "problem.input_shape=(4, 4, 1)", "data.adapt.relabel=(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)"
    )
  )
  assert problem.input_shape == (4, 4, 1) and problem.num_classes == 2 and problem.output_dim == 2
  assert problem.train_size == 1437  # merged, nothing dropped
  dropped = validate(digits("data.adapt.relabel=(0, 1, 2, 3, 4, -1, -1, -1, -1, -1)"))
  assert dropped.num_classes == 5 and dropped.train_size == digits_0_to_4_in_train()


def digits_0_to_4_in_train() -> int:
  """Counted from sklearn's digits through the split jaxflow documents (stratified 80/20, random_state=0):
  721 of the 1437 training images, not read back from jaxflow."""
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split

  labels = load_digits().target
  train, _ = train_test_split(labels, test_size=0.2, stratify=labels, random_state=0)
  assert len(train) == 1437
  return int(np.sum(train < 5))


@pytest.mark.parametrize(
  "overrides, says",
  [
    (["data.adapt.relabel=(0, 1)"], "config.data.adapt.relabel has 2 entries; 'digits' has 10 classes"),
    (["data.adapt.relabel=(0, 2, 0, 2, 0, 2, 0, 2, 0, 2)"], "leaves new label(s) [1] empty"),
    (["data.adapt.relabel=(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1)"], "drops every class"),
    (["data.adapt.resize=(0, 4)"], "config.data.adapt.resize=(0, 4) must be (height, width)"),
    (
      ["problem.input_shape=(8, 8, 1)", "data.adapt.resize=(4, 4)"],
      "config.problem.input_shape=(8, 8, 1) does not fit",
    ),
    (["data.name=adding"], "config.data.adapt is set, but 'adding'"),
  ],
)
def test_bad_adaptation_is_a_one_line_error(overrides, says):
  config = digits(*overrides)
  if "data.name=adding" in overrides:
    config = jaxflow.load_config(config_path("adding_rnn.py"), ["data.adapt.grayscale=True"])
  with pytest.raises(ConfigError) as info:
    validate(config)
  assert says in str(info.value) and "\n" not in str(info.value)


def test_training_on_merged_and_resized_digits(tmp_path):
  """Even vs odd digits at 4x4: far above the 0.5 of chance even so."""
  summary = jaxflow.train(
    digits("data.adapt.resize=(4, 4)", "data.adapt.relabel=(0, 1, 0, 1, 0, 1, 0, 1, 0, 1)", "train.epochs=6"),
    str(tmp_path),
    quiet=True,
  )
  assert summary["final"]["confusion"] and np.array(summary["final"]["confusion"]).shape == (2, 2)
  assert summary["final"]["eval"]["accuracy"] > 0.75


def write_mnist_metadata(data_dir: str, sizes: dict[str, int]) -> None:
  import tensorflow_datasets as tfds

  builder = tfds.builder("mnist", data_dir=data_dir, file_format="array_record")
  infos = [
    tfds.core.SplitInfo(name=n, shard_lengths=[k], num_bytes=0, filename_template=None) for n, k in sizes.items()
  ]
  builder.info.set_splits(tfds.core.SplitDict(infos))
  builder.data_path.mkdir(parents=True)
  builder.info.write_to_directory(builder.data_path)


def test_mnist_adapted_to_the_digits_problem_trains(tmp_path):
  """configs/mnist_as_digits.py under tfds.testing.mock_data (random pixels: the shapes are the point)."""
  import tensorflow_datasets as tfds
  from tensorflow_datasets.testing import mocking

  metadata_dir = str(tmp_path / "metadata")
  write_mnist_metadata(metadata_dir, {"train": 64, "test": 64})  # the mock serves 64 per split
  config = jaxflow.load_config(
    config_path("mnist_as_digits.py:parity"),
    ["train.batch_size=32", "train.epochs=1", f"data.data_dir={tmp_path / 'ignored'}"],
  )
  with (
    tfds.testing.mock_data(num_examples=64, data_dir=metadata_dir, policy=tfds.testing.MockPolicy.USE_FILES),
    mock.patch.object(mocking, "_getitems", fixed_mock_getitems),
  ):
    problem = validate(config)
    summary = jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  assert problem.input_shape == (8, 8, 1) and problem.num_classes == 2
  assert summary["steps"] == 2 and np.array(summary["final"]["confusion"]).shape == (2, 2)
