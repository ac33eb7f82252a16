"""Graph data for training: Zachary's karate club, and padding graphs to fixed budgets for batching.

Graphs travel as `jraph.GraphsTuple`s of numpy arrays in the layout `jaxflow.data.graph_tuples`
describes. The generated graph-classification set `graph_cycles` is generated in
`jaxflow.data.graph_cycles` and stored and read through tfds by `jaxflow.data.graph_builders`.

Batches are padded with `jraph.pad_with_graphs` to one of a few fixed budgets `(n_node, n_edge, n_graph)`
so a jitted step compiles once per budget, not once per batch shape. The padding is one dummy graph
holding every padding node and edge (its edges join its first node to itself) plus empty graphs; no
padding edge touches a real node, so message passing, degree normalization and per-graph pooling never
mix padding into real outputs. `pad_batch` returns the graph mask that metrics and losses need.

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

from jaxflow.data.graph_tuples import undirected_graph

__all__ = [
  "KARATE_CLASSES",
  "KARATE_LEADERS",
  "Budget",
  "budgets_for",
  "graph_batches",
  "karate_club",
  "pad_batch",
]

# --- Zachary's karate club ------------------------------------------------------------------------

KARATE_CLASSES = ("Mr. Hi", "Officer")  # label 0, label 1: the 'club' attribute networkx ships
KARATE_LEADERS = (0, 33)  # Mr. Hi (instructor) and John A. (administrator), one per class


def karate_club(*, labelled_per_class: int = 1, draw_seed: int | None = None) -> dict:
  """Zachary's karate club as networkx ships it, for semi-supervised node classification.

  Returns a dict:
    'graph': GraphsTuple with nodes float32 [34, 34] (one-hot node id), senders/receivers int32 [156]
      (the 78 undirected friendships, both directions), n_node [34], n_edge [156];
    'labels': int32 [34], 0 = Mr. Hi's club, 1 = the Officer's (the 'club' attribute; 17 each);
    'train_mask': bool [34], `labelled_per_class` labelled nodes per class: the two leaders (nodes 0 and
      33) when 1, then the lowest-numbered other members of each club, or, with `draw_seed`, other members
      drawn at random (numpy's generator with that seed: a learning curve over labelled nodes needs more
      than one fixed choice of which members are labelled);
    'eval_mask': bool [34], every other node (32 of them when 1 per class).

  Why one-hot ids: the club has no node attributes, and the task is transductive (train and evaluate
  on the same, fixed graph), so an identity feature matrix lets the first layer learn a free embedding
  per node while the graph convolution ties neighbours' embeddings together; this is what Kipf &
  Welling (2017) use on this graph. It would mean nothing across different graphs, which is why the
  generated set uses degrees instead.
  """
  import networkx as nx  # Deferred: only the karate club needs it, and networkx takes ~0.2 s to import.

  g = nx.karate_club_graph()
  num_nodes = g.number_of_nodes()
  labels = np.array([KARATE_CLASSES.index(g.nodes[i]["club"]) for i in range(num_nodes)], dtype=np.int32)
  if not 1 <= labelled_per_class < min(np.bincount(labels)):
    raise ValueError(f"labelled_per_class={labelled_per_class} must be in [1, {min(np.bincount(labels)) - 1}].")
  train_mask = np.zeros(num_nodes, dtype=bool)
  draw = None if draw_seed is None else np.random.default_rng(draw_seed)
  for cls, leader in enumerate(KARATE_LEADERS):
    others = [i for i in range(num_nodes) if labels[i] == cls and i != leader]
    members = [leader] + (others if draw is None else draw.permutation(others).tolist())
    train_mask[members[:labelled_per_class]] = True
  graph = undirected_graph(num_nodes, np.array(g.edges()), np.eye(num_nodes, dtype=np.float32))
  return {"graph": graph, "labels": labels, "train_mask": train_mask, "eval_mask": ~train_mask}


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
