"""Bring your own data (jaxflow/data/custom.py): a folder of images, a CSV and an NPZ built in a temporary
directory, read through `dataset_spec` / `load_split` and trained on end to end; malformed sources are
one-line errors naming the file and the row, and nothing is written; an edited source is converted again."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

import jaxflow
from jaxflow import cli, data
from jaxflow.config import ConfigError
from jaxflow.data import DatasetError, custom
from jaxflow.run.validate import validate
from tests.conftest import config_path

MLP = config_path("digits_mlp.py")
CLASSES = ("bright", "dark", "stripes")  # sorted: label i is the subfolder CLASSES[i]
# A small MLP, a constant learning rate and no warmup: the tiny sets below are learned in a few dozen steps.
FAST = [
  "model.widths=(32,)",
  "model.dropout_rate=0.0",
  "optim.lr=0.01",
  "optim.schedule=constant",
  "optim.warmup_steps=0",
  "train.batch_size=8",
  "train.log_every=4",
]


# --- Sources ----------------------------------------------------------------------------------------------


def class_image(cls: str, rng: np.random.Generator, size: int = 8) -> np.ndarray:
  """uint8 [size, size]: bright noise, dark noise, or horizontal stripes; separable by any model."""
  if cls == "bright":
    return rng.integers(180, 256, (size, size)).astype(np.uint8)
  if cls == "dark":
    return rng.integers(0, 60, (size, size)).astype(np.uint8)
  stripes = np.zeros((size, size), np.int64)
  stripes[::2] = 230
  return (stripes + rng.integers(0, 25, (size, size))).astype(np.uint8)


def write_folder(root, per_class: dict[str, int], seed: int = 0) -> str:
  """root/<split>/<class>/<i>.png for each split in `per_class`; split '' means root/<class>/<i>.png."""
  rng = np.random.default_rng(seed)
  for split, n in per_class.items():
    for cls in CLASSES:
      folder = os.path.join(root, split, cls)
      os.makedirs(folder, exist_ok=True)
      for i in range(n):
        Image.fromarray(class_image(cls, rng)).save(os.path.join(folder, f"{i:02d}.png"))
  return str(root)


def write_text(path, text: str) -> str:
  with open(path, "w") as f:
    f.write(text)
  return str(path)


def table_rows(n: int, seed: int = 0):
  """(x1, x2, x3, species, site, age, split) rows: x_c is near 2 for species c, the others near 0."""
  rng = np.random.default_rng(seed)
  species = ("setosa", "versicolor", "virginica")
  for i in range(n):
    c = i % 3
    x = 2.0 * (np.arange(3) == c) + rng.normal(0, 0.2, 3)
    yield (
      *(f"{v:.4f}" for v in x),
      species[c],
      f"site_{i % 2}",
      str(20 + i),
      "train" if i < 0.75 * n else "test",
    )


def write_csv(path, rows, header=("x1", "x2", "x3", "species", "site", "age", "split")) -> str:
  return write_text(path, "\n".join(",".join(r) for r in (header, *rows)) + "\n")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> str:
  """PATH/<class>/<image>: 3 classes x 12 8x8 grayscale PNGs, no split folders."""
  return write_folder(tmp_path_factory.mktemp("images"), {"": 12})


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory) -> str:
  """PATH/train/<class>/<image> (12 each) and PATH/test/<class>/<image> (4 each)."""
  return write_folder(tmp_path_factory.mktemp("split_images"), {"train": 12, "test": 4}, seed=1)


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory) -> str:
  """48 rows: three numeric inputs, string labels, text and int metadata, a split column (36 / 12)."""
  return write_csv(tmp_path_factory.mktemp("csv") / "plants.csv", table_rows(48))


@pytest.fixture(scope="module")
def arrays_npz(tmp_path_factory) -> str:
  """40 rows of x [4] float64, int labels 0..1, an int metadata array and a split array (30 / 10)."""
  rng = np.random.default_rng(2)
  y = np.arange(40) % 2
  x = rng.normal(size=(40, 4)) + 3.0 * y[:, None]
  split = np.where(np.arange(40) < 30, "train", "test")
  path = str(tmp_path_factory.mktemp("npz") / "arrays.npz")
  np.savez(path, x=x, y=y, split=split, group=np.arange(40) // 10, ignored=np.zeros(3))
  return path


def read_summary(workdir: str) -> dict:
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


# --- Folder of images -------------------------------------------------------------------------------------


def test_folder_spec_labels_and_images(image_folder):
  name = f"folder:{image_folder}"
  spec = data.dataset_spec(name, data_dir=None, metadata_features=("filename",))
  assert spec.input_feature == "image" and spec.input_shape == (8, 8, 1) and spec.input_dtype == "uint8"
  assert spec.num_classes == 3 and spec.split_sizes == {"train": 36}
  assert set(spec.feature_names) == {"image", "label", "filename"}
  split = data.load_split(name, "train", data_dir=None, metadata_features=("filename",))
  assert split.inputs.shape == (36, 8, 8, 1) and split.inputs.dtype == np.float32
  assert split.labels.dtype == np.int32 and np.bincount(split.labels).tolist() == [12, 12, 12]
  # Class names are the sorted subfolder names: label i is the folder CLASSES[i], and the pixels are the file's /255.
  for image, label, filename in zip(split.inputs, split.labels, split.metadata["filename"]):
    assert filename.split("/")[0] == CLASSES[label]
    with Image.open(os.path.join(image_folder, filename)) as f:
      np.testing.assert_array_equal(image[..., 0], np.asarray(f, np.float32) / np.float32(255))


def test_folder_stored_order_is_the_fixed_permutation(image_folder, tmp_path):
  """Everything is 'train' in default_rng(SHUFFLE_SEED).permutation(n) of the sorted listing, the same
  on every conversion, so 'train[:75%]' / 'train[75%:]' are a fixed random partition, not the first classes."""
  name = f"folder:{image_folder}"
  listing = [f"{c}/{f}" for c in CLASSES for f in sorted(os.listdir(os.path.join(image_folder, c)))]
  expected = np.asarray(listing)[np.random.default_rng(custom.SHUFFLE_SEED).permutation(len(listing))]
  first = data.load_split(name, "train", data_dir=None, metadata_features=("filename",))
  again = data.load_split(name, "train", data_dir=str(tmp_path / "fresh"), metadata_features=("filename",))
  assert first.metadata["filename"].tolist() == expected.tolist() == again.metadata["filename"].tolist()
  np.testing.assert_array_equal(first.inputs, again.inputs)
  head = data.load_split(name, "train[:75%]", data_dir=None, metadata_features=("filename",))
  tail = data.load_split(name, "train[75%:]", data_dir=None, metadata_features=("filename",))
  assert head.metadata["filename"].tolist() + tail.metadata["filename"].tolist() == expected.tolist()
  assert len(set(tail.labels.tolist())) > 1  # a random subset: the held-out quarter is not one class


def test_split_subfolders_are_splits(split_folder):
  name = f"folder:{split_folder}"
  spec = data.dataset_spec(name, data_dir=None)
  assert spec.split_sizes == {"train": 36, "test": 12} and spec.num_classes == 3
  test = data.load_split(name, "test", data_dir=None, metadata_features=("filename",))
  assert all(f.startswith("test/") for f in test.metadata["filename"])
  assert [f.split("/")[1] for f in test.metadata["filename"]] == [CLASSES[i] for i in test.labels]
  listing = [f"test/{c}/{i:02d}.png" for c in CLASSES for i in range(4)]
  expected = np.asarray(listing)[np.random.default_rng(custom.SHUFFLE_SEED).permutation(12)]
  assert test.metadata["filename"].tolist() == expected.tolist()  # a folder's splits are shuffled too


def test_train_on_a_split_folder(split_folder, tmp_path):
  workdir = str(tmp_path / "run")
  config = jaxflow.load_config(
    MLP,
    [
      *FAST,
      f"data.name=folder:{split_folder}",
      "problem.input_shape=(8, 8, 1)",
      "problem.num_classes=3",
      "train.epochs=8",
    ],
  )
  summary = jaxflow.train(config, workdir, quiet=True)
  assert read_summary(workdir)["steps"] == summary["steps"] == 8 * (36 // 8)
  assert summary["status"] == "completed"
  assert summary["final"]["eval"]["accuracy"] >= 0.9  # chance is 1/3
  assert np.asarray(summary["final"]["confusion"]).sum() == 12  # the whole test folder


def test_train_on_a_sliced_folder(image_folder, tmp_path):
  config = jaxflow.load_config(
    MLP,
    [
      *FAST,
      f"data.name=folder:{image_folder}",
      "data.train_split=train[:75%]",
      "data.eval_split=train[75%:]",
      "train.epochs=8",
    ],
  )
  summary = jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  assert summary["steps"] == 8 * (27 // 8) and summary["final"]["eval"]["accuracy"] >= 0.9


# --- CSV -----------------------------------------------------------------------------------------------------


def test_csv_spec_metadata_and_split_column(table_csv):
  name = f"csv:{table_csv}"
  read = dict(data_dir=None, input_feature="features", label_feature="species")
  spec = data.dataset_spec(name, metadata_features=("site", "age"), **read)
  assert spec.input_shape == (3,) and spec.input_dtype == "float32"  # x1, x2, x3; not site, age or split
  assert spec.num_classes == 3 and spec.split_sizes == {"train": 36, "test": 12}
  test = data.load_split(name, "test", metadata_features=("site", "age", "csv_line"), **read)
  rows = list(table_rows(48))[36:]  # named splits keep the file's order
  np.testing.assert_allclose(test.inputs, [[float(v) for v in r[:3]] for r in rows], rtol=1e-6)
  # String labels: the classes are the distinct strings, sorted.
  assert test.labels.tolist() == [sorted({r[3] for r in rows}).index(r[3]) for r in rows]
  assert test.metadata["site"].tolist() == [r[4] for r in rows]  # text
  assert test.metadata["age"].dtype == np.int64 and test.metadata["age"].tolist() == [int(r[5]) for r in rows]
  assert test.metadata["csv_line"].tolist() == list(range(38, 50))  # the header is line 1


def test_csv_int_labels_and_shuffled_order_without_split_column(tmp_path):
  path = write_csv(tmp_path / "ints.csv", [(f"{i}.5", str(i % 4 * 2)) for i in range(20)], header=("x", "label"))
  spec = data.dataset_spec(f"csv:{path}", data_dir=None, input_feature="features")
  assert spec.num_classes == 7 and spec.split_sizes == {"train": 20}  # integer labels are classes 0..max
  split = data.load_split(
    f"csv:{path}", "train", data_dir=None, input_feature="features", metadata_features=("csv_line",)
  )
  order = np.random.default_rng(custom.SHUFFLE_SEED).permutation(20)
  assert split.metadata["csv_line"].tolist() == (order + 2).tolist()
  assert split.labels.tolist() == (order % 4 * 2).tolist()
  np.testing.assert_array_equal(split.inputs[:, 0], order + 0.5)


def test_train_on_a_csv(table_csv, tmp_path):
  # No metadata columns: every column but the label and 'split' is an input.
  path = write_csv(
    tmp_path / "numeric.csv", [r[:4] + r[6:] for r in table_rows(48)], header=("x1", "x2", "x3", "species", "split")
  )
  workdir = str(tmp_path / "run")
  config = jaxflow.load_config(
    MLP,
    [
      *FAST,
      f"data.name=csv:{path}",
      "data.input_feature=features",
      "data.label_feature=species",
      "train.epochs=8",
    ],
  )
  summary = jaxflow.train(config, workdir, quiet=True)
  assert read_summary(workdir)["steps"] == summary["steps"] == 8 * (36 // 8)
  assert summary["num_params"] == 3 * 32 + 32 + 32 * 3 + 3
  assert summary["final"]["eval"]["accuracy"] >= 0.9


def test_train_on_a_csv_with_metadata_columns(table_csv, tmp_path):
  """data.metadata_features shape a CSV's conversion, so training must read with them too: 'site' (text)
  and 'age' (int) are kept out of the inputs, which stay x1, x2, x3."""
  config = jaxflow.load_config(
    MLP,
    [
      *FAST,
      f"data.name=csv:{table_csv}",
      "data.input_feature=features",
      "data.label_feature=species",
      "data.metadata_features=('site', 'age')",
      "train.epochs=8",
    ],
  )
  summary = jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  assert summary["num_params"] == 3 * 32 + 32 + 32 * 3 + 3 and summary["final"]["eval"]["accuracy"] >= 0.9


# --- NPZ -----------------------------------------------------------------------------------------------------


def test_npz_spec_and_training(arrays_npz, tmp_path):
  name = f"npz:{arrays_npz}"
  spec = data.dataset_spec(name, data_dir=None, input_feature="features", metadata_features=("group",))
  assert spec.input_shape == (4,) and spec.input_dtype == "float32" and spec.num_classes == 2
  assert spec.split_sizes == {"train": 30, "test": 10} and "ignored" not in spec.feature_names
  test = data.load_split(
    name, "test", data_dir=None, input_feature="features", metadata_features=("group", "npz_index")
  )
  assert test.metadata["npz_index"].tolist() == list(range(30, 40)) and test.metadata["group"].tolist() == [3] * 10
  with np.load(arrays_npz) as f:
    np.testing.assert_allclose(test.inputs, f["x"][30:].astype(np.float32))
    np.testing.assert_array_equal(test.labels, f["y"][30:])
  workdir = str(tmp_path / "run")
  config = jaxflow.load_config(MLP, [*FAST, f"data.name={name}", "data.input_feature=features", "train.epochs=6"])
  summary = jaxflow.train(config, workdir, quiet=True)
  assert read_summary(workdir)["steps"] == summary["steps"] == 6 * (30 // 8)
  assert summary["final"]["eval"]["accuracy"] >= 0.9  # chance is 1/2


def test_npz_uint8_inputs_are_read_like_images(tmp_path):
  path = str(tmp_path / "pixels.npz")
  x = np.arange(6 * 4, dtype=np.uint8).reshape(6, 2, 2) * 10
  np.savez(path, features=x, label=np.asarray(["b", "a", "b", "a", "c", "c"]))
  spec = data.dataset_spec(f"npz:{path}", data_dir=None, input_feature="features")
  assert spec.input_shape == (2, 2) and spec.input_dtype == "uint8" and spec.num_classes == 3
  split = data.load_split(
    f"npz:{path}", "train", data_dir=None, input_feature="features", metadata_features=("npz_index",)
  )
  order = split.metadata["npz_index"]
  np.testing.assert_allclose(split.inputs, x[order] / np.float32(255), rtol=1e-6)
  assert split.labels.tolist() == [
    {"a": 0, "b": 1, "c": 2}[v] for v in np.asarray(["b", "a", "b", "a", "c", "c"])[order]
  ]


# --- Malformed sources ---------------------------------------------------------------------------------------


def bad_folder_garbage_png(root):
  write_folder(root, {"": 3})
  write_text(os.path.join(root, "dark", "broken.png"), "this is not a png")
  return f"folder:{root}", os.path.join(root, "dark", "broken.png"), ("cannot read image",)


def bad_folder_sizes(root):
  write_folder(root, {"": 3})
  Image.fromarray(np.zeros((10, 8), np.uint8)).save(os.path.join(root, "stripes", "odd.png"))
  return f"folder:{root}", os.path.join(root, "stripes", "odd.png"), ("8x10 grayscale", "8x8 grayscale", "same size")


def bad_folder_modes(root):
  write_folder(root, {"": 3})
  Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(os.path.join(root, "dark", "colour.png"))
  return f"folder:{root}", os.path.join(root, "dark", "colour.png"), ("8x8 RGB", "8x8 grayscale")


def bad_csv_no_label(root):
  path = write_csv(os.path.join(root, "t.csv"), [("1", "2", "a")], header=("x1", "x2", "class"))
  return f"csv:{path}", path, ("no label column 'label'", "x1, x2, class")


def bad_csv_text_cell(root):
  path = write_csv(os.path.join(root, "t.csv"), [("1", "0"), ("2", "1"), ("n/a", "0")], header=("x", "label"))
  return f"csv:{path}", f"{path} line 4", ("column 'x'", "'n/a' is not a number")


def bad_csv_float_label(root):
  path = write_csv(os.path.join(root, "t.csv"), [("1", "0"), ("2", "1.5"), ("3", "1")], header=("x", "label"))
  return f"csv:{path}", f"{path} line 3", ("label '1.5' is not a class",)


def bad_csv_empty_label(root):
  path = write_csv(os.path.join(root, "t.csv"), [("1", "cat"), ("2", "dog"), ("3", "")], header=("x", "label"))
  return f"csv:{path}", f"{path} line 4", ("empty label",)


def bad_csv_negative_label(root):
  path = write_csv(os.path.join(root, "t.csv"), [("1", "0"), ("2", "-1")], header=("x", "label"))
  return f"csv:{path}", f"{path} line 3", ("label -1 is not a class",)


def bad_csv_ragged(root):
  path = write_text(os.path.join(root, "t.csv"), "x,label\n1,0\n2,1,7\n")
  return f"csv:{path}", f"{path} line 3", ("3 fields", "header (line 1) has 2")


def bad_npz_no_label(root):
  path = os.path.join(root, "t.npz")
  np.savez(path, x=np.zeros((3, 2)), target=np.zeros(3))
  return f"npz:{path}", path, ("no label array 'label'", "arrays: x, target")


def bad_npz_float_label(root):
  path = os.path.join(root, "t.npz")
  np.savez(path, x=np.zeros((3, 2)), y=np.asarray([0.0, 1.0, 0.5]))
  return f"npz:{path}", f"{path} index 2", ("label 0.5 in array 'y' (float64) is not a class",)


def bad_npz_not_npz(root):
  path = write_text(os.path.join(root, "t.npz"), "x,y\n1,2\n")
  return f"npz:{path}", path, ("not a readable NPZ file",)


MALFORMED = [
  bad_folder_garbage_png,
  bad_folder_sizes,
  bad_folder_modes,
  bad_csv_no_label,
  bad_csv_text_cell,
  bad_csv_float_label,
  bad_csv_empty_label,
  bad_csv_negative_label,
  bad_csv_ragged,
  bad_npz_no_label,
  bad_npz_float_label,
  bad_npz_not_npz,
]


@pytest.mark.parametrize("make", MALFORMED, ids=lambda f: f.__name__[4:])
def test_malformed_source_is_one_line_naming_file_and_row(tmp_path, make):
  source = tmp_path / "source"
  source.mkdir()
  name, where, phrases = make(str(source))
  data_dir = tmp_path / "data"
  with pytest.raises(DatasetError) as e:
    data.dataset_spec(name, data_dir=str(data_dir), input_feature="features" if name[:3] in ("csv", "npz") else "image")
  message = str(e.value)
  assert "\n" not in message and message.startswith((f"{where}:", f"{where},")), message
  for phrase in phrases:
    assert phrase in message, message
  assert not (data_dir / custom.TFDS_NAME).exists()  # checked before tfds writes anything


@pytest.mark.parametrize(
  "make",
  [bad_folder_garbage_png, bad_csv_text_cell, bad_csv_float_label, bad_npz_no_label],
  ids=lambda f: f.__name__[4:],
)
def test_cli_on_a_malformed_source_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, make):
  source = tmp_path / "source"
  source.mkdir()
  name, where, phrases = make(str(source))
  workdir, data_dir = tmp_path / "run", tmp_path / "data"
  code = cli.main(
    [
      "jaxflow",
      "train",
      f"--config={MLP}",
      f"--config.data.name={name}",
      "--config.data.input_feature=features",
      f"--config.data.data_dir={data_dir}",
      f"--workdir={workdir}",
    ]
  )
  err = capsys.readouterr().err
  assert code == 2
  assert err.count("\n") == 1 and err.startswith(f"jaxflow train: error: {where}"), err
  assert all(phrase in err for phrase in phrases), err
  assert not workdir.exists() and not (data_dir / custom.TFDS_NAME).exists()


def test_cli_on_a_missing_source_names_the_field(tmp_path, capsys):
  workdir = tmp_path / "run"
  code = cli.main(
    ["jaxflow", "train", f"--config={MLP}", f"--config.data.name=csv:{tmp_path}/nope.csv", f"--workdir={workdir}"]
  )
  err = capsys.readouterr().err
  assert code == 2 and err.count("\n") == 1
  assert f"config.data.name='csv:{tmp_path}/nope.csv': {tmp_path}/nope.csv does not exist." in err
  assert not workdir.exists()


# --- A changed source ----------------------------------------------------------------------------------------


def test_an_edited_csv_is_converted_again(tmp_path, capsys):
  data_dir = str(tmp_path / "data")
  path = write_csv(tmp_path / "t.csv", [("1", "a"), ("2", "b")], header=("x", "label"))
  read = dict(data_dir=data_dir, input_feature="features")
  before = data.load_split(f"csv:{path}", "train", **read)
  assert sorted(before.inputs[:, 0].tolist()) == [1.0, 2.0]
  assert "preparing dataset" in capsys.readouterr().err
  data.load_split(f"csv:{path}", "train", **read)
  assert "preparing dataset" not in capsys.readouterr().err  # unchanged: the copy is reused
  first_copy = custom.prepared_dir(f"csv:{path}", data_dir=data_dir)
  write_csv(path, [("1", "a"), ("2", "b"), ("5", "c"), ("7", "c")], header=("x", "label"))
  assert custom.prepared_dir(f"csv:{path}", data_dir=data_dir) != first_copy
  spec = data.dataset_spec(f"csv:{path}", **read)
  assert spec.split_sizes == {"train": 4} and spec.num_classes == 3
  assert "preparing dataset" in capsys.readouterr().err
  after = data.load_split(f"csv:{path}", "train", **read)
  assert sorted(after.inputs[:, 0].tolist()) == [1.0, 2.0, 5.0, 7.0]
  assert not os.path.exists(first_copy)  # the earlier version's copy is deleted
  assert [e for e in os.listdir(os.path.join(data_dir, custom.TFDS_NAME)) if not e.startswith(".")] == [
    os.path.basename(os.path.dirname(custom.prepared_dir(f"csv:{path}", data_dir=data_dir)))
  ]


def test_a_folder_with_a_new_image_is_converted_again(tmp_path):
  root = write_folder(tmp_path / "images", {"": 2})
  name = f"folder:{root}"
  assert data.dataset_spec(name, data_dir=str(tmp_path / "data")).split_sizes == {"train": 6}
  Image.fromarray(class_image("dark", np.random.default_rng(5))).save(os.path.join(root, "dark", "new.png"))
  assert data.dataset_spec(name, data_dir=str(tmp_path / "data")).split_sizes == {"train": 7}


def test_own_data_given_as_a_bare_path_is_one_line_naming_the_prefix(tmp_path, capsys):
  folder = tmp_path / "shapes"
  (folder / "circle").mkdir(parents=True)
  table = tmp_path / "wine.csv"
  table.write_text("a,label\n1,x\n")
  for name, hint in [(str(folder), f"'folder:{folder}'"), (str(table), f"'csv:{table}'")]:
    code = cli.main(
      [
        "jaxflow",
        "train",
        f"--config={config_path('digits_mlp.py')}",
        f"--config.data.name={name}",
        f"--workdir={tmp_path / 'run'}",
      ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is a path; own data are named with their kind" in err and hint in err
  assert not (tmp_path / "run").exists()


def test_a_cnn_on_feature_vectors_is_refused_at_validation(tmp_path):
  table = tmp_path / "t.csv"
  rows = "\n".join(f"{i % 3},{i * 0.5},{i % 2}" for i in range(40))
  table.write_text("f1,f2,label\n" + rows + "\n")
  config = jaxflow.load_config(
    config_path("digits_cnn.py"),
    [
      f"data.name=csv:{table}",
      "data.input_feature=features",
      "data.train_split=train[:80%]",
      "data.eval_split=train[80%:]",
      "train.batch_size=8",
    ],
  )
  with pytest.raises(
    ConfigError, match=r"model.name='cnn' reads images \[height, width, channels\], but .* shape \[2\]"
  ):
    validate(config)
