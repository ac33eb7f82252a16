"""jaxflow.audit: every planted defect of a small synthetic dataset is found, and only those.

The dataset (built once per module): 6x6x3 images, uniform noise, 4 classes with class 3 never used.
Train labels follow the 8-cycle 0,0,0,0,0,1,1,2 (150/60/30 examples: imbalance ratio 5 by hand count),
test and `shifted` labels cycle 0,1,2. Planted:
  train 10 = 11 = 12 (label 0, one exact group), train 20 = 21 (labels 0, 1: exact and conflicting),
  train 31 = train 30 + noise (near), test 6 = train 40 (same label: leakage), test 5 = train 41
  (labels 2 vs 0: leakage and cross-split conflict), test 7 = train 50 + noise (near leakage);
  `daylight` ("day" for class 0, "night" otherwise, flipped for every 10th example), `exposure`
  (continuous, follows daylight), `camera` (independent of everything); `shifted` is test-like but 0.05
  brighter.
"""

from __future__ import annotations

import json
import math

import matplotlib.image
import numpy as np
import pytest
from scipy.stats import contingency

from jaxflow.auditing import AuditSplit, AuditThresholds, audit, cramers_v, write_report

SHAPE = (6, 6, 3)
CLASS_NAMES = ["tank", "truck", "car", "bike"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _metadata(labels: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
  day = (labels == 0) ^ (np.arange(len(labels)) % 10 == 0)
  return {
    "daylight": np.where(day, "day", "night"),
    "exposure": day + rng.random(len(labels)),
    "camera": rng.integers(0, 3, len(labels)),
  }


def _split(labels: np.ndarray, rng: np.random.Generator, offset: float = 0.0) -> AuditSplit:
  inputs = rng.random((len(labels),) + SHAPE, dtype=np.float32) + np.float32(offset)
  return AuditSplit(inputs, labels.astype(np.int32), _metadata(labels, rng))


def _noise(rng: np.random.Generator) -> np.ndarray:
  return (1e-3 * rng.standard_normal(SHAPE)).astype(np.float32)


@pytest.fixture(scope="module")
def splits() -> dict[str, AuditSplit]:
  rng = np.random.default_rng(0)
  train = _split(np.array([0, 0, 0, 0, 0, 1, 1, 2])[np.arange(240) % 8], rng)
  test = _split(np.arange(120) % 3, rng)
  shifted = _split(np.arange(120) % 3, rng, offset=0.05)
  x, t = train.inputs, test.inputs
  x[11] = x[12] = x[10]
  x[21] = x[20]
  x[31] = x[30] + _noise(rng)
  t[6], t[5] = x[40], x[41]
  t[7] = x[50] + _noise(rng)
  return {"train": train, "test": test, "shifted": shifted}


@pytest.fixture(scope="module")
def report(splits) -> dict:
  return audit(splits, num_classes=4, class_names=CLASS_NAMES)


def test_class_balance_matches_hand_count(report):
  train = report["class_balance"]["splits"]["train"]
  assert train["counts"] == [150, 60, 30, 0]
  assert train["imbalance_ratio"] == pytest.approx(150 / 30)
  assert train["empty_classes"] == [3] and train["flagged"]
  test = report["class_balance"]["splits"]["test"]
  assert test["counts"] == [40, 40, 40, 0] and test["imbalance_ratio"] == 1.0 and not test["flagged"]


def test_exact_duplicates_within_and_across_splits(report):
  exact = report["duplicates"]["exact"]
  train = exact["within"]["train"]
  assert [g["indices"] for g in train["groups"]] == [[10, 11, 12], [20, 21]]
  assert (train["num_groups"], train["num_redundant_copies"]) == (2, 3)
  assert exact["within"]["test"]["num_groups"] == 0 and exact["within"]["shifted"]["num_groups"] == 0
  leak = exact["across"]["train/test"]
  assert [(p["index_a"], p["index_b"]) for p in leak["pairs"]] == [(41, 5), (40, 6)]
  assert (leak["num_b_in_a"], leak["fraction_b_in_a"]) == (2, 2 / 120)
  assert exact["across"]["train/shifted"]["num_pairs"] == 0 and exact["across"]["test/shifted"]["num_pairs"] == 0


def test_near_duplicates_found_exactly(report):
  dup = report["duplicates"]
  assert dup["projection_dims"] == 32  # 108 dims: the projected search path
  within = dup["near"]["within"]["train"]
  assert [(p["index_a"], p["index_b"]) for p in within["pairs"]] == [(30, 31)]
  assert 0 < within["pairs"][0]["distance"] < dup["near_radius"]
  assert within["num_label_disagreements"] == 1  # labels 1 and 2
  across = dup["near"]["across"]["train/test"]
  assert [(p["index_a"], p["index_b"]) for p in across["pairs"]] == [(50, 7)] and across["num_b_near_a"] == 1
  others = [dup["near"]["within"][s]["num_pairs"] for s in ("test", "shifted")]
  others += [dup["near"]["across"][k]["num_pairs"] for k in ("train/shifted", "test/shifted")]
  assert others == [0, 0, 0, 0]


def test_near_duplicates_in_few_dimensions_searched_without_projection():
  rng = np.random.default_rng(1)
  x = rng.standard_normal((300, 8)).astype(np.float32)
  x[200] = x[100] + np.float32(1e-3)
  x[250] = x[100]  # an exact copy is not also a near duplicate of 100, but is one of 200
  split = AuditSplit(x, (np.arange(300) % 2).astype(np.int32), {})
  dup = audit({"train": split}, num_classes=2, eval_split=None)["duplicates"]
  assert dup["projection_dims"] is None
  assert [(p["index_a"], p["index_b"]) for p in dup["near"]["within"]["train"]["pairs"]] == [(100, 200), (200, 250)]


@pytest.mark.parametrize("dims", [16, 100])  # searched as is, and through the random projection
def test_near_pairs_match_brute_force(dims):
  rng = np.random.default_rng(dims)
  x = rng.standard_normal((200, dims)).astype(np.float32)
  scale = np.geomspace(0.002, 0.5, 40)[:, None]  # pairs on both sides of the radius (~0.1 x NN distance)
  x[100:140] = x[:40] + (scale * rng.standard_normal((40, dims))).astype(np.float32)
  dup = audit({"train": AuditSplit(x, np.zeros(200, np.int32), {})}, num_classes=1, eval_split=None)["duplicates"]
  distances = np.sqrt(np.square(x[:, None, :].astype(np.float64) - x[None, :, :]).sum(-1))
  i, j = np.nonzero(np.triu(distances <= dup["near_radius"], k=1))
  near = dup["near"]["within"]["train"]
  assert 5 < near["num_pairs"] < 40 and near["num_pairs"] == len(i)
  assert [(p["index_a"], p["index_b"]) for p in near["pairs"]] == list(zip(i.tolist(), j.tolist()))[:20]


def test_conflicting_labels_within_and_across(report):
  conflicts = report["conflicting_labels"]
  assert conflicts["within"]["train"]["groups"] == [{"indices": [20, 21], "labels": [0, 1]}]
  assert conflicts["within"]["test"]["num_groups"] == 0
  across = conflicts["across"]["train/test"]
  assert across["groups"] == [{"indices_a": [41], "labels_a": [0], "indices_b": [5], "labels_b": [2]}]


def test_shift_flagged_for_shifted_split_only(splits, report):
  unshifted = report["shift"]["input_shift"]
  assert unshifted["split_b"] == "test" and not unshifted["flagged"]
  shifted = audit(splits, num_classes=4, eval_split="shifted")["shift"]["input_shift"]
  assert shifted["flagged"] and shifted["ks_p_value"] < 0.01 and shifted["ks_statistic"] > 0.5
  assert shifted["mean_difference"] == pytest.approx(0.05, abs=0.01)
  train_stats = report["shift"]["splits"]["train"]
  assert train_stats["axis"] == "channel" and len(train_stats["channel_mean"]) == 3
  assert train_stats["mean"] == pytest.approx(float(splits["train"].inputs.mean()), abs=1e-5)
  assert train_stats["std"] == pytest.approx(float(splits["train"].inputs.std()), abs=1e-5)


def test_label_shift_total_variation(report):
  label = report["shift"]["label_shift"]
  train, test = np.array([150, 60, 30]) / 240, np.ones(3) / 3
  assert label["total_variation"] == pytest.approx(0.5 * np.abs(train - test).sum())
  assert label["flagged"]


def test_cramers_v_on_a_hand_computed_table():
  table = np.array([[20, 10], [5, 15]])
  # n = 50, expected [[15, 15], [10, 10]]: chi2 = 2 * 25/15 + 2 * 25/10 = 25/3, phi2 = chi2 / n = 1/6.
  assert cramers_v(table, corrected=False) == pytest.approx(math.sqrt(1 / 6))
  assert cramers_v(table, corrected=False) == pytest.approx(
    contingency.association(table, method="cramer", correction=False)
  )
  # Bergsma: phi2 - (r-1)(k-1)/(n-1) = 1/6 - 1/49, r~ = k~ = 2 - 1/49.
  assert cramers_v(table) == pytest.approx(math.sqrt((1 / 6 - 1 / 49) / (1 - 1 / 49)))
  assert cramers_v(np.array([[5, 0], [7, 0]])) is None  # one label: undefined


def test_attribute_bias_flags_planted_attribute_only(report):
  attrs = report["attribute_bias"]["attributes"]
  daylight = attrs["daylight"]
  assert daylight["kind"] == "categorical" and daylight["values"] == ["day", "night"] and daylight["flagged"]
  assert set(daylight["splits"]) == {"train", "test", "shifted", "all"}
  assert all(p["cramers_v"] >= 0.6 for p in daylight["splits"].values())
  assert daylight["splits"]["train"]["p_value"] < 1e-10 and daylight["splits"]["train"]["mutual_info_bits"] > 0.2
  assert sum(map(sum, daylight["splits"]["all"]["table"])) == 480
  # Every 10th train example is flipped: k = 0, 10, ..., 230 has k % 8 in {0, 2, 4, 6}, six each, so
  # 18 of class 0 go to night and 6 of class 1 to day.
  assert daylight["splits"]["train"]["table"] == [[132, 6, 0, 0], [18, 54, 30, 0]]
  exposure = attrs["exposure"]
  assert exposure["kind"] == "binned" and len(exposure["values"]) == 5 and exposure["flagged"]
  camera = attrs["camera"]
  assert not camera["flagged"] and all(p["cramers_v"] < 0.3 for p in camera["splits"].values())


def test_summary_names_each_planted_problem(report):
  text = "\n".join(report["summary"]["findings"])
  for expected in (
    "2 'test' examples (1.7%) exactly copied from 'train'",
    "1 'test' example with a near duplicate in 'train'",
    "1 input in both 'train' and 'test' with different labels",
    "split 'train': 1 group of identical inputs with different labels",
    "split 'train' holds 2 groups of exact duplicates",
    "split 'train' holds 1 near-duplicate pair",
    "split 'train' is imbalanced: class 'tank' has 5.0x the examples of class 'car'",
    "no examples of class(es) 'bike'",
    "attribute 'daylight' predicts the label (Cramér's V",
    "attribute 'exposure' predicts the label",
  ):
    assert expected in text
  assert "camera" not in text and "measurement shift" not in text


def test_bad_input_is_refused(splits):
  with pytest.raises(ValueError, match="'validation'"):
    audit(splits, num_classes=4, eval_split="validation")
  short = AuditSplit(splits["test"].inputs, splits["test"].labels, {"daylight": np.zeros(3)})
  broken = splits["test"].inputs.copy()
  broken[[3, 9], 0, 0, 0] = np.nan
  with pytest.raises(ValueError, match=r"split 'test': 2 examples have NaN or infinite inputs, e.g. indices \[3, 9\]"):
    audit({"train": splits["train"], "test": AuditSplit(broken, splits["test"].labels, {})}, num_classes=4)
  with pytest.raises(ValueError, match=r"metadata 'daylight' has shape \(3,\), need one value per example: \(120,\)"):
    audit({"train": splits["train"], "test": short}, num_classes=4)


def test_write_report_files(report, splits, tmp_path):
  paths = write_report(report, str(tmp_path))
  assert set(paths) == {
    "json",
    "markdown",
    "class_counts",
    "mean_intensity",
    "attribute:daylight",
    "attribute:exposure",
    "attribute:camera",
  }
  with open(paths["json"]) as f:
    assert json.load(f) == report
  with open(paths["markdown"]) as f:
    md = f.read()
  # The page states the numbers this file plants and counts by hand (not read back from the writer): the
  # class counts and shares per split, the duplicate groups and leaked pairs, and each split's mean and std
  # of all values (numpy, 3 significant digits as the page prints them).
  for line in (
    "| tank | 150 (62.5%) | 40 (33.3%) | 40 (33.3%) |",
    "| truck | 60 (25.0%) | 40 (33.3%) | 40 (33.3%) |",
    "| car | 30 (12.5%) | 40 (33.3%) | 40 (33.3%) |",
    "| bike | 0 (0.0%) | 0 (0.0%) | 0 (0.0%) |",
    "| train | 2 | 5 | 3 | 1 | 2 |",
    "| train | 10, 11, 12 | 0, 0, 0 |",
    "| train/test | 41 / 5 | 0 / 2 |",
    "| train/test | 40 / 6 | 0 / 0 |",
    *(f"| {name} | {np.mean(split.inputs):.3g} | {np.std(split.inputs):.3g} |" for name, split in splits.items()),
  ):
    assert line in md, line
  for finding in report["summary"]["findings"]:
    assert f"- {finding}" in md
  for section in (
    "## Findings",
    "## Class balance",
    "## Duplicates",
    "## Conflicting labels",
    "## Train/eval shift",
    "## Attribute bias",
  ):
    assert section in md
  assert "(plots/attribute_daylight.png)" in md
  for key, path in paths.items():
    if key in ("json", "markdown"):
      continue
    with open(path, "rb") as f:
      assert f.read(8) == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 300 and image.std() > 0.05


def test_thresholds_move_the_flags(splits):
  lenient = AuditThresholds(imbalance_ratio=10.0, cramers_v=0.99, near_duplicate_ratio=1e-6)
  report = audit(splits, num_classes=4, thresholds=lenient)
  assert not report["class_balance"]["splits"]["train"]["flagged"]
  assert not report["attribute_bias"]["attributes"]["daylight"]["flagged"]
  assert report["duplicates"]["near"]["within"]["train"]["num_pairs"] == 0
  assert report["meta"]["thresholds"]["cramers_v"] == 0.99
