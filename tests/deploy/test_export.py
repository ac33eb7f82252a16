"""`jaxflow export` and `load_model`: the artifact is the training code's eval, it loads with jax and numpy
alone, its card says what goes in and out, precisions are measured, and a bad artifact is one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.deploy import artifact, export, inference
from jaxflow.workdir import write_config
from tests.conftest import ROOT, config_path

# A child process in which the training stack cannot be imported: what a deployed model has.
NO_TRAINING_STACK = """
import importlib.abc, json, sys
BLOCKED = ("flax", "optax", "orbax", "jaxflow.training", "tensorflow_datasets", "jraph")
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path, target=None):
    if name.split(".")[0] in BLOCKED or name.startswith(BLOCKED):
      raise ImportError(f"{name} is blocked in this process")
sys.meta_path.insert(0, Block())
import numpy as np
from jaxflow.deploy import load_model
model = load_model(sys.argv[1])
inputs = np.load(sys.argv[2])["inputs"]
np.savez(sys.argv[3], **model(inputs))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("flax", "optax", "orbax"))))
"""


def training_eval(workdir: str, raw_inputs: np.ndarray) -> np.ndarray:
  """Softmax of the training code's eval forward on the inputs as the training pipeline prepares them."""
  source = export.Source(workdir, "best")
  prepared = np.asarray(raw_inputs, np.float32) / np.float32(255.0)  # data.loading's scaling
  logits = source.model.apply({"params": source.params}, prepared, train=False)
  return np.asarray(jax.nn.softmax(logits, axis=-1))


@pytest.mark.slow
def test_the_artifact_runs_without_the_training_stack_and_equals_the_training_eval(cnn_run, cnn_model, tmp_path):
  source = export.Source(cnn_run, "best")
  raw = export.raw_input(source)
  inputs, labels = export.raw_split(source, raw, "eval")
  assert inputs.dtype == np.uint8 and inputs.shape == (360, 8, 8, 1)
  np.savez(tmp_path / "in.npz", inputs=inputs)
  done = subprocess.run(
    [sys.executable, "-c", NO_TRAINING_STACK, cnn_model, str(tmp_path / "in.npz"), str(tmp_path / "out.npz")],
    capture_output=True,
    text=True,
    cwd=ROOT,
    timeout=120,
  )
  assert done.returncode == 0, done.stderr[-2000:]
  assert json.loads(done.stdout.strip().splitlines()[-1]) == []  # none of them was loaded
  probabilities = np.load(tmp_path / "out.npz")["probabilities"]
  np.testing.assert_allclose(probabilities, training_eval(cnn_run, inputs), atol=1e-6)
  card = artifact.read_card(cnn_model)
  assert card["evaluation"]["artifact"]["value"] == pytest.approx(float((probabilities.argmax(-1) == labels).mean()))


def test_the_card_says_what_goes_in_and_what_comes_out(cnn_run, cnn_model):
  card = json.loads(open(os.path.join(cnn_model, artifact.CARD_JSON)).read())
  assert card["format_version"] == artifact.FORMAT_VERSION
  assert card["problem"] == {"kind": "multiclass", "dataset": "digits", "model": "cnn"}
  assert card["input"]["shape"] == [8, 8, 1] and card["input"]["dtype"] == "uint8"
  assert card["input"]["range"] == [0, 255] and card["input"]["preprocessing"]["scale"] == "x / 255 (float32)"
  assert card["output"]["name"] == "probabilities" and card["output"]["class_names"] == [str(i) for i in range(10)]
  summary = json.loads(open(os.path.join(cnn_run, "summary.json")).read())
  assert card["source"]["params_sha256"] == summary["params_sha256"]  # the best checkpoint is the last here
  assert card["source"]["eval_metrics"]["accuracy"] == summary["final"]["eval"]["accuracy"]
  assert card["evaluation"]["artifact"]["value"] == pytest.approx(summary["final"]["eval"]["accuracy"], abs=1e-6)
  assert card["platforms"] == ["cpu", "cuda", "tpu"]
  assert card["versions"]["jax"] == jax.__version__
  markdown = open(os.path.join(cnn_model, artifact.CARD_MARKDOWN)).read()
  assert "[batch, 8, 8, 1] uint8, values 0..255" in markdown and "params_sha256" in markdown


def test_a_batch_of_any_size_and_one_clear_error_for_wrong_inputs(mlp_model):
  model = jaxflow.load_model(mlp_model)
  pixels = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
  five = model(pixels)["probabilities"]
  assert five.shape == (5, 10) and np.allclose(five.sum(-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(model(pixels[:1])["probabilities"], five[:1], atol=1e-6)
  np.testing.assert_allclose(model(pixels.astype(np.int64))["probabilities"], five, atol=0)  # same values
  with pytest.raises(artifact.ArtifactError, match=r"shape \[5, 8, 8\]; the model takes \[batch, 8, 8, 1\] uint8"):
    model(pixels[..., 0])
  with pytest.raises(artifact.ArtifactError, match=r"dtype float32; the model takes .* \(values 0..255\)"):
    model(pixels.astype(np.float32) / 255.0)


def test_a_newer_or_damaged_artifact_is_one_line(mlp_model, tmp_path):
  newer = str(tmp_path / "newer")
  shutil.copytree(mlp_model, newer)
  card = json.loads(open(os.path.join(newer, artifact.CARD_JSON)).read())
  card["format_version"] = artifact.FORMAT_VERSION + 1
  card["versions"]["jaxflow"] = "9.0.0"
  open(os.path.join(newer, artifact.CARD_JSON), "w").write(json.dumps(card))
  with pytest.raises(artifact.ArtifactError, match="exported by jaxflow 9.0.0 in format 2; .* upgrade jaxflow"):
    jaxflow.load_model(newer)
  damaged = str(tmp_path / "damaged")
  shutil.copytree(mlp_model, damaged)
  with open(os.path.join(damaged, artifact.PROGRAM_FILE), "r+b") as f:
    f.truncate(100)
  with pytest.raises(artifact.ArtifactError, match="cannot be deserialized by jax"):
    jaxflow.load_model(damaged)
  with pytest.raises(artifact.ArtifactError, match="not a jaxflow export"):
    jaxflow.load_model(str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_lower_precisions_state_their_accuracy_change(mlp_run, tmp_path, precision):
  card = export.export_run(mlp_run, str(tmp_path / precision), precision=precision, max_accuracy_drop=1.0)
  evaluation = card["evaluation"]
  assert evaluation["change_vs_f32"] == pytest.approx(evaluation["artifact"]["value"] - evaluation["f32"]["value"])
  assert abs(evaluation["change_vs_f32"]) < 0.05  # the digits MLP keeps its accuracy in both
  assert card["precision"] == precision and jaxflow.load_model(str(tmp_path / precision)).card == card


def test_a_precision_that_loses_accuracy_is_refused(mlp_run):
  """One huge weight per output column on a pixel that is 0 in every digit: f32's outputs do not change,
  but int8's per-column weight scale becomes so coarse that every other weight of the layer rounds to 0."""
  source = export.Source(mlp_run, "best")
  raw = export.raw_input(source)
  inputs, labels = export.raw_split(source, raw, "eval")
  assert not inputs[:, 0, 0].any()  # the corner pixel of the digits is always 0
  first = next(name for name in sorted(source.params) if source.params[name]["kernel"].shape[0] == 64)
  kernel = np.array(source.params[first]["kernel"])
  kernel[0, :] = 1000.0
  source.params = {**source.params, first: {**source.params[first], "kernel": kernel}}
  with pytest.raises(ConfigError, match="--precision=int8 drops accuracy .* more than --max_accuracy_drop=0.05"):
    export.export_single(source, raw, "int8", inputs, labels, 0.05)
  _, evaluation, _ = export.export_single(source, raw, "int8", inputs, labels, 1.0)
  assert evaluation["change_vs_f32"] < -0.3  # measured, not assumed: the refusal above was for a real drop


def test_graph_models_are_refused_in_one_line(tmp_path):
  workdir = str(tmp_path / "karate")
  os.makedirs(workdir)
  write_config(workdir, jaxflow.load_config(config_path("karate_gcn.py")))
  with pytest.raises(ConfigError, match="graph models .* are not exported"):
    export.Source(workdir, "best")


def test_preprocessing_replays_the_adaptation():
  """Resize and grayscale in the program are data.adapt's, on the same stored pixels."""
  from jaxflow.data import adapt

  pixels = np.random.default_rng(1).integers(0, 256, (3, 16, 12, 3), dtype=np.uint8)
  adaptation = adapt.Adaptation(resize=(8, 6), grayscale=True)
  raw = inference.RawInput("image", (16, 12, 3), "uint8")
  program = np.asarray(jax.jit(lambda x: inference.preprocess(x, raw, adaptation))(pixels))
  host = adaptation.inputs(pixels.astype(np.float32) / np.float32(255.0))
  assert program.shape == (3, 8, 6, 1)
  np.testing.assert_allclose(program, host, atol=1e-6)


@pytest.mark.slow
def test_a_seeds_study_exports_as_one_ensemble(tmp_path):
  from jaxflow.seeds import study

  config = jaxflow.load_config(config_path("digits_mlp.py"), ["model.widths=(32,)", "train.epochs=2"])
  workdir = str(tmp_path / "study")
  study.run_seeds(config, workdir, seeds=3, vary="init", mode="vmap", quiet=True)
  card = jaxflow.export(workdir, str(tmp_path / "ensemble"))
  assert len(card["source"]["seeds"]) == 3 and card["output"]["std_name"] == "std_probabilities"
  evaluation = card["evaluation"]
  assert len(evaluation["seeds"]) == 3 and evaluation["seeds_mean"] == pytest.approx(np.mean(evaluation["seeds"]))
  assert 0 <= evaluation["disagreement_share"] <= 1
  # The ensemble is the mean of the seeds' own exported programs; its std, their spread.
  singles = [jaxflow.export(s["workdir"], str(tmp_path / f"seed{i}")) for i, s in enumerate(card["source"]["seeds"])]
  pixels = np.random.default_rng(2).integers(0, 256, (7, 8, 8, 1), dtype=np.uint8)
  each = np.stack([jaxflow.load_model(str(tmp_path / f"seed{i}"))(pixels)["probabilities"] for i in range(3)])
  out = jaxflow.load_model(str(tmp_path / "ensemble"))(pixels)
  np.testing.assert_allclose(out["probabilities"], each.mean(0), atol=1e-6)
  np.testing.assert_allclose(out["std_probabilities"], each.std(0), atol=1e-6)
  assert [s["evaluation"]["artifact"]["value"] for s in singles] == pytest.approx(evaluation["seeds"])


@pytest.mark.slow
def test_a_sequence_model_exports_with_its_lengths_as_an_input(tmp_path):
  config = jaxflow.load_config(config_path("adding_rnn.py"), ["train.epochs=2", "model.rnn_hidden=(16,)"])
  workdir = str(tmp_path / "adding")
  jaxflow.train(config, workdir, quiet=True)
  card = jaxflow.export(workdir, str(tmp_path / "model"))
  assert set(card["input"]["fields"]) == {"sequence", "lengths"} and card["output"]["name"] == "value"
  source = export.Source(workdir, "best")
  inputs, targets = export.raw_split(source, export.raw_input(source), "eval")
  model = jaxflow.load_model(str(tmp_path / "model"))
  value = model({k: v[:16] for k, v in inputs.items()})["value"]
  expected = source.model.apply({"params": source.params}, {k: v[:16] for k, v in inputs.items()}, train=False)
  np.testing.assert_allclose(value, np.asarray(expected), atol=1e-6)
  assert card["evaluation"]["artifact"]["name"] == "mae" and targets.dtype == np.float32


def test_inputs_that_are_not_numbers_are_one_line():
  spec = {"shape": [2], "dtype": "float32", "range": None}
  with pytest.raises(artifact.ArtifactError, match=r"dtype str32; the model takes \[batch, 2\] float32$"):
    artifact._checked(np.array([["a", "b"]]), spec, "inputs")
