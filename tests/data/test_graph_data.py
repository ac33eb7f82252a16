"""jaxflow.data.graphs and graph_builders: karate club, graph_cycles through tfds (no TensorFlow), padding."""

from __future__ import annotations

import os
import sys

import jax
import jraph
import networkx as nx
import numpy as np
import pytest

from jaxflow import load_config, rng
from jaxflow.data import graph_batches, graph_builders, graph_cycles
from jaxflow.data import graphs as graph_data
from tests.conftest import config_path


def to_networkx(num_nodes: int, edges: np.ndarray) -> nx.Graph:
  g = nx.Graph()
  g.add_nodes_from(range(num_nodes))
  g.add_edges_from(np.asarray(edges).tolist())
  return g


def test_karate_club_graph_labels_and_masks():
  karate = graph_data.karate_club()
  graph, labels = karate["graph"], karate["labels"]
  assert graph.nodes.shape == (34, 34) and graph.nodes.dtype == np.float32
  np.testing.assert_array_equal(graph.nodes, np.eye(34))
  assert graph.senders.shape == graph.receivers.shape == (156,) and graph.senders.dtype == np.int32
  np.testing.assert_array_equal(graph.n_node, [34])
  np.testing.assert_array_equal(graph.n_edge, [156])
  pairs = {tuple(sorted(p)) for p in zip(graph.senders.tolist(), graph.receivers.tolist())}
  assert len(pairs) == 78
  directed = set(zip(graph.senders.tolist(), graph.receivers.tolist()))
  assert all((r, s) in directed for s, r in directed)  # every edge in both directions
  assert pairs == {tuple(sorted(e)) for e in nx.karate_club_graph().edges()}
  assert labels.dtype == np.int32 and np.bincount(labels).tolist() == [17, 17]
  assert labels[0] == 0 and labels[33] == 1  # Mr. Hi leads club 0, the Officer club 1
  assert np.flatnonzero(karate["train_mask"]).tolist() == [0, 33]
  np.testing.assert_array_equal(karate["eval_mask"], ~karate["train_mask"])
  assert karate["eval_mask"].sum() == 32


def test_karate_more_labelled_nodes_per_class():
  karate = graph_data.karate_club(labelled_per_class=3)
  train = np.flatnonzero(karate["train_mask"])
  assert len(train) == 6 and {0, 33} <= set(train.tolist())
  assert np.bincount(karate["labels"][train]).tolist() == [3, 3]
  with pytest.raises(ValueError, match="labelled_per_class"):
    graph_data.karate_club(labelled_per_class=17)


def test_generated_cycles_follow_the_rule_and_are_balanced():
  examples = graph_cycles.generate_cycles(11, "test")
  assert len(examples) == graph_cycles.CYCLES_SPLIT_SIZES["test"]
  labels = np.array([ex["label"] for ex in examples])
  assert np.bincount(labels).tolist() == [len(examples) // 2] * 2
  for ex in examples:
    n, edges = ex["num_nodes"], ex["edges"]
    g = to_networkx(n, edges)
    assert ex["label"] == int(not nx.is_forest(g))
    assert graph_cycles.MIN_NODES <= n <= graph_cycles.MAX_NODES
    assert n - 3 <= len(edges) <= n - 1 and g.number_of_edges() == len(edges)  # no duplicates
    assert np.all(edges[:, 0] < edges[:, 1])
  # Edge counts relative to size follow one law in both classes: the count alone can't tell them apart.
  missing = np.array([ex["num_nodes"] - len(ex["edges"]) for ex in examples])
  for cls in (0, 1):
    assert set(missing[labels == cls].tolist()) == {1, 2, 3}


def test_cycles_graph_features():
  g = graph_cycles.cycles_graph(4, np.array([[0, 1], [0, 2], [0, 3]]))
  np.testing.assert_array_equal(np.argmax(g.nodes, axis=1), [3, 1, 1, 1])  # one-hot degree
  np.testing.assert_array_equal(g.n_edge, [6])


def test_dataset_seed():
  key = rng.stream_key(0, "data")
  seed = rng.dataset_seed(key)
  assert isinstance(seed, int) and 0 <= seed < 2**32
  assert rng.dataset_seed(rng.stream_key(0, "data")) == seed  # deterministic
  assert rng.dataset_seed(rng.stream_key(1, "data")) != seed
  assert rng.dataset_seed(jax.random.key_data(key)) == seed  # raw keys too


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """graph_cycles prepared twice for seed 3 (two data dirs) and once for seed 4."""
  dirs = [str(tmp_path_factory.mktemp(f"graphs_{i}")) for i in range(2)]
  loaded = {
    ("a", 3): graph_builders.load_graph_split("graph_cycles", "test", seed=3, data_dir=dirs[0]),
    ("b", 3): graph_builders.load_graph_split("graph_cycles", "test", seed=3, data_dir=dirs[1]),
    ("a", 4): graph_builders.load_graph_split("graph_cycles", "test", seed=4, data_dir=dirs[0]),
  }
  return dirs, loaded


def test_graph_cycles_through_tfds_without_tensorflow(prepared):
  import tensorflow_datasets as tfds

  dirs, _ = prepared
  files = os.listdir(os.path.join(dirs[0], "graph_cycles", "seed_3", "1.0.0"))
  assert "graph_cycles-test.array_record-00000-of-00001" in files
  source = tfds.data_source("graph_cycles/seed_3", split="test", data_dir=dirs[0], download=False)
  assert len(source) == graph_cycles.CYCLES_SPLIT_SIZES["test"]
  stored = [source[i] for i in range(len(source))]
  generated = graph_cycles.generate_cycles(3, "test")
  for got, want in zip(stored, generated, strict=True):  # stored order = generated order
    assert got["num_nodes"] == want["num_nodes"] and got["label"] == want["label"]
    np.testing.assert_array_equal(got["edges"], want["edges"])
    assert got["label"] == int(not nx.is_forest(to_networkx(got["num_nodes"], got["edges"])))
  assert "tensorflow" not in sys.modules


def test_load_graph_split_is_deterministic_per_seed(prepared):
  _, loaded = prepared
  (graphs_a, labels_a), (graphs_b, labels_b), (graphs_4, labels_4) = (loaded["a", 3], loaded["b", 3], loaded["a", 4])
  assert len(graphs_a) == len(labels_a) == graph_cycles.CYCLES_SPLIT_SIZES["test"]
  assert labels_a.dtype == np.int32 and np.bincount(labels_a).tolist() == [500, 500]
  np.testing.assert_array_equal(labels_a, labels_b)
  for ga, gb in zip(graphs_a, graphs_b, strict=True):
    for field in ("nodes", "senders", "receivers", "n_node", "n_edge"):
      np.testing.assert_array_equal(getattr(ga, field), getattr(gb, field))
  assert not np.array_equal(labels_a, labels_4)  # another seed, another dataset
  assert [int(g.n_node[0]) for g in graphs_a] != [int(g.n_node[0]) for g in graphs_4]
  g = graphs_a[0]
  assert g.nodes.shape == (g.n_node[0], graph_cycles.DEGREE_FEATURES) and g.senders.dtype == np.int32


def test_load_graph_split_errors(prepared):
  from jaxflow.data import DatasetError

  dirs, _ = prepared
  with pytest.raises(DatasetError, match="not a generated graph dataset"):
    graph_builders.load_graph_split("digits", "train", seed=0, data_dir=dirs[0])
  with pytest.raises(DatasetError, match="non-negative"):
    graph_builders.load_graph_split("graph_cycles", "train", seed=-1, data_dir=dirs[0])
  with pytest.raises(DatasetError, match="not a split"):
    graph_builders.load_graph_split("graph_cycles", "validation", seed=3, data_dir=dirs[0])


def line_graphs(sizes) -> list[jraph.GraphsTuple]:
  """Path graphs with the given node counts: n nodes, 2(n-1) directed edges."""
  return [graph_cycles.cycles_graph(n, np.array([[i, i + 1] for i in range(n - 1)])) for n in sizes]


def test_budgets_cover_every_batch():
  sizes = [3, 4, 5, 6, 7, 8, 9, 10, 20, 30]
  graphs = line_graphs(sizes)
  budgets = graph_data.budgets_for(graphs, 3)
  assert len(budgets) == 3 and budgets == sorted(budgets)
  assert all(b[2] == 4 and b[0] % 8 == 0 and b[1] % 8 == 0 for b in budgets)
  worst_nodes, worst_edges = 30 + 20 + 10, 2 * (29 + 19 + 9)
  assert budgets[-1][0] > worst_nodes and budgets[-1][1] >= worst_edges
  assert budgets[0][0] > 3 * np.mean(sizes)  # the smallest holds an average batch
  assert graph_data.budgets_for(line_graphs([5] * 6), 2) == [(16, 16, 3)]  # equal graphs: one budget


def test_pad_batch_picks_smallest_fitting_budget():
  graphs = line_graphs([3, 4])  # 7 nodes, 10 directed edges
  budgets = [(8, 16, 3), (16, 16, 3), (32, 32, 5)]
  padded, mask = graph_data.pad_batch(graphs, budgets)
  assert padded.nodes.shape == (8, graph_cycles.DEGREE_FEATURES)
  assert padded.senders.shape == (16,) and padded.senders.dtype == np.int32
  assert padded.n_node.tolist() == [3, 4, 1] and padded.n_edge.tolist() == [4, 6, 6]
  np.testing.assert_array_equal(mask, [True, True, False])
  # Padding edges join the padding node to itself: no real node receives or sends one.
  assert set(padded.senders[10:].tolist()) == set(padded.receivers[10:].tolist()) == {7}
  padded, mask = graph_data.pad_batch(line_graphs([3, 3, 3]), budgets)  # 3 graphs: needs n_graph 5
  assert padded.n_node.shape == (5,) and mask.tolist() == [True] * 3 + [False] * 2
  with pytest.raises(ValueError, match="fits no budget"):
    graph_data.pad_batch(line_graphs([40]), budgets)


def test_graph_batches_follow_order_and_mask_padding():
  sizes = [3, 4, 5, 6, 7]
  graphs, labels = line_graphs(sizes), np.array([0, 1, 0, 1, 1])
  order = [4, 0, 3, 1, 2]
  batches = list(graph_data.graph_batches(graphs, labels, 2, order=order))
  assert len(batches) == 3
  seen = []
  for padded, batch_labels, mask in batches:
    assert padded.n_node.shape == batch_labels.shape == mask.shape == (3,)
    real = int(mask.sum())
    seen += [int(n) for n in padded.n_node[:real]]
    assert batch_labels[real:].tolist() == [0] * (3 - real)
  assert seen == [sizes[i] for i in order]
  assert [b[1][: int(b[2].sum())].tolist() for b in batches] == [[1, 0], [1, 1], [0]]
  assert [int(b[2].sum()) for b in batches] == [2, 2, 1]  # the last batch is shorter, same budget set


def test_graph_cycles_train_examples_takes_the_first_n(prepared):
  """`data.train_examples` on graph_cycles: the first N graphs of the generated train split, N // batch steps
  (it was silently ignored once: 62 steps over ~2,000 graphs where 64 graphs were asked for)."""

  def config(n):
    overrides = [f"data.data_dir={prepared[0][0]}", "train.batch_size=16"]
    return load_config(config_path("graph_cycles_gcn.py"), overrides + ([f"data.train_examples={n}"] if n else []))

  stream = rng.stream_key(3, "data")
  (graphs, labels), _ = graph_batches.cycles_splits(config(40), stream)
  (all_graphs, all_labels), _ = graph_batches.cycles_splits(config(None), stream)
  assert len(graphs) == len(labels) == 40 and len(all_graphs) > 40
  assert list(labels) == list(all_labels[:40]) and [g.n_node.tolist() for g in graphs] == [
    g.n_node.tolist() for g in all_graphs[:40]
  ]
  data = graph_batches.cycles_data(config(40), stream)
  assert data.steps_per_epoch == 40 // 16 and len(list(data.train_batches(0))) == 40 // 16
