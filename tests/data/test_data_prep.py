"""Data preparation through the training loop: skewed classes and their remedies, label noise,
per-class metrics and the confusion matrix, as a user reads them back (metrics.jsonl, TensorBoard)."""

from __future__ import annotations

import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.training import steps
from tests.conftest import config_path, merge_overrides

# Class 1 kept at 5 examples, the others at 100: 905 training examples, 7 steps of 128 per epoch.
SKEW = "data.class_counts=(100, 5, 100, 100, 100, 100, 100, 100, 100, 100)"
TINY = [
  "model.widths=(32,)",
  "train.batch_size=128",
  "train.epochs=2",
  "checkpoint.every_epochs=0",
  "train.class_report_every=1",
]


def tiny_config(*overrides: str):
  return jaxflow.load_config(config_path("digits_mlp.py"), merge_overrides(*TINY, *overrides))


def read_jsonl(path):
  with open(path) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def skewed_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("skewed"))
  config = tiny_config(SKEW, "data.label_noise.rate=0.2")
  return workdir, config, jaxflow.train(config, workdir, quiet=True)


def test_skewed_training_set_has_the_requested_size(skewed_run):
  _, _, summary = skewed_run
  assert summary["steps"] == 2 * (905 // 128)


def test_per_class_metrics_and_confusion_in_metrics_jsonl(skewed_run):
  workdir, _, summary = skewed_run
  evals = [r for r in read_jsonl(os.path.join(workdir, "metrics.jsonl")) if r["split"] == "eval"]
  assert len(evals) == 2
  last = evals[-1]
  confusion = np.array(last["confusion"])
  assert confusion.shape == (10, 10) and confusion.sum() == 360  # the whole (balanced, clean) test split
  assert last["per_class"]["support"] == confusion.sum(axis=1).tolist()
  recall = np.diag(confusion) / confusion.sum(axis=1)
  np.testing.assert_allclose(last["per_class"]["recall"], recall, rtol=1e-12)
  assert last["balanced_accuracy"] == pytest.approx(recall.mean())
  assert last["accuracy"] == pytest.approx(np.trace(confusion) / 360)
  assert 0 <= last["macro_f1"] <= 1
  assert summary["final"]["confusion"] == last["confusion"]
  assert summary["final"]["eval"]["balanced_accuracy"] == pytest.approx(last["balanced_accuracy"])


def test_confusion_matrix_is_a_tensorboard_image(skewed_run):
  from PIL import Image
  from tensorboard.backend.event_processing import event_accumulator

  workdir, _, _ = skewed_run
  acc = event_accumulator.EventAccumulator(
    os.path.join(workdir, "tb"), size_guidance={event_accumulator.IMAGES: 0, event_accumulator.SCALARS: 0}
  )
  acc.Reload()
  assert "eval/confusion_matrix" in acc.Tags()["images"]
  images = acc.Images("eval/confusion_matrix")
  assert [i.step for i in images] == [7, 14]
  picture = Image.open(io.BytesIO(images[-1].encoded_image_string))
  assert picture.size == (images[-1].width, images[-1].height) and picture.width > 200
  assert {"eval/recall/class_1", "eval/f1/class_9", "eval/balanced_accuracy", "eval/macro_f1"} <= set(
    acc.Tags()["scalars"]
  )


def test_label_noise_is_recorded_with_the_clean_labels(skewed_run, tmp_path):
  workdir, config, _ = skewed_run
  record = np.load(os.path.join(workdir, "label_noise.npz"))
  clean, noisy = record["clean_labels"], record["noisy_labels"]
  assert clean.shape == noisy.shape == (905,)
  assert np.bincount(clean, minlength=10).tolist() == [100, 5] + [100] * 8
  np.testing.assert_array_equal(record["flipped"], np.flatnonzero(clean != noisy))
  assert abs(len(record["flipped"]) / 905 - 0.2) < 0.05
  summary = json.load(open(os.path.join(workdir, "label_noise.json")))
  assert summary["flipped"] == len(record["flipped"]) and summary["examples"] == 905
  assert summary["expected_rate"] == pytest.approx(0.2)
  # a different noise seed flips other examples; the same config flips the same ones
  other = str(tmp_path / "other_noise")
  jaxflow.train(
    tiny_config(SKEW, "data.label_noise.rate=0.2", "seeds.noise=7", "train.epochs=1"),
    other,
    quiet=True,
  )
  other_record = np.load(os.path.join(other, "label_noise.npz"))
  np.testing.assert_array_equal(other_record["clean_labels"], clean)  # the skew (data stream) is unchanged
  assert not np.array_equal(other_record["flipped"], record["flipped"])


def test_oversampling_draws_classes_evenly():
  labels = np.repeat(np.arange(3), [90, 9, 1])
  probabilities = jnp.asarray(jaxflow.data.balance.oversample_probabilities(labels, 3))
  key = jax.random.key(0)
  indices = steps.epoch_indices(key, 0, key, probabilities, num_examples=100, steps=300, batch_size=100)
  drawn = np.bincount(labels[np.asarray(indices).ravel()], minlength=3) / indices.size
  np.testing.assert_allclose(drawn, [1 / 3] * 3, atol=0.01)
  again = steps.epoch_indices(key, 0, key, probabilities, num_examples=100, steps=300, batch_size=100)
  np.testing.assert_array_equal(indices, again)


@pytest.mark.parametrize(
  "overrides",
  [
    (SKEW, "data.sampler=oversample"),
    (SKEW, "class_weights=inverse_frequency"),
    (SKEW, "class_weights=effective_number", "class_weights_beta=0.99"),
    (SKEW, "loss=focal", "focal_gamma=2.0"),
    ("data.imbalance_ratio=10.0", "data.label_noise.kind=pairflip", "data.label_noise.rate=0.1"),
  ],
)
def test_imbalance_remedies_train(tmp_path, overrides):
  summary = jaxflow.train(tiny_config(*overrides), str(tmp_path), quiet=True)
  assert np.isfinite(summary["final"]["train"]["loss"])
  assert 0 <= summary["final"]["eval"]["balanced_accuracy"] <= 1


def test_class_weights_follow_the_training_labels():
  """The step's weights are the inverse frequencies of the (skewed) training labels."""
  from jaxflow.run import assemble
  from jaxflow.run.validate import validate

  config = tiny_config(SKEW, "class_weights=inverse_frequency")
  problem = validate(config)
  data = assemble.device_data(config, problem, jaxflow.rng.streams(config))
  labels = np.asarray(data.train_labels)
  np.testing.assert_allclose(
    data.class_weights, jaxflow.data.balance.class_weights(labels, 10, "inverse_frequency"), rtol=1e-6
  )
  assert data.class_weights[1] / data.class_weights[0] == pytest.approx(100 / 5, rel=1e-5)


@pytest.mark.parametrize(
  "overrides, field",
  [
    (("data.class_counts=(1, 2)",), "config.data.class_counts"),
    (("data.class_counts=(500, 5, 5, 5, 5, 5, 5, 5, 5, 5)",), "config.data.class_counts"),
    (("data.imbalance_ratio=0.5",), "config.data.imbalance_ratio"),
    (("data.sampler=bogus",), "config.data.sampler"),
    (("class_weights=bogus",), "config.class_weights"),
    (("data.label_noise.rate=1.5",), "config.data.label_noise.rate"),
    (("data.label_noise.kind=matrix",), "data.label_noise.matrix"),
    (("train.monitor=eval/bogus",), "config.train.monitor"),
  ],
)
def test_bad_data_preparation_settings_are_one_line_errors(tmp_path, overrides, field):
  workdir = tmp_path / "never_written"
  with pytest.raises(ConfigError) as e:
    jaxflow.train(tiny_config(*overrides), str(workdir), quiet=True)
  assert field in str(e.value) and "\n" not in str(e.value)
  assert not workdir.exists()
