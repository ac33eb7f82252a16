"""Per-group evaluation metrics (`data.group_feature`): each group's accuracy, balanced accuracy and
expected calibration error, at every evaluation.

The device side adds, per batch, a confusion matrix per group and per-group calibration bins (sums, so
they merge over batches, devices and log intervals like every other eval sum); the host side turns them
into `group/<name>/<metric>` scalars (metrics.jsonl, TensorBoard, summary.json) plus the worst group's
accuracy and the gap between the best and the worst group, the figures a fairness question asks for.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.training import losses

BINS = 10  # calibration bins of equal width over the predicted class's probability


def group_sums(
  kind: str, *, outputs: jax.Array, labels: jax.Array, mask: jax.Array, groups: jax.Array, num_classes: int
):
  """{group_confusion [G, C, C], group_calibration [G, 3, BINS]} of one batch; `groups` [b, G] one-hot.
  Calibration rows: examples, summed confidence, summed correctness per bin."""
  weights = groups * mask[:, None]
  predicted = losses.predicted_class(kind, outputs)
  true_1h, pred_1h = jax.nn.one_hot(labels, num_classes), jax.nn.one_hot(predicted, num_classes)
  confusion = jnp.einsum("bg,bc,bd->gcd", weights, true_1h, pred_1h)
  if kind == "binary":
    p = jax.nn.sigmoid(outputs[:, 0])
    confidence = jnp.maximum(p, 1 - p)
  else:
    confidence = jnp.max(jax.nn.softmax(outputs, -1), -1)
  correct = (predicted == labels.astype(predicted.dtype)).astype(jnp.float32)
  bins = jax.nn.one_hot(jnp.clip((confidence * BINS).astype(jnp.int32), 0, BINS - 1), BINS)
  per_bin = [jnp.ones_like(confidence), confidence, correct]
  calibration = jnp.stack([jnp.einsum("bg,b,bk->gk", weights, v, bins) for v in per_bin], axis=1)
  return {"group_confusion": confusion, "group_calibration": calibration}


def report(sums: dict, names) -> dict[str, dict]:
  """{group name: {count, accuracy, balanced_accuracy, ece, recall}} of the groups that had examples."""
  if "group_confusion" not in sums or not names:
    return {}
  confusion, calibration = np.asarray(sums["group_confusion"]), np.asarray(sums["group_calibration"], np.float64)
  out = {}
  for g, name in enumerate(names):
    count = float(confusion[g].sum())
    if count == 0:
      continue
    classes = losses.class_report(confusion[g])
    examples, confidence, correct = calibration[g]
    out[name] = {
      "count": int(round(count)),
      "accuracy": float(np.trace(confusion[g]) / count),
      "balanced_accuracy": classes["balanced_accuracy"],
      "ece": float(np.abs(correct - confidence).sum() / count),
      "recall": classes["recall"],
    }
  return out


def scalars(sums: dict, names) -> dict[str, float]:
  """The scalars every evaluation records: per group, then the worst group's accuracy and the gap."""
  groups = report(sums, names)
  out = {f"group/{n}/{k}": float(v) for n, r in groups.items() for k, v in r.items() if k != "recall"}
  if groups:
    accuracies = [r["accuracy"] for r in groups.values()]
    out["group/worst_accuracy"], out["group/accuracy_gap"] = min(accuracies), max(accuracies) - min(accuracies)
  return out
