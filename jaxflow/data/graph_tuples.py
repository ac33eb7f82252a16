"""One graph as a `jraph.GraphsTuple` of numpy arrays: the layout every graph dataset in jaxflow uses.

`nodes` float32 [n_node_total, features], `senders`/`receivers` int32 [n_edge_total] (an undirected
edge appears once in each direction), `n_node`/`n_edge` int32 [n_graph], `edges` and `globals` None
(none of these graphs has edge or graph attributes; models that want them start from constants).
Both the karate club (`graphs`) and the generated graph_cycles (`graph_cycles`) are built here, so
they share one layout and neither dataset module imports the other.
"""

from __future__ import annotations

import jraph
import numpy as np


def undirected_graph(num_nodes: int, edges: np.ndarray, nodes: np.ndarray) -> jraph.GraphsTuple:
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
