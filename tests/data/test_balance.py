"""Class imbalance on the host: skewed subsets, class weights, oversampling probabilities, label noise."""

from __future__ import annotations

import numpy as np
import pytest

from jaxflow.data import balance, label_noise

LABELS = np.repeat(np.arange(4), [50, 40, 30, 20]).astype(np.int32)


def test_class_counts_keep_exactly_the_requested_examples():
  counts = balance.requested_counts(LABELS, 4, class_counts=(50, 2, 0, 7), imbalance_ratio=None)
  keep = balance.skewed_subset(LABELS, counts, seed=3)
  assert np.bincount(LABELS[keep], minlength=4).tolist() == [50, 2, 0, 7]
  assert np.all(np.diff(keep) > 0)  # stored order kept
  assert np.array_equal(keep, balance.skewed_subset(LABELS, counts, seed=3))
  assert not np.array_equal(keep, balance.skewed_subset(LABELS, counts, seed=4))


def test_imbalance_ratio_is_a_long_tail_from_the_smallest_class():
  counts = balance.requested_counts(LABELS, 4, class_counts=None, imbalance_ratio=8.0)
  # n_max = 20 (the smallest class), n_c = floor(20 * 8^(-c/3)) = 20, 10, 5, 2 (2.5 floored)
  assert counts.tolist() == [20, 10, 5, 2]


@pytest.mark.parametrize(
  "kwargs, match",
  [
    (dict(class_counts=(60, 1, 1, 1)), "asks 60 examples of class 0, the split has 50"),
    (dict(class_counts=(1, 1)), "must be 4 non-negative ints"),
    (dict(class_counts=(0, 0, 0, 0)), "keeps no example"),
    (dict(class_counts=(1, 1, 1, 1), imbalance_ratio=2.0), "set one of them"),
    (dict(imbalance_ratio=0.5), "must be a number >= 1"),
  ],
)
def test_impossible_requests_name_the_field(kwargs, match):
  kwargs = {"class_counts": None, "imbalance_ratio": None, **kwargs}
  with pytest.raises(balance.ImbalanceError, match=match) as e:
    balance.requested_counts(LABELS, 4, **kwargs)
  assert str(e.value).startswith("data.") and "\n" not in str(e.value)


def test_inverse_frequency_weights_equalize_class_mass():
  w = balance.class_weights(LABELS, 4, "inverse_frequency")
  counts = np.bincount(LABELS)
  assert np.allclose(w * counts, (w * counts)[0])  # every class carries the same total weight
  assert np.isclose(np.mean(w[LABELS]), 1.0)  # normalized: the average example weighs 1


def test_effective_number_weights_lie_between_none_and_inverse_frequency():
  counts = np.bincount(LABELS).astype(float)
  beta = 0.99
  w = balance.class_weights(LABELS, 4, "effective_number", beta=beta)
  raw = (1 - beta) / (1 - beta**counts)  # Cui et al. 2019, by hand
  assert np.allclose(w, raw / np.dot(raw, counts) * counts.sum(), rtol=1e-6)
  assert np.all(np.diff(w) > 0)  # rarer classes weigh more
  inverse = balance.class_weights(LABELS, 4, "inverse_frequency")
  assert w[-1] / w[0] < inverse[-1] / inverse[0]
  assert np.allclose(balance.class_weights(LABELS, 4, "none"), 1.0)


def test_absent_class_gets_zero_weight_and_oversampling_balances_classes():
  labels = np.array([0, 0, 0, 1], np.int32)
  assert balance.class_weights(labels, 3, "inverse_frequency")[2] == 0
  p = balance.oversample_probabilities(labels, 3)
  assert np.isclose(p.sum(), 1.0)
  assert np.isclose(p[labels == 0].sum(), 0.5) and np.isclose(p[labels == 1].sum(), 0.5)


@pytest.mark.parametrize("kind", ["symmetric", "pairflip"])
def test_label_noise_rate_and_pattern(kind):
  labels = np.repeat(np.arange(5), 4000).astype(np.int32)
  t = label_noise.transition_matrix(5, kind=kind, rate=0.3)
  assert np.allclose(t.sum(axis=1), 1.0)
  noisy = label_noise.corrupt(labels, t, seed=0)
  assert np.array_equal(noisy.clean, labels)
  assert abs(noisy.summary()["realized_rate"] - 0.3) < 0.015  # 20000 draws: std ~0.003
  flipped_to = noisy.noisy[noisy.flipped]
  if kind == "pairflip":
    assert np.array_equal(flipped_to, (labels[noisy.flipped] + 1) % 5)
  else:  # a flip lands on each other class about equally
    pairs = np.bincount(labels[noisy.flipped] * 5 + flipped_to, minlength=25).reshape(5, 5)
    off_diagonal = pairs[~np.eye(5, dtype=bool)]
    assert np.all(np.diag(pairs) == 0) and off_diagonal.min() > 0.8 * off_diagonal.mean()
  assert np.array_equal(noisy.noisy, label_noise.corrupt(labels, t, seed=0).noisy)  # same seed, same flips


def test_label_noise_matrix_and_errors():
  t = label_noise.transition_matrix(2, kind="matrix", rate=0.0, matrix=((1.0, 0.0), (0.5, 0.5)))
  noisy = label_noise.corrupt(np.repeat([0, 1], 2000).astype(np.int32), t, seed=1)
  assert np.all(noisy.noisy[:2000] == 0)  # class 0 never flips
  assert abs(noisy.noisy[2000:].mean() - 0.5) < 0.05
  assert noisy.summary()["expected_rate"] == pytest.approx(0.25)
  for kwargs, match in [
    (dict(kind="matrix", rate=0.0, matrix=((0.5, 0.4), (0.0, 1.0))), "rows summing to 1"),
    (dict(kind="matrix", rate=0.0), "needs data.label_noise.matrix"),
    (dict(kind="symmetric", rate=1.5), r"rate=1.5 must be in \[0, 1\]"),
    (dict(kind="bogus", rate=0.1), "allowed: symmetric, pairflip, matrix"),
  ]:
    with pytest.raises(label_noise.LabelNoiseError, match=match):
      label_noise.transition_matrix(2, **kwargs)
