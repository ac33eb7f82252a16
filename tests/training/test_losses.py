"""jaxflow.training.losses: hand-computed losses per problem kind, masking, metric sums."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from jaxflow.data import problem
from jaxflow.training import losses

# Multiclass: 3 examples, 3 classes.
MC_LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 2.0, -1.0]])
MC_LABELS = np.array([0, 2, 0])
# Binary: one logit per example; label 1 means positive.
BIN_LOGITS = np.array([[1.5], [-0.5], [0.0], [2.0]])
BIN_LABELS = np.array([1, 0, 1, 0])
# Regression: one output per example.
REG_OUTPUTS = np.array([[1.0], [2.5], [-1.0]])
REG_LABELS = np.array([0.5, 2.5, 1.0])


def softmax(z):
  e = np.exp(z - z.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def sigmoid(z):
  return 1.0 / (1.0 + np.exp(-z))


def per_example(name, kind, outputs, labels):
  out = losses.per_example_loss(name, kind, outputs=jnp.asarray(outputs, jnp.float32), labels=jnp.asarray(labels))
  return np.asarray(out)


def test_cross_entropy_by_hand():
  # -log softmax(z)[y] = log(sum exp z) - z[y]
  expected = np.log(np.exp(MC_LOGITS).sum(-1)) - MC_LOGITS[np.arange(3), MC_LABELS]
  np.testing.assert_allclose(per_example("cross_entropy", "multiclass", MC_LOGITS, MC_LABELS), expected, rtol=1e-6)
  # First example written out: log(e^2 + e + 1) - 2.
  np.testing.assert_allclose(expected[0], np.log(np.e**2 + np.e + 1) - 2)


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_multiclass_l2_l1_compare_probabilities_with_one_hot(name):
  error = softmax(MC_LOGITS) - np.eye(3)[MC_LABELS]
  per_class = error**2 if name == "mse" else np.abs(error)
  expected = per_class.mean(-1)  # mean over the 3 classes
  np.testing.assert_allclose(per_example(name, "multiclass", MC_LOGITS, MC_LABELS), expected, rtol=1e-6)


def test_bce_by_hand():
  z, y = BIN_LOGITS[:, 0], BIN_LABELS
  expected = np.where(y == 1, np.log1p(np.exp(-z)), np.log1p(np.exp(z)))
  got = per_example("bce", "binary", BIN_LOGITS, BIN_LABELS)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert got[2] == pytest.approx(np.log(2.0), rel=1e-6)  # logit 0: p = 1/2 either way


@pytest.mark.parametrize("name", ["mse", "mae"])
def test_binary_l2_l1_compare_probability_with_label(name):
  error = sigmoid(BIN_LOGITS[:, 0]) - BIN_LABELS
  expected = error**2 if name == "mse" else np.abs(error)
  np.testing.assert_allclose(per_example(name, "binary", BIN_LOGITS, BIN_LABELS), expected, rtol=1e-6)


def test_regression_mse_mae_by_hand():
  np.testing.assert_allclose(per_example("mse", "regression", REG_OUTPUTS, REG_LABELS), [0.25, 0.0, 4.0], rtol=1e-6)
  np.testing.assert_allclose(per_example("mae", "regression", REG_OUTPUTS, REG_LABELS), [0.5, 0.0, 2.0], rtol=1e-6)


def test_masked_mean_loss_values():
  mask = jnp.array([1.0, 1.0, 1.0])
  got = losses.masked_mean_loss("mse", "regression", outputs=REG_OUTPUTS, labels=REG_LABELS, mask=mask)
  assert float(got) == pytest.approx((0.25 + 0.0 + 4.0) / 3, rel=1e-6)
  mask = jnp.array([1.0, 0.0, 1.0])
  got = losses.masked_mean_loss("mse", "regression", outputs=REG_OUTPUTS, labels=REG_LABELS, mask=mask)
  assert float(got) == pytest.approx((0.25 + 4.0) / 2, rel=1e-6)
  # An all-padding batch gives 0, not nan.
  got = losses.masked_mean_loss("mse", "regression", outputs=REG_OUTPUTS, labels=REG_LABELS, mask=jnp.zeros(3))
  assert float(got) == 0.0


CASES = {
  # kind: (loss, outputs, labels, padding outputs, padding labels) -- padding chosen to disagree loudly
  "multiclass": (
    "cross_entropy",
    MC_LOGITS,
    MC_LABELS,
    np.array([[-30.0, 30.0, 0.0], [0.0, 0.0, 0.0]]),
    np.array([0, 1]),
  ),
  "binary": ("bce", BIN_LOGITS, BIN_LABELS, np.array([[-40.0], [0.0]]), np.array([1, 1])),
  "regression": ("mse", REG_OUTPUTS, REG_LABELS, np.array([[100.0], [0.0]]), np.array([-100.0, 7.0])),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_padding_does_not_change_mean_or_sums(kind):
  name, outputs, labels, pad_outputs, pad_labels = CASES[kind]
  n = len(labels)
  padded_outputs = jnp.asarray(np.concatenate([outputs, pad_outputs]), jnp.float32)
  padded_labels = jnp.asarray(np.concatenate([labels, pad_labels]))
  mask = jnp.asarray([1.0] * n + [0.0] * len(pad_labels))
  real = dict(outputs=jnp.asarray(outputs, jnp.float32), labels=jnp.asarray(labels), mask=jnp.ones(n))
  padded = dict(outputs=padded_outputs, labels=padded_labels, mask=mask)

  mean_real = float(losses.masked_mean_loss(name, kind, **real))
  mean_padded = float(losses.masked_mean_loss(name, kind, **padded))
  assert mean_padded == pytest.approx(mean_real, rel=1e-6)
  assert mean_real == pytest.approx(float(np.mean(per_example(name, kind, outputs, labels))), rel=1e-6)
  # Without the mask the padding would have changed the mean: the test data can tell.
  unmasked = float(losses.masked_mean_loss(name, kind, **{**padded, "mask": jnp.ones(len(mask))}))
  assert abs(unmasked - mean_real) > 1e-2

  sums_real = losses.metric_sums(name, kind, **real)
  sums_padded = losses.metric_sums(name, kind, **padded)
  assert set(sums_real) == set(sums_padded)
  for key in sums_real:
    assert float(sums_padded[key]) == pytest.approx(float(sums_real[key]), rel=1e-6), key
  assert float(sums_padded["count"]) == n


def test_multiclass_metrics():
  sums = losses.metric_sums(
    "cross_entropy", "multiclass", outputs=jnp.asarray(MC_LOGITS), labels=jnp.asarray(MC_LABELS), mask=jnp.ones(3)
  )
  # argmax per row: 0, 2, 1 against labels 0, 2, 0 -> 2 correct.
  assert set(sums) == {"loss", "count", "correct"}
  assert float(sums["correct"]) == 2.0
  assert float(sums["count"]) == 3.0
  metrics = losses.finalize_metrics(sums)
  assert metrics["accuracy"] == pytest.approx(2 / 3)
  expected_loss = np.mean(np.log(np.exp(MC_LOGITS).sum(-1)) - MC_LOGITS[np.arange(3), MC_LABELS])
  assert metrics["loss"] == pytest.approx(expected_loss, rel=1e-6)
  assert set(metrics) == {"loss", "accuracy"}


def test_binary_metrics_threshold_at_zero_logit():
  sums = losses.metric_sums(
    "bce", "binary", outputs=jnp.asarray(BIN_LOGITS), labels=jnp.asarray(BIN_LABELS), mask=jnp.ones(4)
  )
  # logit > 0 predicts 1: predictions 1, 0, 0 (logit 0 is not > 0), 1 against labels 1, 0, 1, 0 -> 2 correct.
  assert float(sums["correct"]) == 2.0
  metrics = losses.finalize_metrics(sums)
  assert metrics["accuracy"] == pytest.approx(0.5)
  z, y = BIN_LOGITS[:, 0], BIN_LABELS
  assert metrics["loss"] == pytest.approx(
    np.mean(np.where(y == 1, np.log1p(np.exp(-z)), np.log1p(np.exp(z)))), rel=1e-6
  )


def test_regression_metrics_mae():
  sums = losses.metric_sums(
    "mse", "regression", outputs=jnp.asarray(REG_OUTPUTS), labels=jnp.asarray(REG_LABELS), mask=jnp.ones(3)
  )
  assert set(sums) == {"loss", "count", "abs_error"}
  metrics = losses.finalize_metrics(sums)
  assert set(metrics) == {"loss", "mae"}
  assert metrics["mae"] == pytest.approx((0.5 + 0.0 + 2.0) / 3, rel=1e-6)
  assert metrics["loss"] == pytest.approx((0.25 + 0.0 + 4.0) / 3, rel=1e-6)


def test_sums_merge_by_addition():
  """Two half batches summed, then finalized, equal the whole batch: sums are the merge format."""
  kw = dict(outputs=jnp.asarray(MC_LOGITS), labels=jnp.asarray(MC_LABELS))
  whole = losses.metric_sums("cross_entropy", "multiclass", **kw, mask=jnp.ones(3))
  first = losses.metric_sums("cross_entropy", "multiclass", **kw, mask=jnp.array([1.0, 0.0, 0.0]))
  rest = losses.metric_sums("cross_entropy", "multiclass", **kw, mask=jnp.array([0.0, 1.0, 1.0]))
  merged = {k: first[k] + rest[k] for k in whole}
  assert losses.finalize_metrics(merged) == pytest.approx(losses.finalize_metrics(whole), rel=1e-6)


def test_finalize_empty_sums_is_zero_not_nan():
  metrics = losses.finalize_metrics({"loss": 0.0, "count": 0.0, "correct": 0.0})
  assert metrics == {"loss": 0.0, "accuracy": 0.0}


def test_default_losses_are_compatible():
  assert set(problem.DEFAULT_LOSS) == set(problem.PROBLEM_KINDS)
  for kind, name in problem.DEFAULT_LOSS.items():
    assert name in problem.COMPATIBLE_LOSSES[kind] and set(problem.COMPATIBLE_LOSSES[kind]) <= set(losses.LOSS_NAMES)
  assert "cross_entropy" not in problem.COMPATIBLE_LOSSES["regression"]


def test_focal_loss_by_hand_and_gamma_zero_is_cross_entropy():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
  labels = jnp.array([0, 2])
  p = np.exp([2.0, 0.0]) / np.array([np.exp(2.0) + 1 + np.exp(-1.0), 3.0])  # p_true of each example
  expected = -((1 - p) ** 2) * np.log(p)
  got = losses.per_example_loss("focal", "multiclass", outputs=logits, labels=labels, focal_gamma=2.0)
  np.testing.assert_allclose(got, expected, rtol=1e-5)
  ce = losses.per_example_loss("cross_entropy", "multiclass", outputs=logits, labels=labels)
  np.testing.assert_allclose(
    losses.per_example_loss("focal", "multiclass", outputs=logits, labels=labels, focal_gamma=0.0), ce, rtol=1e-6
  )
  # binary: one logit, p = sigmoid
  z, y = jnp.array([[1.5], [-0.5]]), jnp.array([1, 1])
  q = 1 / (1 + np.exp(-np.array([1.5, -0.5])))
  np.testing.assert_allclose(
    losses.per_example_loss("focal", "binary", outputs=z, labels=y, focal_gamma=1.0), -(1 - q) * np.log(q), rtol=1e-5
  )


def test_confusion_and_class_report_match_sklearn():
  from sklearn.metrics import balanced_accuracy_score, confusion_matrix, precision_recall_fscore_support

  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 200)
  logits = rng.normal(size=(200, 4)) + 2.0 * np.eye(4)[labels] * (rng.random(200) < 0.6)[:, None]
  mask = (rng.random(200) < 0.9).astype(np.float32)
  confusion = np.asarray(
    losses.confusion_sums(
      "multiclass", outputs=jnp.asarray(logits), labels=jnp.asarray(labels), mask=jnp.asarray(mask), num_classes=4
    )
  )
  kept = mask > 0
  predicted = logits.argmax(-1)
  np.testing.assert_array_equal(confusion, confusion_matrix(labels[kept], predicted[kept], labels=range(4)))
  report = losses.class_report(confusion)
  precision, recall, f1, support = precision_recall_fscore_support(
    labels[kept], predicted[kept], labels=range(4), zero_division=0
  )
  np.testing.assert_allclose(report["precision"], precision)
  np.testing.assert_allclose(report["recall"], recall)
  np.testing.assert_allclose(report["f1"], f1)
  assert report["support"] == support.tolist()
  assert report["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels[kept], predicted[kept]))
  assert report["macro_f1"] == pytest.approx(f1.mean())


def test_class_report_never_predicted_and_absent_classes():
  # class 2 absent from the data, class 1 never predicted
  report = losses.class_report(np.array([[5, 0, 0], [3, 0, 0], [0, 0, 0]]))
  assert report["precision"] == [5 / 8, 0.0, 0.0] and report["recall"] == [1.0, 0.0, 0.0]
  assert report["balanced_accuracy"] == pytest.approx(0.5)  # mean recall over the 2 present classes
