"""Losses and metrics per problem kind, as masked sums so they merge across batches and devices.

Shapes: `outputs` [batch, output_dim] (logits for classification), `labels` [batch] (int class ids for
multiclass and binary, float targets for regression), `mask` [batch] (1 for real examples, 0 for padding).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

PROBLEM_KINDS = ("multiclass", "binary", "regression")
DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "bce", "regression": "mse"}
# L1/L2 on a classification problem compare predicted probabilities with the one-hot target (the
# classic "MSE for classification"); cross-entropy has no meaning for a real-valued target.
COMPATIBLE_LOSSES = {
    "multiclass": ("cross_entropy", "mse", "mae"),
    "binary": ("bce", "mse", "mae"),
    "regression": ("mse", "mae"),
}
LOSS_NAMES = ("cross_entropy", "bce", "mse", "mae")


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


def per_example_loss(name: str, kind: str, *, outputs: jax.Array, labels: jax.Array) -> jax.Array:
  """Loss of each example, [batch]."""
  if name == "cross_entropy":
    return optax.softmax_cross_entropy_with_integer_labels(outputs, labels)
  if name == "bce":
    return optax.sigmoid_binary_cross_entropy(outputs[:, 0], labels.astype(outputs.dtype))
  error = predictions(kind, outputs) - targets(kind, labels, outputs.shape[-1])
  per_value = jnp.square(error) if name == "mse" else jnp.abs(error)
  # Mean over classes for one-hot targets, so the scale does not grow with the number of classes.
  return per_value.reshape(per_value.shape[0], -1).mean(axis=-1)


def masked_mean_loss(name: str, kind: str, *, outputs: jax.Array, labels: jax.Array, mask: jax.Array) -> jax.Array:
  losses = per_example_loss(name, kind, outputs=outputs, labels=labels)
  return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def metric_sums(
    name: str, kind: str, *, outputs: jax.Array, labels: jax.Array, mask: jax.Array, losses: jax.Array | None = None
) -> dict[str, jax.Array]:
  """Sums over the batch: `loss`, `count`, and `correct` (classification) or `abs_error` (regression).

  Kept as sums so a log interval, an epoch, or several devices merge by addition; divide by `count`
  on the host when logging (see `finalize_metrics`). `losses`: the per-example losses, when the caller
  has them already (the train step does), so they are not computed twice.
  """
  if losses is None:
    losses = per_example_loss(name, kind, outputs=outputs, labels=labels)
  sums = {"loss": jnp.sum(losses * mask), "count": jnp.sum(mask)}
  if kind == "multiclass":
    sums["correct"] = jnp.sum((jnp.argmax(outputs, -1) == labels) * mask)
  elif kind == "binary":
    sums["correct"] = jnp.sum(((outputs[:, 0] > 0) == (labels > 0)) * mask)
  else:
    sums["abs_error"] = jnp.sum(jnp.abs(outputs[:, 0] - labels) * mask)
  return sums


def finalize_metrics(sums: dict) -> dict[str, float]:
  """Host side: sums -> means (`loss`, `accuracy` or `mae`); other entries are passed through."""
  count = max(float(sums["count"]), 1.0)
  out = {"loss": float(sums["loss"]) / count}
  if "correct" in sums:
    out["accuracy"] = float(sums["correct"]) / count
  if "abs_error" in sums:
    out["mae"] = float(sums["abs_error"]) / count
  return out
