"""`graph_cycles`: generated graph classification (does the graph contain a cycle?), in pure numpy.

Deterministic in an integer seed, so the dataset is a function of the run's `data` stream. The tfds
builder that stores it on disk and the reader that turns its examples back into `jraph.GraphsTuple`s
are in `jaxflow.data.graph_builders`; this module is what both the builder and tests of the generator
need, and it imports no tfds.
"""

from __future__ import annotations

import jraph
import numpy as np

from jaxflow.data.graph_tuples import undirected_graph
from jaxflow.rng import stable_id

CYCLES_NAME = "graph_cycles"
CYCLES_CLASSES = ("forest", "cycle")  # label 1 iff the graph is not a forest
CYCLES_CHANCE = 0.5  # classes are exactly balanced in every split
CYCLES_SPLIT_SIZES = {"train": 2000, "test": 1000}
MIN_NODES, MAX_NODES = 6, 16
MAX_MISSING_EDGES = 3  # a graph on n nodes has n - 1 - k edges, k uniform in 0..MAX_MISSING_EDGES - 1
DEGREE_FEATURES = 6  # one-hot degree 0, 1, ..., 4, and 5 or more


def _random_tree(rng: np.random.Generator, n: int) -> np.ndarray:
  """A uniformly random labelled tree on n >= 2 nodes (decoded from a random Prüfer sequence), [n-1, 2]."""
  if n == 2:
    return np.array([[0, 1]])
  prufer = rng.integers(0, n, size=n - 2)
  degree = np.ones(n, dtype=np.int64)
  np.add.at(degree, prufer, 1)
  edges = []
  for node in prufer:
    leaf = int(np.flatnonzero(degree == 1)[0])
    edges.append((leaf, int(node)))
    degree[leaf] -= 1
    degree[node] -= 1
  u, v = np.flatnonzero(degree == 1)
  edges.append((int(u), int(v)))
  return np.array(edges)


def _components(n: int, edges: np.ndarray) -> np.ndarray:
  """Component id per node, int [n] (union-find; edges [m, 2])."""
  parent = list(range(n))

  def find(x: int) -> int:
    while parent[x] != x:
      parent[x] = parent[parent[x]]
      x = parent[x]
    return x

  for u, v in edges:
    parent[find(int(u))] = find(int(v))
  return np.array([find(i) for i in range(n)])


def _random_forest(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
  """A random forest with n nodes and m <= n - 1 edges: a uniform random tree minus n - 1 - m edges."""
  tree = _random_tree(rng, n)
  return tree[np.sort(rng.choice(n - 1, size=m, replace=False))]


def _with_one_cycle(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
  """A graph with n nodes, m edges and exactly one cycle: a forest of m - 1 edges plus one edge that
  joins two non-adjacent nodes of the same tree (the cycle's length is their distance + 1 >= 3)."""
  while True:
    forest = _random_forest(rng, n, m - 1)
    component = _components(n, forest)
    adjacent = {(min(u, v), max(u, v)) for u, v in forest.tolist()}
    pairs = [
      (u, v) for u in range(n) for v in range(u + 1, n) if component[u] == component[v] and (u, v) not in adjacent
    ]
    if pairs:  # else every tree has <= 2 nodes: draw again
      return np.concatenate([forest, np.array([pairs[rng.integers(len(pairs))]])])


def generate_cycles(seed: int, split: str, size: int | None = None) -> list[dict]:
  """Split `split` of graph_cycles for an integer `seed`: a list of {'num_nodes', 'edges', 'label'}.

  Each example: `num_nodes` n uniform in [6, 16]; `edges` int32 [m, 2], undirected, each once (u < v),
  with m = n - 1 - k, k uniform in {0, 1, 2} for *both* classes; `label` 1 iff the graph has a cycle
  (label 0: a random forest; label 1: a forest plus one edge closing a cycle). Labels are exactly
  balanced (`size` must be even) and in random order. Node ids are randomly permuted so that no
  position carries information.

  Why these choices: n and m follow the same law in both classes, so neither size nor edge count gives
  the answer (with m >= n a cycle is certain); a model has to see structure. Equal m means the cyclic
  graphs have one more connected component, which message passing can't count directly either.

  Deterministic in (seed, split): the generator is `np.random.default_rng([seed, stable_id(split)])`,
  so splits are independent streams and the same in every process and numpy version with PCG64.
  """
  size = CYCLES_SPLIT_SIZES[split] if size is None else size
  if size % 2:
    raise ValueError(f"size={size} must be even so that the classes are balanced.")
  rng = np.random.default_rng([seed, stable_id(split)])
  labels = rng.permutation(np.repeat([0, 1], size // 2))
  examples = []
  for label in labels:
    n = int(rng.integers(MIN_NODES, MAX_NODES + 1))
    m = n - 1 - int(rng.integers(MAX_MISSING_EDGES))
    edges = _with_one_cycle(rng, n, m) if label else _random_forest(rng, n, m)
    relabel = rng.permutation(n)
    edges = np.sort(relabel[edges], axis=1)
    edges = edges[np.lexsort((edges[:, 1], edges[:, 0]))].astype(np.int32)
    examples.append({"num_nodes": n, "edges": edges, "label": int(label)})
  return examples


def degree_features(num_nodes: int, edges: np.ndarray) -> np.ndarray:
  """float32 [num_nodes, DEGREE_FEATURES]: one-hot degree, the last column for degree >= 5.

  Generated graphs have no node attributes and node ids mean nothing across graphs; one-hot degree is
  the usual stand-in for unlabelled graphs (Xu et al. 2019, GIN, on the TU social datasets).
  """
  degree = np.bincount(np.asarray(edges).reshape(-1), minlength=num_nodes)
  return np.eye(DEGREE_FEATURES, dtype=np.float32)[np.minimum(degree, DEGREE_FEATURES - 1)]


def cycles_graph(num_nodes: int, edges: np.ndarray) -> jraph.GraphsTuple:
  """One graph_cycles example as a GraphsTuple: nodes [n, DEGREE_FEATURES], 2m directed edges."""
  return undirected_graph(num_nodes, edges, degree_features(num_nodes, edges))
