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
from tests.conftest import config_path, latest_params, max_param_diff, merge_overrides

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


# The remedies below are checked on the run's own assembled step (assemble.assemble: the data, weights,
# sampling probabilities and programs jaxflow.train uses), at the initial parameters, without dropout so the
# step's outputs are those of the eval-mode forward pass the reference computes.
REMEDY_BASE = (SKEW, "model.dropout_rate=0.0", "train.epochs=1")
CLASS_1_DRAWS = 7 * 128  # one oversampled epoch: as many draws as a uniform epoch uses (7 steps of 128)


def assembled(*overrides: str):
  from jaxflow.run import assemble

  return assemble.assemble([tiny_config(*REMEDY_BASE, *overrides)])


def step_loss_and_reference(run, gamma: float | None, weights: np.ndarray | None) -> tuple[float, float, float]:
  """The run's train-step loss on one known batch (every class-1 example, then the first 59 others: 64 rows
  with weights 18.1 and ~0.9 in the inverse-frequency run); the same loss computed here in float64 from the
  model's logits, mean_i w[y_i] * (1 - p_i)^gamma * -log p_i; and plain cross-entropy, mean_i -log p_i."""
  labels = np.asarray(run.data.train_labels)
  rows = np.concatenate([np.flatnonzero(labels == 1), np.flatnonzero(labels != 1)[:59]])
  batch = {
    "inputs": run.data.train_inputs[rows],
    "labels": run.data.train_labels[rows],
    "mask": jnp.ones(len(rows), jnp.float32),
  }
  logits = np.asarray(run.state.apply_fn({"params": run.state.params}, batch["inputs"], train=False), np.float64)
  _, metrics = run.parts.programs.host_step(run.state, batch=batch, dropout_stream=run.streams["dropout"])
  logged = float(metrics["loss"][0] / metrics["count"][0])
  log_p = logits - logits.max(1, keepdims=True)
  log_p = (log_p - np.log(np.exp(log_p).sum(1, keepdims=True)))[np.arange(len(rows)), labels[rows]]
  per_example = -log_p * (1.0 if gamma is None else (1.0 - np.exp(log_p)) ** gamma)
  w = np.ones(10) if weights is None else weights
  return logged, float(np.mean(w[labels[rows]] * per_example)), float(np.mean(-log_p))


def effective_number_weights(counts: np.ndarray, beta: float) -> np.ndarray:
  """Cui et al. 2019, w_c ~ (1 - beta) / (1 - beta^n_c), scaled so the mean weight over the examples is 1."""
  raw = (1 - beta) / (1 - beta ** counts.astype(np.float64))
  return raw * counts.sum() / (raw @ counts)


SKEW_COUNTS = np.array([100, 5] + [100] * 8)


@pytest.mark.parametrize(
  "overrides, gamma, weights",
  [
    # inverse frequency: w_c = (1 / n_c) * 905 / 10, so the rare class weighs 18.1 and the others 0.905
    (("class_weights=inverse_frequency",), None, 905 / (10 * SKEW_COUNTS)),
    (("class_weights=effective_number", "class_weights_beta=0.99"), None, effective_number_weights(SKEW_COUNTS, 0.99)),
    (("loss=focal", "focal_gamma=2.0"), 2.0, None),
  ],
)
def test_loss_remedies_change_the_train_step_loss_as_defined(overrides, gamma, weights):
  """A remedy the step ignored gives plain cross-entropy: at the initial parameters (p ~ 0.1 per class) the
  focal factor (1 - p)^2 ~ 0.8 and the weights (18.1 on 5 of 64 rows) move the loss by 10-60%, while the
  float32 step and the float64 reference agree to ~1e-6 relative (a 64-row mean of float32 terms of size ~2;
  rtol 1e-4 leaves a 100x margin)."""
  run = assembled(*overrides)
  logged, expected, plain = step_loss_and_reference(run, gamma, weights)
  assert logged == pytest.approx(expected, rel=1e-4)
  assert abs(expected - plain) > 0.05 * plain  # the reference itself tells the remedy from plain cross-entropy


def test_oversampling_draws_the_rare_class_in_the_runs_epoch_order():
  """The run's own epoch order (the program the chunked loop feeds its steps with): oversampled, class 1
  (5 of 905 examples) is drawn with probability 1/10 per draw, so over 896 draws its share is
  0.1 +- sqrt(0.1 * 0.9 / 896) = 0.1 +- 0.010, held to 5 standard errors; an ignored sampler gives the uniform
  order, a permutation, which holds class 1 at most 5 times (share <= 0.0056)."""
  run = assembled("data.sampler=oversample")
  order = np.asarray(run.parts.programs.indices(run.data, run.streams, 0))
  assert order.shape == (7, 128)
  share = np.mean(np.asarray(run.data.train_labels)[order.ravel()] == 1)
  assert abs(share - 0.1) < 5 * np.sqrt(0.1 * 0.9 / CLASS_1_DRAWS)


@pytest.fixture(scope="module")
def plain_skewed_run(tmp_path_factory):
  """The skewed run without a remedy (one fused epoch): what a silently ignored remedy would reproduce bitwise."""
  workdir = str(tmp_path_factory.mktemp("plain_skewed"))
  jaxflow.train(tiny_config(*REMEDY_BASE), workdir, quiet=True)
  return workdir


def test_imbalance_remedies_train(tmp_path, plain_skewed_run):
  """Oversampling through jaxflow.train (the fused epoch program, which draws its own order): a sampler the
  epoch ignored would compute exactly what the plain run computes (same streams, same data, same program), so
  its parameters would be bitwise equal. The loss remedies share the step function checked above with the
  fused epoch (programs.Programs builds one `step_fn` for both)."""
  summary = jaxflow.train(tiny_config(*REMEDY_BASE, "data.sampler=oversample"), str(tmp_path), quiet=True)
  assert np.isfinite(summary["final"]["train"]["loss"])
  assert 0 <= summary["final"]["eval"]["balanced_accuracy"] <= 1
  assert max_param_diff(latest_params(str(tmp_path)), latest_params(plain_skewed_run)) > 0


def test_long_tail_and_pairflip_noise(tmp_path):
  """imbalance_ratio=10: the largest class 10x the smallest; pairflip noise sends each flipped label c to
  c + 1 (mod 10) and nowhere else."""
  overrides = ("data.imbalance_ratio=10.0", "data.label_noise.kind=pairflip", "data.label_noise.rate=0.1")
  summary = jaxflow.train(tiny_config(*overrides, "train.epochs=1"), str(tmp_path), quiet=True)
  assert np.isfinite(summary["final"]["train"]["loss"])
  record = np.load(tmp_path / "label_noise.npz")
  clean, noisy, flipped = record["clean_labels"], record["noisy_labels"], record["flipped"]
  counts = np.bincount(clean, minlength=10)
  assert counts.max() / counts.min() == pytest.approx(10.0, rel=0.1)
  assert len(flipped) > 0
  np.testing.assert_array_equal(noisy[flipped], (clean[flipped] + 1) % 10)


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
