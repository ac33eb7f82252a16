"""`jaxflow predict`: real image, CSV and NPZ files in, the exported model's own answers out (one row per
input, in order, as CSV or JSON), and a bad input ends the command in one line naming the file, with
nothing written."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxflow import cli
from jaxflow.data.digits import digits_arrays, split_arrays
from jaxflow.deploy import load_model
from jaxflow.deploy.artifact import ArtifactError
from jaxflow.deploy.inputs import read_inputs
from jaxflow.deploy.predict import batch_sizes, predict_files, prediction_rows, render
from tests.conftest import ROOT

EXAMPLES = 360  # the whole digits test split: the examples the card's accuracy was measured on


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
  """The stored digits test split: uint8 [360, 8, 8, 1] (sklearn's 0..16 * 255 / 16) and the labels."""
  images, labels = split_arrays(*digits_arrays())["test"]
  assert len(images) == EXAMPLES
  return images, labels


@pytest.fixture(scope="module")
def folder(digits, tmp_path_factory) -> str:
  """A folder of the 360 digits as 8x8 grayscale PNGs (named so that sorting keeps their order) and a note."""
  path = tmp_path_factory.mktemp("predict") / "digits"
  path.mkdir()
  for i, image in enumerate(digits[0]):
    Image.fromarray(image[..., 0]).save(path / f"{i:03d}.png")
  (path / "README.txt").write_text("not an image: skipped")
  return str(path)


def probabilities(rows: list[dict]) -> np.ndarray:
  return np.array([list(row["probabilities"].values()) for row in rows])


def test_a_folder_of_pngs_gives_the_models_answers_and_the_cards_accuracy(cnn_model, folder, digits):
  images, labels = digits
  rows = predict_files(cnn_model, [folder])
  expected = load_model(cnn_model)(images)["probabilities"]
  assert [row["input"] for row in rows] == [os.path.join(folder, f"{i:03d}.png") for i in range(EXAMPLES)]
  np.testing.assert_allclose(probabilities(rows), expected, atol=1e-6)
  assert [row["predicted"] for row in rows] == [str(k) for k in expected.argmax(-1)]
  np.testing.assert_allclose([row["probability"] for row in rows], expected.max(-1), atol=1e-6)
  # The files hold the pixels export measured the card's accuracy on (one argmax within float noise of a tie
  # may flip); the 3-epoch fixture CNN is far above chance (0.1) but not a good model.
  accuracy = np.mean([row["predicted"] == str(label) for row, label in zip(rows, labels)])
  assert accuracy == pytest.approx(load_model(cnn_model).card["evaluation"]["artifact"]["value"], abs=1.5 / EXAMPLES)
  assert accuracy > 0.5


def test_images_of_another_size_or_mode_become_the_same_pixels(cnn_model, digits, tmp_path):
  """A 16x16 image is resized to the card's 8x8 (Pillow bilinear); a gray image stored as RGB, with an
  opaque alpha, or with a palette is the gray image."""
  image = digits[0][0, ..., 0]
  big = Image.fromarray(image).resize((16, 16), Image.Resampling.NEAREST)
  big.save(tmp_path / "big.png")
  Image.fromarray(np.stack([image] * 3, -1)).save(tmp_path / "rgb_gray.png")
  Image.fromarray(np.stack([image, np.full_like(image, 255)], -1), "LA").save(tmp_path / "opaque.png")
  Image.fromarray(image).convert("P").save(tmp_path / "palette.png")
  Image.fromarray(image).save(tmp_path / "photo.jpg", quality=100)
  paths = [str(tmp_path / n) for n in ("big.png", "rgb_gray.png", "opaque.png", "palette.png")]
  card = load_model(cnn_model).card
  pixels, ids = read_inputs(paths, card)
  assert ids == paths and pixels.dtype == np.uint8 and pixels.shape == (4, 8, 8, 1)
  resized = np.asarray(big.resize((8, 8), Image.Resampling.BILINEAR))
  np.testing.assert_array_equal(pixels[0, ..., 0], resized)
  assert not np.array_equal(resized, image)  # the resize did something
  for gray in pixels[1:]:
    np.testing.assert_array_equal(gray[..., 0], image)
  jpeg, _ = read_inputs([str(tmp_path / "photo.jpg")], card)
  assert np.abs(jpeg[0, ..., 0].astype(int) - image).max() <= 8  # lossy, but the same picture
  rows = predict_files(cnn_model, paths[:1])
  np.testing.assert_allclose(probabilities(rows), load_model(cnn_model)(pixels[:1])["probabilities"], atol=1e-6)


def test_csv_rows_and_npz_arrays_are_inputs_too(mlp_model, digits, tmp_path):
  images = digits[0][:7]
  with open(tmp_path / "header.csv", "w") as f:
    f.write(",".join(f"pixel_{k}" for k in range(64)) + "\n")
    f.writelines(",".join(map(str, image.ravel())) + "\n" for image in images[:3])
  (tmp_path / "bare.csv").write_text("".join(",".join(map(str, i.ravel())) + "\n\n" for i in images[3:5]))
  np.savez(tmp_path / "named.npz", labels=np.arange(1), image=images[5:6].astype(np.float64))
  np.savez(tmp_path / "one.npz", images[6].astype(np.int64))  # one example, the only array
  paths = [str(tmp_path / n) for n in ("header.csv", "bare.csv", "named.npz", "one.npz")]
  pixels, ids = read_inputs(paths, load_model(mlp_model).card)
  np.testing.assert_array_equal(pixels, images)
  assert ids == [
    *[f"{paths[0]}:row {n}" for n in (2, 3, 4)],
    *[f"{paths[1]}:row {n}" for n in (1, 3)],  # blank lines are skipped, rows keep their line numbers
    f"{paths[2]}[0]",
    f"{paths[3]}[0]",
  ]
  rows = predict_files(mlp_model, paths)
  np.testing.assert_allclose(probabilities(rows), load_model(mlp_model)(images)["probabilities"], atol=1e-6)


def test_json_and_csv_outputs_parse_with_one_row_per_input_in_order(mlp_model, folder, digits):
  out = os.path.dirname(folder)
  everything = predict_files(mlp_model, [folder], batch_size=256)
  as_json = predict_files(mlp_model, [folder], out=os.path.join(out, "p.json"), batch_size=16)
  as_csv = predict_files(mlp_model, [folder], out=os.path.join(out, "p.csv"), batch_size=7)
  stdout = io.StringIO()
  predict_files(mlp_model, [folder], fmt="json", stdout=stdout, batch_size=16)
  parsed = json.load(open(os.path.join(out, "p.json")))
  assert parsed == json.loads(stdout.getvalue()) == as_json
  assert [row["input"] for row in parsed] == [row["input"] for row in everything]
  assert set(parsed[0]) == {"input", "predicted", "probability", "probabilities"}
  np.testing.assert_allclose(probabilities(as_json), probabilities(everything), atol=1e-6)  # batches of 16 and 7
  with open(os.path.join(out, "p.csv"), newline="") as f:
    table = list(csv.DictReader(f))
  assert list(table[0]) == ["input", "predicted", "probability", *[f"p_{k}" for k in range(10)]]
  assert [row["input"] for row in table] == [row["input"] for row in as_csv] and len(table) == EXAMPLES
  assert [row["predicted"] for row in table] == [row["predicted"] for row in as_csv]
  read = np.array([[float(row[f"p_{k}"]) for k in range(10)] for row in table])
  np.testing.assert_allclose(read, probabilities(as_csv), atol=1e-6)
  assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary file left


def test_batches_are_full_then_one_padded_to_a_power_of_two():
  assert batch_sizes(10, 4) == [(0, 4), (4, 4), (8, 2)]
  assert batch_sizes(5, 256) == [(0, 8)] and batch_sizes(1, 256) == [(0, 1)]
  assert batch_sizes(200, 128) == [(0, 128), (128, 128)] and batch_sizes(3, 1) == [(0, 1), (1, 1), (2, 1)]


def test_ensemble_and_regression_rows_have_their_columns():
  ensemble = {"problem": {"kind": "binary"}, "output": {"name": "probabilities", "std_name": "std_probabilities"}}
  ensemble["output"]["class_names"] = ["negative", "positive"]
  outputs = {"probabilities": np.array([[0.25, 0.75]], np.float32), "std_probabilities": np.full((1, 2), 0.1)}
  (row,) = prediction_rows(ensemble, ["a.png"], outputs)
  assert row == {
    "input": "a.png",
    "predicted": "positive",
    "probability": 0.75,
    "probabilities": {"negative": 0.25, "positive": 0.75},
    "std": {"negative": 0.1, "positive": 0.1},
  }
  assert render([row], "csv").splitlines() == [
    "input,predicted,probability,p_negative,p_positive,std_negative,std_positive",
    "a.png,positive,0.75,0.25,0.75,0.1,0.1",
  ]
  regression = {"problem": {"kind": "regression"}, "output": {"name": "value", "class_names": None}}
  rows = prediction_rows(regression, ["x[0]", "x[1]"], {"value": np.array([[1.5], [-2.0]], np.float32)})
  assert rows == [{"input": "x[0]", "value": 1.5}, {"input": "x[1]", "value": -2.0}]
  assert render(rows, "csv") == "input,value\nx[0],1.5\nx[1],-2.0\n"
  two = prediction_rows(regression, ["r"], {"value": np.array([[1.0, 0.1]], np.float32)})
  assert two == [{"input": "r", "value": [1.0, 0.1]}]
  assert render(two, "csv").splitlines()[0] == "input,value_0,value_1"


# kind -> (the file's name, what the one line says about it)
BAD_INPUTS = {
  "rgb": ("colour.png", "colour.png: has 3 channels (a colour image); the model takes 1 (grayscale)"),
  "alpha": ("cutout.png", "cutout.png: has transparent pixels (LA); the model takes 1-channel images without alpha"),
  "animation": ("moving.gif", "moving.gif: an animation of 2 frames; predict takes one picture per file"),
  "corrupt": ("noise.png", "noise.png: not a readable image (cannot identify image file"),
  "count": (
    "short.csv",
    "short.csv:row 2: 63 values; each row is the model's input flattened, 64 values ([n, 8, 8, 1]",
  ),
  "shape": (
    "flat.npz",
    "flat.npz['image']: shape [3, 8, 8]; the model takes [n, 8, 8, 1] uint8 (values 0..255) or one",
  ),
  "float": ("scaled.npz", "scaled.npz['image'][0]: value 0.6369616873214543 at [0, 0, 0] is not a whole number; the"),
  "range": ("wide.npy", "wide.npy[1]: value 256 at [7, 7, 0] is outside 0..255; the model takes [n, 8, 8, 1] uint8"),
  "missing": ("missing.png", "missing.png: no such file or folder"),
  "empty": ("empty", "empty: a folder with no image files"),
  "suffix": ("notes.txt", "notes.txt: unknown input type '.txt'; predict reads images"),
}


def write_bad_input(kind: str, tmp_path) -> str:
  """A file `jaxflow predict` must refuse for the 8x8 gray digits model (or a path to nothing)."""
  rng = np.random.default_rng(0)
  path = tmp_path / BAD_INPUTS[kind][0]
  gray = rng.integers(0, 256, (8, 8), dtype=np.uint8)
  if kind == "rgb":
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(path)
  elif kind == "alpha":
    Image.fromarray(np.stack([gray, np.where(gray > 128, 255, 0).astype(np.uint8)], -1), "LA").save(path)
  elif kind == "animation":
    Image.fromarray(gray).save(path, save_all=True, append_images=[Image.fromarray(255 - gray)])
  elif kind == "corrupt":
    path.write_bytes(rng.bytes(300))
  elif kind == "count":
    path.write_text(",".join(["0"] * 64) + "\n" + ",".join(["0"] * 63) + "\n")
  elif kind == "shape":
    np.savez(path, image=np.zeros((3, 8, 8), np.uint8))
  elif kind == "float":
    np.savez(path, image=np.random.default_rng(0).random((2, 8, 8, 1)))  # pixels / 255: what training fed
  elif kind == "range":
    np.save(path, np.concatenate([np.zeros((1, 64)), np.arange(193, 257)[None]]).reshape(2, 8, 8, 1).astype(int))
  elif kind == "empty":
    path.mkdir()
  elif kind == "suffix":
    path.write_text("1,2,3\n")
  return str(path)


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_a_bad_input_is_one_line_naming_the_file_and_nothing_is_written(kind, cnn_model, folder, tmp_path, capsys):
  bad = write_bad_input(kind, tmp_path)
  out = tmp_path / "predictions.csv"
  status = cli.main(["jaxflow", "predict", f"--model={cnn_model}", f"--out={out}", folder, bad])
  captured = capsys.readouterr()
  assert status == 2
  assert captured.err.startswith("jaxflow predict: error: ") and captured.err.count("\n") == 1, captured.err
  assert BAD_INPUTS[kind][1] in captured.err
  assert not captured.out and not out.exists() and os.listdir(tmp_path) == [os.path.basename(bad)] * (kind != "missing")


def test_a_bad_flag_is_one_line_before_anything_is_read(cnn_model, folder, tmp_path):
  with pytest.raises(ArtifactError, match=r"^--format=xml: allowed csv, json$"):
    predict_files(cnn_model, [folder], fmt="xml")
  with pytest.raises(ArtifactError, match=r"--out=.*nowhere/p.csv: no such folder"):
    predict_files(cnn_model, [folder], out=str(tmp_path / "nowhere" / "p.csv"))
  with pytest.raises(ArtifactError, match=r"^--batch_size=0: must be at least 1$"):
    predict_files(cnn_model, [folder], batch_size=0)


def jaxflow_predict(*args) -> subprocess.CompletedProcess:
  command = [sys.executable, "-m", "jaxflow.cli", "predict", *map(str, args)]
  return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.slow
def test_the_command_prints_csv_and_refuses_a_colour_image(cnn_model, folder, tmp_path):
  done = jaxflow_predict(f"--model={cnn_model}", folder)
  assert done.returncode == 0, done.stderr[-2000:]
  table = list(csv.DictReader(io.StringIO(done.stdout)))
  expected = predict_files(cnn_model, [folder])
  assert [(row["input"], row["predicted"]) for row in table] == [(r["input"], r["predicted"]) for r in expected]
  colour, out = write_bad_input("rgb", tmp_path), tmp_path / "p.json"
  done = jaxflow_predict(f"--model={cnn_model}", f"--out={out}", folder, colour)
  assert done.returncode == 2 and not done.stdout and not out.exists()
  assert done.stderr == f"jaxflow predict: error: {colour}: has 3 channels (a colour image); the model takes 1 " + (
    "(grayscale): convert it first\n"
  )
