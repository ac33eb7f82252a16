"""Per-group evaluation (`data.group_feature`): each group's accuracy, balanced accuracy and calibration
error at every evaluation, in metrics.jsonl, summary.json and TensorBoard.

The sums are checked against sklearn and a plain numpy calibration loop on random outputs; the trained run
against its own overall metrics (the groups partition the evaluation split, so their count-weighted
accuracies must add up to the overall accuracy exactly) and TensorBoard's own reader.
"""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

import jaxflow
from jaxflow.config import ConfigError
from jaxflow.training import group_metrics
from tests.conftest import config_path

FAST = ["model.widths=(16,)", "train.batch_size=16", "train.epochs=3", "train.histogram_every=1000"]


def reference_ece(confidence, correct, bins=group_metrics.BINS) -> float:
  which = np.minimum((confidence * bins).astype(int), bins - 1)
  return sum(abs(correct[which == k].sum() - confidence[which == k].sum()) for k in range(bins)) / len(confidence)


@pytest.mark.parametrize("kind", ["multiclass", "binary"])
def test_group_sums_match_sklearn_and_a_numpy_calibration(kind):
  rng = np.random.default_rng(0)
  n, classes = 64, (4 if kind == "multiclass" else 2)
  outputs = rng.normal(size=(n, classes if kind == "multiclass" else 1)).astype(np.float32) * 2
  labels = rng.integers(0, classes, n)
  group = rng.integers(0, 3, n)
  mask = (np.arange(n) < 60).astype(np.float32)  # four padding rows: in no group's counts
  sums = group_metrics.group_sums(
    kind,
    outputs=jnp.asarray(outputs),
    labels=jnp.asarray(labels),
    mask=jnp.asarray(mask),
    groups=jnp.asarray(np.eye(3, dtype=np.float32)[group]),
    num_classes=classes,
  )
  report = group_metrics.report(sums, ("a", "b", "c"))
  if kind == "multiclass":
    e = np.exp(outputs - outputs.max(1, keepdims=True))
    probabilities = e / e.sum(1, keepdims=True)
    predicted, confidence = probabilities.argmax(1), probabilities.max(1)
  else:
    p = 1 / (1 + np.exp(-outputs[:, 0]))
    predicted, confidence = (outputs[:, 0] > 0).astype(int), np.maximum(p, 1 - p)
  for g, name in enumerate("abc"):
    rows = (group == g) & (mask > 0)
    assert report[name]["count"] == rows.sum()
    assert report[name]["accuracy"] == pytest.approx(np.mean(predicted[rows] == labels[rows]), abs=1e-6)
    assert report[name]["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(labels[rows], predicted[rows]))
    ece = reference_ece(confidence[rows], (predicted[rows] == labels[rows]).astype(float))
    assert report[name]["ece"] == pytest.approx(ece, abs=1e-5)
  scalars = group_metrics.scalars(sums, ("a", "b", "c"))
  accuracies = [report[n]["accuracy"] for n in "abc"]
  assert scalars["group/worst_accuracy"] == min(accuracies)
  assert scalars["group/accuracy_gap"] == pytest.approx(max(accuracies) - min(accuracies))


@pytest.fixture(scope="module")
def grouped_npz(tmp_path_factory) -> str:
  """240 rows, 8 features, 3 classes; a rare group (camera 'b', ~10%) whose features are scaled and shifted."""
  rng = np.random.default_rng(3)
  n = 240
  y = rng.integers(0, 3, n)
  camera = np.where(rng.random(n) < 0.1, "b", "a")
  x = rng.normal(size=(n, 8)) + 2.0 * np.eye(3, 8)[y]
  x[camera == "b"] = x[camera == "b"] * 1.5 + 1.0
  split = np.where(np.arange(n) < 180, "train", "test")
  path = str(tmp_path_factory.mktemp("groups") / "grouped.npz")
  np.savez(path, x=x, y=y, split=split, camera=camera)
  return path


def test_every_evaluation_reports_each_group(grouped_npz, tmp_path):
  from tensorboard.backend.event_processing import event_accumulator

  workdir = str(tmp_path / "run")
  overrides = [*FAST, f"data.name=npz:{grouped_npz}", "data.input_feature=features", "data.group_feature=camera"]
  summary = jaxflow.train(jaxflow.load_config(config_path("digits_mlp.py"), overrides), workdir, quiet=True)
  final, per_group = summary["final"]["eval"], summary["final"]["per_group"]
  with np.load(grouped_npz) as f:
    test_cameras = f["camera"][180:]
  assert {k: v["count"] for k, v in per_group.items()} == {
    "a": int((test_cameras == "a").sum()),
    "b": int((test_cameras == "b").sum()),
  }
  # The groups partition the evaluation split: their accuracies, weighted by count, are the overall accuracy.
  weighted = sum(v["count"] * v["accuracy"] for v in per_group.values()) / len(test_cameras)
  assert weighted == pytest.approx(final["accuracy"], abs=1e-6)
  assert final["group/a/accuracy"] == per_group["a"]["accuracy"] and 0 <= final["group/b/ece"] <= 1
  assert final["group/worst_accuracy"] == min(v["accuracy"] for v in per_group.values())
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    evals = [r for r in map(json.loads, f) if r["split"] == "eval"]
  assert len(evals) == 3 and all("group/b/balanced_accuracy" in r for r in evals)
  acc = event_accumulator.EventAccumulator(os.path.join(workdir, "tb"), size_guidance={event_accumulator.SCALARS: 0})
  acc.Reload()
  tb = [e.value for e in acc.Scalars("eval/group/b/accuracy")]
  assert tb == pytest.approx([r["group/b/accuracy"] for r in evals], abs=1e-6)


@pytest.mark.parametrize(
  ("overrides", "says"),
  [
    (["problem.kind=regression", "train.monitor=eval/mae"], "needs a classification problem"),
    (["data.group_feature=lens"], "data.group_feature names 'lens', which is not an array"),
  ],
)
def test_group_feature_refusals_are_one_line(grouped_npz, tmp_path, overrides, says):
  base = [*FAST, f"data.name=npz:{grouped_npz}", "data.input_feature=features", "data.group_feature=camera"]
  fields = {o.split("=", 1)[0] for o in overrides}
  config = jaxflow.load_config(
    config_path("digits_mlp.py"), [o for o in base if o.split("=", 1)[0] not in fields] + overrides
  )
  with pytest.raises(ConfigError, match=says) as raised:
    jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  assert "\n" not in str(raised.value)
  assert not os.path.exists(os.path.join(tmp_path, "run", "checkpoints"))
