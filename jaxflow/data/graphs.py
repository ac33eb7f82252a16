"""Graph data: Zachary's karate club, a generated graph-classification set, and padded batching.

Graphs travel as `jraph.GraphsTuple`s of numpy arrays: `nodes` float32 [n_node_total, features],
`senders`/`receivers` int32 [n_edge_total] (an undirected edge appears once in each direction),
`n_node`/`n_edge` int32 [n_graph], `edges` and `globals` None (none of these graphs has edge or graph
attributes; models that want them start from constants).

Batches are padded with `jraph.pad_with_graphs` to one of a few fixed budgets `(n_node, n_edge, n_graph)`
so a jitted step compiles once per budget, not once per batch shape. The padding is one dummy graph
holding every padding node and edge (its edges join its first node to itself) plus empty graphs; no
padding edge touches a real node, so message passing, degree normalization and per-graph pooling never
mix padding into real outputs. `pad_batch` returns the graph mask that metrics and losses need.

`graph_cycles` is generated here (pure numpy, deterministic in an integer seed) and served through tfds
by the builder in `jaxflow.data.graph_builders`, like the digits: prepared without TensorFlow into
array_record, read back with `tfds.data_source`. tfds, networkx and the builder are imported lazily.

Pitfalls found on jraph 0.0.6.dev0 with jax 0.10 (each handled here or in jaxflow.models.gnn):
- `jraph.batch_np` returns int64 senders/receivers (offsets come from `np.cumsum`), so a batch of int32
  graphs changes dtype; `pad_batch` casts the index arrays back to int32 so every batch of a budget has
  the same avals (one compilation per budget, with or without x64).
- `jraph.pad_with_graphs` needs at least one padding node and one padding graph: a budget must hold
  strictly more nodes and graphs than the batch (`budgets_for` adds them).
- `jraph.get_node_padding_mask` / `get_graph_padding_mask` assume their input *was* padded: on an
  unpadded batch they report the last real graph (and its nodes) as padding. The graph mask therefore
  comes from `pad_batch`, which knows how many graphs are real.
- `jraph.zero_out_padding` and `jraph.get_fully_connected_graph` call `jax.tree_map`/`jax.tree_leaves`,
  which jax 0.10 removed (AttributeError): don't use them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import jraph
import numpy as np

from jaxflow.rng import stable_id

# --- Zachary's karate club ------------------------------------------------------------------------

KARATE_CLASSES = ("Mr. Hi", "Officer")  # label 0, label 1: the 'club' attribute networkx ships
KARATE_LEADERS = (0, 33)  # Mr. Hi (instructor) and John A. (administrator), one per class


def _undirected(num_nodes: int, edges: np.ndarray, nodes: np.ndarray) -> jraph.GraphsTuple:
  """One graph from undirected edges int [m, 2]: each edge becomes two directed ones (u->v, v->u)."""
  edges = np.asarray(edges, dtype=np.int32).reshape(-1, 2)
  senders = np.concatenate([edges[:, 0], edges[:, 1]])
  receivers = np.concatenate([edges[:, 1], edges[:, 0]])
  return jraph.GraphsTuple(
    nodes=nodes,
    edges=None,
    senders=senders,
    receivers=receivers,
    n_node=np.array([num_nodes], dtype=np.int32),
    n_edge=np.array([senders.shape[0]], dtype=np.int32),
    globals=None,
  )


def karate_club(*, labelled_per_class: int = 1) -> dict:
  """Zachary's karate club as networkx ships it, for semi-supervised node classification.

  Returns a dict:
    'graph': GraphsTuple with nodes float32 [34, 34] (one-hot node id), senders/receivers int32 [156]
      (the 78 undirected friendships, both directions), n_node [34], n_edge [156];
    'labels': int32 [34], 0 = Mr. Hi's club, 1 = the Officer's (the 'club' attribute; 17 each);
    'train_mask': bool [34], `labelled_per_class` labelled nodes per class: the two leaders (nodes 0 and
      33) when 1, then the lowest-numbered other members of each club;
    'eval_mask': bool [34], every other node (32 of them when 1 per class).

  Why one-hot ids: the club has no node attributes, and the task is transductive (train and evaluate
  on the same, fixed graph), so an identity feature matrix lets the first layer learn a free embedding
  per node while the graph convolution ties neighbours' embeddings together; this is what Kipf &
  Welling (2017) use on this graph. It would mean nothing across different graphs, which is why the
  generated set uses degrees instead.
  """
  import networkx as nx  # Lazy: only the karate club needs it.

  g = nx.karate_club_graph()
  num_nodes = g.number_of_nodes()
  labels = np.array([KARATE_CLASSES.index(g.nodes[i]["club"]) for i in range(num_nodes)], dtype=np.int32)
  if not 1 <= labelled_per_class < min(np.bincount(labels)):
    raise ValueError(f"labelled_per_class={labelled_per_class} must be in [1, {min(np.bincount(labels)) - 1}].")
  train_mask = np.zeros(num_nodes, dtype=bool)
  for cls, leader in enumerate(KARATE_LEADERS):
    members = [leader] + [i for i in range(num_nodes) if labels[i] == cls and i != leader]
    train_mask[members[:labelled_per_class]] = True
  graph = _undirected(num_nodes, np.array(g.edges()), np.eye(num_nodes, dtype=np.float32))
  return {"graph": graph, "labels": labels, "train_mask": train_mask, "eval_mask": ~train_mask}


# --- Generated graph classification: does the graph contain a cycle? --------------------------------

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
  return _undirected(num_nodes, edges, degree_features(num_nodes, edges))


def load_graph_split(
  name: str, split: str, *, seed: int, data_dir: str | None = None
) -> tuple[list[jraph.GraphsTuple], np.ndarray]:
  """Split `split` of generated dataset `name` for `seed`, through tfds: (graphs, labels int32 [n]).

  The builder config `seed_<seed>` makes the seed part of the dataset's identity (its own directory
  under data_dir/<name>/); it is prepared on first use and read with `tfds.data_source`, no TensorFlow.
  Each graph is a single-graph GraphsTuple (`cycles_graph`); stored order (shuffling is the loop's job).
  """
  import tensorflow_datasets as tfds

  from jaxflow.data import graph_builders  # Registers the builder with tfds.
  from jaxflow.data.loading import DatasetError, _prepare_quietly, resolve_data_dir

  if name not in graph_builders.GRAPH_BUILDERS:
    known = ", ".join(graph_builders.GRAPH_BUILDERS)
    raise DatasetError(f"data.name={name!r} is not a generated graph dataset; known: {known}.")
  if not isinstance(seed, (int, np.integer)) or seed < 0:
    raise DatasetError(f"seed={seed!r} must be a non-negative integer (see jaxflow.rng.dataset_seed).")
  data_dir = resolve_data_dir(data_dir)
  full_name = f"{name}/{graph_builders.config_name(int(seed))}"
  builder = tfds.builder(full_name, data_dir=data_dir, file_format="array_record")
  if not builder.is_prepared():
    _prepare_quietly(builder, full_name, data_dir)
  if split not in builder.info.splits:
    raise DatasetError(f"split={split!r} is not a split of {name!r}; it has: {', '.join(builder.info.splits)}.")
  source = builder.as_data_source(split=split)
  examples = list(source.__getitems__(list(range(len(source)))))
  graphs = [cycles_graph(int(ex["num_nodes"]), ex["edges"]) for ex in examples]
  return graphs, np.array([ex["label"] for ex in examples], dtype=np.int32)


# --- Padding to fixed budgets and batching ----------------------------------------------------------

Budget = tuple[int, int, int]  # (n_node, n_edge, n_graph) of a padded batch


def _round_up(x: float, multiple: int) -> int:
  return int(math.ceil(x / multiple) * multiple)


def budgets_for(graphs: Sequence[jraph.GraphsTuple], batch_size: int, num_budgets: int = 3) -> list[Budget]:
  """A few fixed (n_node, n_edge, n_graph) budgets, smallest first, that every batch fits in.

  Budgets depend on the graphs and batch size only, never on the order, so every epoch reuses them.
  The largest covers the worst batch (the `batch_size` biggest graphs); the smallest covers an average
  one (`batch_size` * mean size); those between are spaced geometrically. Node and edge counts are
  rounded up to multiples of 8, nodes get one extra (`pad_with_graphs` needs a padding node), and
  n_graph is batch_size + 1 (one padding graph), also for the last, shorter batch. Equal budgets merge,
  so equal-sized graphs give a single budget.
  """
  if batch_size < 1 or num_budgets < 1:
    raise ValueError(f"batch_size={batch_size} and num_budgets={num_budgets} must be >= 1.")
  k = min(batch_size, len(graphs))
  sizes = {}
  for field in ("n_node", "n_edge"):
    counts = np.sort([int(np.sum(getattr(g, field))) for g in graphs])[::-1]
    worst, typical = float(np.sum(counts[:k])), float(np.mean(counts)) * k
    ratios = np.linspace(0.0, 1.0, num_budgets) if num_budgets > 1 else np.ones(1)
    sizes[field] = [typical * (worst / max(typical, 1.0)) ** r if typical else worst for r in ratios]
  budgets = {
    (_round_up(n + 1, 8), max(_round_up(e, 8), 8), batch_size + 1)
    for n, e in zip(sizes["n_node"], sizes["n_edge"], strict=True)
  }
  return sorted(budgets)


def pad_batch(graphs: Sequence[jraph.GraphsTuple], budgets: Sequence[Budget]) -> tuple[jraph.GraphsTuple, np.ndarray]:
  """Batch `graphs` and pad to the smallest budget that fits: (padded GraphsTuple, graph_mask bool [n_graph]).

  The padded batch has nodes [n_node_budget, ...], senders/receivers int32 [n_edge_budget], n_node and
  n_edge int32 [n_graph_budget]; graph_mask is True for the len(graphs) real graphs, which come first.
  Raises ValueError if no budget fits.
  """
  batch = jraph.batch_np(list(graphs))
  n, e, g = int(np.sum(batch.n_node)), int(np.sum(batch.n_edge)), len(graphs)
  fitting = [b for b in budgets if b[0] > n and b[1] >= e and b[2] > g]
  if not fitting:
    raise ValueError(f"a batch of {g} graphs, {n} nodes, {e} edges fits no budget in {list(budgets)}.")
  budget = min(fitting, key=lambda b: (b[0] + b[1], b[2]))
  padded = jraph.pad_with_graphs(batch, *budget)
  as_int32 = {f: np.asarray(getattr(padded, f), dtype=np.int32) for f in ("senders", "receivers", "n_node", "n_edge")}
  return padded._replace(**as_int32), np.arange(budget[2]) < g


def graph_batches(
  graphs: Sequence[jraph.GraphsTuple],
  labels: np.ndarray,
  batch_size: int,
  *,
  order: Sequence[int],
  budgets: Sequence[Budget] | None = None,
) -> Iterator[tuple[jraph.GraphsTuple, np.ndarray, np.ndarray]]:
  """Padded batches of `graphs` in `order`: yields (padded GraphsTuple, labels [n_graph], mask [n_graph]).

  `order` is an index permutation the caller draws (the loop, from its `data` stream); the last batch
  may be shorter and is padded like the others. labels are int32 with 0 in padding slots, mask is bool,
  True for real graphs: weight losses and metrics with it. `budgets` defaults to
  `budgets_for(graphs, batch_size)`; pass them explicitly to share them between train and eval.
  """
  budgets = budgets_for(graphs, batch_size) if budgets is None else budgets
  labels = np.asarray(labels)
  order = np.asarray(order)
  for start in range(0, len(order), batch_size):
    index = order[start : start + batch_size]
    padded, mask = pad_batch([graphs[i] for i in index], budgets)
    batch_labels = np.zeros(mask.shape[0], dtype=np.int32)
    batch_labels[: len(index)] = labels[index]
    yield padded, batch_labels, mask
