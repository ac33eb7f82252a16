"""Dataset kinds: every by-name distinction in one registry, and one rule for steps per epoch."""

from __future__ import annotations

import pytest

from jaxflow.data import registry
from jaxflow.data.steps import steps_per_epoch


@pytest.mark.parametrize(
  ("name", "kind", "graphs", "stored", "generated", "whole_graph"),
  [
    ("digits", registry.STORED, False, True, False, False),
    ("csv:/tmp/x.csv", registry.STORED, False, True, False, False),
    ("mnist", registry.STORED, False, True, False, False),
    ("adding", registry.GENERATED, False, False, True, False),
    ("graph_cycles", registry.GRAPHS, True, False, True, False),
    ("karate", registry.WHOLE_GRAPH, True, False, False, True),
  ],
)
def test_each_dataset_has_one_kind(name, kind, graphs, stored, generated, whole_graph):
  found = registry.dataset_kind(name)
  assert found is kind
  assert (found.graphs, found.stored, found.generated, found.whole_graph) == (graphs, stored, generated, whole_graph)
  assert found.on_device == (not graphs) and found.class_preparation == (not graphs)
  assert (found.load_splits is None) == graphs and (found.load_host_data is None) == (not graphs)


def test_graph_datasets_are_the_graph_kinds():
  assert set(registry.GRAPH_DATASETS) == {"graph_cycles", "karate"}


def test_steps_per_epoch_is_full_batches():
  assert steps_per_epoch(1437, 128) == 11  # the digits MLP: the 29 left over wait for the next permutation
  assert steps_per_epoch(2000, 32) == 62
  assert steps_per_epoch(128, 128) == 1
  assert steps_per_epoch(34, 64) == 1  # the karate club: one full-graph batch whatever the batch size
