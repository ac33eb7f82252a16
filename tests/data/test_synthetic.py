"""Generated data with a known answer: the adding problem, drawn from the run's `data` stream."""

from __future__ import annotations

import numpy as np

import jaxflow
from jaxflow import rng
from jaxflow.data import synthetic
from tests.conftest import config_path


def test_adding_problem_follows_its_rule():
  problem = synthetic.AddingProblem(train_size=300, test_size=50, min_len=5, max_len=12)
  splits = problem.generate(seed=3)
  train = splits["train"]
  sequence, lengths = train.inputs["sequence"], train.inputs["lengths"]
  assert sequence.shape == (300, 12, 2) and lengths.shape == (300,) and train.labels.shape == (300,)
  assert lengths.min() >= 5 and lengths.max() <= 12
  values, markers = sequence[..., 0], sequence[..., 1]
  steps = np.arange(12)[None, :]
  assert np.all(markers.sum(axis=1) == 2)
  assert np.all(markers[steps >= lengths[:, None]] == 0) and np.all(values[steps >= lengths[:, None]] == 0)
  np.testing.assert_allclose(train.labels, (values * markers).sum(axis=1), rtol=1e-6)
  # The constant predictor's MSE is 1/6 (the variance of a sum of two U(0, 1)).
  assert abs(np.var(train.labels) - 1 / 6) < 0.03


def test_generation_is_a_function_of_the_data_stream():
  base = jaxflow.load_config(config_path("adding_rnn.py"))
  pinned = jaxflow.load_config(config_path("adding_rnn.py"), ["seed=5", "seeds.data=0"])
  other = jaxflow.load_config(config_path("adding_rnn.py"), ["seeds.data=1"])

  def seed_of(c):
    return rng.dataset_seed(rng.streams(c)["data"])

  assert seed_of(base) == seed_of(pinned)  # seed 0 and data pinned to 0: the same stream
  assert seed_of(base) != seed_of(other)
  a = synthetic.GENERATED["adding"].generate(seed_of(base))["test"]
  b = synthetic.GENERATED["adding"].generate(seed_of(pinned))["test"]
  np.testing.assert_array_equal(a.inputs["sequence"], b.inputs["sequence"])


def test_adding_rnn_trains_end_to_end(tmp_path):
  summary = jaxflow.train(jaxflow.load_config(config_path("adding_rnn.py:test")), str(tmp_path / "adding"), quiet=True)
  assert set(summary["final"]["eval"]) == {"loss", "mae"}
  assert summary["steps"] == 2 * (400 // 100)
  assert np.isfinite(summary["final"]["eval"]["loss"])
