"""Graph neural networks on jraph: GCN, GAT and a full GraphNetwork, with node- or graph-level heads.

Every model takes a `jraph.GraphsTuple` with node features `nodes` [n_node_total, features], int
`senders`/`receivers` [n_edge_total] and `n_node`/`n_edge` [n_graph_total] (edge and global features
are optional; only GraphNetwork reads them), and returns logits:
  head="node":  [n_node_total, output_dim], one row per node;
  head="graph": [n_graph_total, output_dim], a Dense layer on the mean of each graph's node embeddings.
Padding nodes and graphs are included in those shapes; callers mask them (`jaxflow.data.graphs.pad_batch`
returns the graph mask).

Padding from `jraph.pad_with_graphs` cannot leak into real outputs here, by construction rather than by
masking: all padding nodes and edges belong to the padding graph, every padding edge joins its first node
to itself, and every aggregation is per receiver (messages, attention softmax, degree normalization) or
per graph (pooling, GraphNetwork globals, segmenting by `n_node`/`n_edge`). There is no normalization
across nodes or graphs (no batch norm) that could mix them. So the models take no mask, and work the
same on unpadded input. `jraph.get_graph_padding_mask` would be wrong here anyway: on an unpadded batch it
flags the last real graph as padding. Empty padding graphs (n_node = 0) pool to zeros, not NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import ml_collections

from jaxflow.models.activations import get_activation
from jaxflow.models.dropout import Dropout
from jaxflow.models.initializers import LayerInits
from jaxflow.models.mlp import MLP

HEADS = ("node", "graph")


def _num_nodes(graphs: jraph.GraphsTuple) -> int:
  """Static total node count: the leading dimension of the node features (n_node may be traced)."""
  return jax.tree_util.tree_leaves(graphs.nodes)[0].shape[0]


def mean_pool_nodes(nodes: jax.Array, n_node: jax.Array) -> jax.Array:
  """Per-graph mean of node rows: nodes [n_node_total, d], n_node int [n_graph] -> [n_graph, d].

  Graph i owns the n_node[i] consecutive rows after the previous graphs' (jraph's layout), so padding
  nodes, which the padding graph owns, never enter a real graph's mean. Graphs with no nodes (jraph's
  empty padding graphs) get zeros rather than 0/0 = NaN.
  """
  n_graph = n_node.shape[0]
  graph_index = jnp.repeat(jnp.arange(n_graph), n_node, total_repeat_length=nodes.shape[0])
  sums = jax.ops.segment_sum(nodes, graph_index, num_segments=n_graph)
  return sums / jnp.maximum(n_node, 1).astype(nodes.dtype)[:, None]


def _check_head(head: str) -> None:
  if head not in HEADS:
    raise ValueError(f"head={head!r} must be one of {HEADS}.")


def _readout(
  module: nn.Module, nodes: jax.Array, graphs: jraph.GraphsTuple, extra: jax.Array | None = None
) -> jax.Array:
  """The shared head: Dense on node rows, or on per-graph mean-pooled rows (concatenated with `extra`,
  graph-level features [n_graph, d'], when given)."""
  _check_head(module.head)
  if module.head == "graph":
    nodes = mean_pool_nodes(nodes, graphs.n_node)
    if extra is not None:
      nodes = jnp.concatenate([nodes, extra], axis=-1)
  inits = module.inits
  return nn.Dense(
    module.output_dim, name="head", kernel_init=inits.kernel_init("head"), bias_init=inits.bias_init("head")
  )(nodes)


class GCN(nn.Module):
  """Graph convolutional network (Kipf & Welling 2017): per width, dropout -> GraphConvolution -> activation.

  Each layer computes act(D^-1/2 (A + I) D^-1/2 X W): `jraph.GraphConvolution` with self-loops added and
  symmetric normalization, W a Dense of that layer's width. Dropout acts on each layer's input node
  features, as in the paper (the input features included). Then the head (module docstring).

  graphs: GraphsTuple, nodes [n_node_total, features]; returns [n_node_total, output_dim] (head="node")
  or [n_graph_total, output_dim] (head="graph").
  """

  widths: Sequence[int]
  output_dim: int
  activation: str = "relu"
  dropout_rate: float = 0.0
  head: str = "node"
  inits: LayerInits = LayerInits()

  @nn.compact
  def __call__(self, graphs: jraph.GraphsTuple, *, train: bool = False) -> jax.Array:
    act = get_activation(self.activation)
    x = graphs.nodes
    for i, width in enumerate(self.widths):
      name = f"conv_{i}"
      x = Dropout(self.dropout_rate, deterministic=not train)(x)
      dense = nn.Dense(width, name=name, kernel_init=self.inits.kernel_init(name), bias_init=self.inits.bias_init(name))
      conv = jraph.GraphConvolution(update_node_fn=dense, add_self_edges=True, symmetric_normalization=True)
      x = act(conv(graphs._replace(nodes=x)).nodes)
      self.sow("intermediates", f"{name}_act", x)
    return _readout(self, x, graphs)


class GATLayer(nn.Module):
  """One graph attention layer (Velickovic et al. 2018) through `jraph.GAT`, with self-loops added.

  Per head h: z = W_h x; on each edge s->r the logit leaky_relu(a_h . [z_s, z_r]) is softmaxed over the
  edges entering r; the new r is the weighted sum of z_s, then the activation. Heads are concatenated:
  nodes [n_node_total, features] -> [n_node_total, width], width = heads * (width // heads).
  jraph.GAT assumes the graph already has self-edges ("to recover the paper, add self edges"): without
  them a node ignores its own features, and one with no in-edges gets nothing.
  """

  width: int
  heads: int = 1
  activation: str = "leaky_relu"
  inits: LayerInits = LayerInits()  # keyed by this layer's name (gat_i) for its query projection

  @nn.compact
  def __call__(self, graphs: jraph.GraphsTuple) -> jax.Array:
    if self.width % self.heads:
      raise ValueError(f"GAT width {self.width} is not divisible by attention_heads={self.heads}.")
    head_dim = self.width // self.heads
    n = _num_nodes(graphs)
    loops = jnp.arange(n)  # jnp's default int: senders from jraph.batch_np are int64 (see data/graphs.py)
    looped = graphs._replace(
      senders=jnp.concatenate([graphs.senders, loops]), receivers=jnp.concatenate([graphs.receivers, loops])
    )
    attention = self.param("attention", nn.initializers.lecun_normal(), (self.heads, 2 * head_dim))
    query = nn.Dense(
      self.width, name="query", kernel_init=self.inits.kernel_init(self.name), bias_init=self.inits.bias_init(self.name)
    )

    def query_fn(nodes: jax.Array) -> jax.Array:  # [n, features] -> [n, heads, head_dim]
      return jnp.reshape(query(nodes), (nodes.shape[0], self.heads, head_dim))

    def logit_fn(sent: jax.Array, received: jax.Array, edges) -> jax.Array:  # -> [e, heads, 1]
      del edges
      pair = jnp.concatenate([sent, received], axis=-1)  # [e, heads, 2 * head_dim]
      return nn.leaky_relu(jnp.einsum("ehd,hd->eh", pair, attention), negative_slope=0.2)[..., None]

    act = get_activation(self.activation)

    def update_fn(nodes: jax.Array) -> jax.Array:  # [n, heads, head_dim] -> [n, width]
      return act(jnp.reshape(nodes, (nodes.shape[0], self.width)))

    return jraph.GAT(query_fn, logit_fn, update_fn)(looped).nodes


class GAT(nn.Module):
  """Graph attention network: per width, dropout -> GATLayer (`attention_heads` heads) -> activation.

  graphs: GraphsTuple, nodes [n_node_total, features]; returns [n_node_total, output_dim] (head="node")
  or [n_graph_total, output_dim] (head="graph"). Each width must be divisible by attention_heads.
  """

  widths: Sequence[int]
  output_dim: int
  attention_heads: int = 1
  activation: str = "leaky_relu"
  dropout_rate: float = 0.0
  head: str = "node"
  inits: LayerInits = LayerInits()

  @nn.compact
  def __call__(self, graphs: jraph.GraphsTuple, *, train: bool = False) -> jax.Array:
    x = graphs.nodes
    for i, width in enumerate(self.widths):
      x = Dropout(self.dropout_rate, deterministic=not train)(x)
      x = GATLayer(width, self.attention_heads, self.activation, inits=self.inits, name=f"gat_{i}")(
        graphs._replace(nodes=x)
      )
      self.sow("intermediates", f"gat_{i}_act", x)
    return _readout(self, x, graphs)


def _constant_features(features, count: int, like: jax.Array) -> jax.Array:
  """Given features, or a column of ones [count, 1] when there are none (jraph leaves them None)."""
  return jnp.ones((count, 1), like.dtype) if features is None else features


class GraphNetwork(nn.Module):
  """Message-passing GraphNetwork (Battaglia et al. 2018): encode, `message_steps` GN blocks, head.

  Encoder: Dense(latent) on nodes, edges and globals, where latent = widths[-1]; missing edge or global
  features (None) start as ones. Each block is `jraph.GraphNetwork` with its own parameters and three
  MLPs (hidden `widths[:-1]`, output latent, then the activation):
    edge   <- MLP([edge, sender, receiver, global])
    node   <- MLP([node, sum of sent edges, sum of received edges, global])
    global <- MLP([sum of its nodes, sum of its edges, global])
  with a residual connection on each, and dropout on the node latents after each block. The graph head
  reads [mean of node latents, global latent]; the node head reads node latents.

  graphs: GraphsTuple, nodes [n_node_total, features], optional edges [n_edge_total, e] and globals
  [n_graph_total, g]; returns [n_node_total, output_dim] (head="node") or [n_graph_total, output_dim]
  (head="graph").
  """

  widths: Sequence[int]
  output_dim: int
  message_steps: int = 3
  activation: str = "relu"
  dropout_rate: float = 0.0
  head: str = "graph"
  inits: LayerInits = LayerInits()  # embed_* layers and the head by name; the update MLPs use the defaults

  def _mlp(self, name: str) -> Callable[[jax.Array], jax.Array]:
    default = LayerInits(kernel=self.inits.kernel, bias=self.inits.bias)
    mlp = MLP(
      widths=tuple(self.widths[:-1]), output_dim=self.widths[-1], activation=self.activation, inits=default, name=name
    )
    act = get_activation(self.activation)
    return lambda x: act(mlp(x))

  @nn.compact
  def __call__(self, graphs: jraph.GraphsTuple, *, train: bool = False) -> jax.Array:
    latent = self.widths[-1]
    nodes = graphs.nodes
    edges = _constant_features(graphs.edges, graphs.senders.shape[0], nodes)
    globals_ = _constant_features(graphs.globals, graphs.n_node.shape[0], nodes)
    state = graphs._replace(
      nodes=nn.Dense(
        latent,
        name="embed_nodes",
        kernel_init=self.inits.kernel_init("embed_nodes"),
        bias_init=self.inits.bias_init("embed_nodes"),
      )(nodes),
      edges=nn.Dense(
        latent,
        name="embed_edges",
        kernel_init=self.inits.kernel_init("embed_edges"),
        bias_init=self.inits.bias_init("embed_edges"),
      )(edges),
      globals=nn.Dense(
        latent,
        name="embed_globals",
        kernel_init=self.inits.kernel_init("embed_globals"),
        bias_init=self.inits.bias_init("embed_globals"),
      )(globals_),
    )
    for step in range(self.message_steps):
      edge_mlp, node_mlp, global_mlp = (self._mlp(f"{part}_{step}") for part in ("edge", "node", "global"))
      block = jraph.GraphNetwork(
        update_edge_fn=lambda e, s, r, g, f=edge_mlp: f(jnp.concatenate([e, s, r, g], axis=-1)),
        update_node_fn=lambda n, s, r, g, f=node_mlp: f(jnp.concatenate([n, s, r, g], axis=-1)),
        update_global_fn=lambda n, e, g, f=global_mlp: f(jnp.concatenate([n, e, g], axis=-1)),
      )
      new = block(state)
      state = new._replace(
        nodes=Dropout(self.dropout_rate, deterministic=not train)(state.nodes + new.nodes),
        edges=state.edges + new.edges,
        globals=state.globals + new.globals,
      )
    return _readout(self, state.nodes, graphs, extra=state.globals if self.head == "graph" else None)


def create_gnn(
  model_config: ml_collections.ConfigDict, *, output_dim: int, inits: LayerInits = LayerInits()
) -> nn.Module:
  """The GNN that `model_config.name` names, for `output_dim` outputs; the registry calls this.

  Fields read (optional ones with their defaults):
    name: "gcn" | "gat" | "graph_network".
    widths: sequence of ints. GCN/GAT: one message-passing layer per width (its output width).
      GraphNetwork: hidden widths of each update MLP, the last one being the latent size.
    activation = "relu" for gcn/graph_network, "leaky_relu" for gat (jraph.GAT's own default): a name in
      jaxflow.models.ACTIVATIONS.
    dropout_rate = 0.0: on node features (see each model).
    gnn_head = "node" for gcn/gat, "graph" for graph_network: "node" -> [n_node_total, output_dim],
      "graph" -> [n_graph_total, output_dim].
    attention_heads = 1 (gat only): heads per layer; each width must be divisible by it.
    message_steps = 3 (graph_network only): GN blocks, each with its own parameters.
  """
  name = model_config.name
  common = dict(
    widths=tuple(model_config.widths),
    output_dim=output_dim,
    dropout_rate=model_config.get("dropout_rate", 0.0),
    inits=inits,
  )
  if name == "gcn":
    return GCN(activation=model_config.get("activation", "relu"), head=model_config.get("gnn_head") or "node", **common)
  if name == "gat":
    return GAT(
      attention_heads=model_config.get("attention_heads", 1),
      activation=model_config.get("activation", "leaky_relu"),
      head=model_config.get("gnn_head") or "node",
      **common,
    )
  if name == "graph_network":
    return GraphNetwork(
      message_steps=model_config.get("message_steps", 3),
      activation=model_config.get("activation", "relu"),
      head=model_config.get("gnn_head") or "graph",
      **common,
    )
  raise ValueError(f"model.name={name!r} is not a GNN: use 'gcn', 'gat' or 'graph_network'.")
