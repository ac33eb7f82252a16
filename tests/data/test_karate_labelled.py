"""data.train_examples on the karate club: how many nodes are labelled (half per club), drawn per data seed."""

from __future__ import annotations

import numpy as np
import pytest

import jaxflow
from jaxflow import rng
from jaxflow.config import ConfigError
from jaxflow.data import graph_batches
from jaxflow.data import graphs as graph_data
from jaxflow.data.loading import DatasetError
from jaxflow.data.problem import resolve_problem
from tests.conftest import config_path


def karate(*overrides):
  return jaxflow.load_config(config_path("karate_gcn.py"), list(overrides))


def labelled(config) -> list[int]:
  host = graph_batches.karate_data(config, rng.streams(config)["data"])
  return np.flatnonzero(next(host.train_batches(0))["mask"]).tolist()


def test_default_labels_the_two_leaders_and_draws_nothing():
  assert labelled(karate()) == [0, 33]
  assert labelled(karate("seed=5")) == [0, 33]
  assert graph_batches.spec("karate").split_sizes == {"train": 34, "test": 34}  # unchanged without the field


def test_train_examples_labels_that_many_nodes_half_per_club_drawn_from_the_data_stream():
  club = graph_data.karate_club()["labels"]
  first = labelled(karate("data.train_examples=8"))
  assert len(first) == 8 and {0, 33} <= set(first)
  assert np.bincount(club[first]).tolist() == [4, 4]
  assert labelled(karate("data.train_examples=8")) == first  # the same data seed, the same nodes
  assert labelled(karate("data.train_examples=8", "seeds.data=1")) != first  # another data seed, others
  assert labelled(karate("data.train_examples=8", "seeds.init=1")) == first  # the init stream does not move them
  problem = resolve_problem(karate("data.train_examples=8"))
  assert (problem.train_size, problem.eval_size) == (8, 26)  # the eval nodes are the unlabelled ones


def test_draw_seed_keeps_the_leaders_and_is_reproducible():
  a = graph_data.karate_club(labelled_per_class=5, draw_seed=3)["train_mask"]
  b = graph_data.karate_club(labelled_per_class=5, draw_seed=3)["train_mask"]
  np.testing.assert_array_equal(a, b)
  assert a[0] and a[33] and a.sum() == 10


@pytest.mark.parametrize("count", [3, 0, 34, 40])
def test_a_count_the_club_cannot_serve_is_refused_before_training(count):
  with pytest.raises(DatasetError, match="labelled nodes, half per club"):
    graph_batches.karate_labelled_per_class(count)
  with pytest.raises(ConfigError, match=r"^config\.data\.train_examples="):
    resolve_problem(karate(f"data.train_examples={count}"))
