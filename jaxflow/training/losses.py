"""Losses and metrics per problem kind, as masked sums so they merge across batches and devices.

Shapes: `outputs` [batch, output_dim] (logits for classification), `labels` [batch] (int class ids for
multiclass and binary, float targets for regression), `mask` [batch] (1 for real examples, 0 for padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

LOSS_NAMES = ("cross_entropy", "bce", "focal", "mse", "mae")


def predictions(kind: str, outputs: jax.Array) -> jax.Array:
  """What L1/L2 compare with the target: class probabilities [b, c], P(label=1) [b], or values [b]."""
  if kind == "multiclass":
    return jax.nn.softmax(outputs)
  if kind == "binary":
    return jax.nn.sigmoid(outputs[:, 0])
  return outputs[:, 0]


def targets(kind: str, labels: jax.Array, num_outputs: int) -> jax.Array:
  if kind == "multiclass":
    return jax.nn.one_hot(labels, num_outputs)
  return labels.astype(jnp.float32)


def focal_loss(kind: str, outputs: jax.Array, labels: jax.Array, gamma: float) -> jax.Array:
  """-(1 - p_true)^gamma * log p_true per example (Lin et al. 2017): well-classified examples fade out.

  Multiclass over the softmax, binary over the sigmoid of the single logit (optax's sigmoid focal loss,
  no alpha: class balance is `class_weights`' job). gamma = 0 is exactly cross-entropy.
  """
  if kind == "binary":
    return optax.sigmoid_focal_loss(outputs[:, 0], labels.astype(outputs.dtype), gamma=gamma)
  log_p = jnp.take_along_axis(jax.nn.log_softmax(outputs), labels[:, None], axis=-1)[:, 0]
  return -((1.0 - jnp.exp(log_p)) ** gamma) * log_p


def per_example_loss(
  name: str, kind: str, *, outputs: jax.Array, labels: jax.Array, focal_gamma: float = 2.0
) -> jax.Array:
  """Loss of each example, [batch]."""
  if name == "cross_entropy":
    return optax.softmax_cross_entropy_with_integer_labels(outputs, labels)
  if name == "bce":
    return optax.sigmoid_binary_cross_entropy(outputs[:, 0], labels.astype(outputs.dtype))
  if name == "focal":
    return focal_loss(kind, outputs, labels, focal_gamma)
  error = predictions(kind, outputs) - targets(kind, labels, outputs.shape[-1])
  per_value = jnp.square(error) if name == "mse" else jnp.abs(error)
  # Mean over classes for one-hot targets, so the scale does not grow with the number of classes.
  return per_value.reshape(per_value.shape[0], -1).mean(axis=-1)


def masked_mean_loss(
  name: str, kind: str, *, outputs: jax.Array, labels: jax.Array, mask: jax.Array, focal_gamma: float = 2.0
) -> jax.Array:
  losses = per_example_loss(name, kind, outputs=outputs, labels=labels, focal_gamma=focal_gamma)
  return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def metric_sums(
  name: str,
  kind: str,
  *,
  outputs: jax.Array,
  labels: jax.Array,
  mask: jax.Array,
  losses: jax.Array | None = None,
  focal_gamma: float = 2.0,
) -> dict[str, jax.Array]:
  """Sums over the batch: `loss`, `count`, and `correct` (classification) or `abs_error` (regression).

  Kept as sums so a log interval, an epoch, or several devices merge by addition; divide by `count`
  on the host when logging (see `finalize_metrics`). `losses`: the per-example losses, when the caller
  has them already (the train step does), so they are not computed twice.
  """
  if losses is None:
    losses = per_example_loss(name, kind, outputs=outputs, labels=labels, focal_gamma=focal_gamma)
  sums = {"loss": jnp.sum(losses * mask), "count": jnp.sum(mask)}
  if kind == "multiclass":
    sums["correct"] = jnp.sum((jnp.argmax(outputs, -1) == labels) * mask)
  elif kind == "binary":
    sums["correct"] = jnp.sum(((outputs[:, 0] > 0) == (labels > 0)) * mask)
  else:
    sums["abs_error"] = jnp.sum(jnp.abs(outputs[:, 0] - labels) * mask)
  return sums


def predicted_class(kind: str, outputs: jax.Array) -> jax.Array:
  return (outputs[:, 0] > 0).astype(jnp.int32) if kind == "binary" else jnp.argmax(outputs, -1)


def confusion_sums(kind: str, *, outputs: jax.Array, labels: jax.Array, mask: jax.Array, num_classes: int) -> jax.Array:
  """[C, C] counts, rows the true class, columns the predicted one; a sum, so it merges like the others."""
  true = jax.nn.one_hot(labels, num_classes) * mask[:, None]
  return true.T @ jax.nn.one_hot(predicted_class(kind, outputs), num_classes)


def class_report(confusion: np.ndarray) -> dict[str, list[float] | float]:
  """Per-class precision, recall, F1 and support from a confusion matrix, plus balanced accuracy and macro F1.

  A class never predicted has precision 0 (sklearn's zero_division=0); balanced accuracy and macro F1
  average over the classes present in the evaluated data, so a class absent there does not count as 0.
  """
  confusion = np.asarray(confusion, np.float64)
  true_positive = np.diag(confusion)
  support, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
  precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
  recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
  denominator = precision + recall
  f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
  present = support > 0
  return {
    "balanced_accuracy": float(recall[present].mean()) if present.any() else 0.0,
    "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
    "precision": precision.tolist(),
    "recall": recall.tolist(),
    "f1": f1.tolist(),
    "support": support.astype(int).tolist(),
  }


def finalize_metrics(sums: dict, report: dict | None = None) -> dict[str, float]:
  """Host side: sums -> means (`loss`, `accuracy` or `mae`, plus `balanced_accuracy` and `macro_f1` when
  a `confusion` matrix came along); other scalar entries are passed through. `report`: the confusion
  matrix's `class_report`, when the caller has it already."""
  count = max(float(sums["count"]), 1.0)
  out = {"loss": float(sums["loss"]) / count}
  if "correct" in sums:
    out["accuracy"] = float(sums["correct"]) / count
  if "abs_error" in sums:
    out["mae"] = float(sums["abs_error"]) / count
  if "confusion" in sums:
    report = report or class_report(sums["confusion"])
    out["balanced_accuracy"], out["macro_f1"] = report["balanced_accuracy"], report["macro_f1"]
  return out
