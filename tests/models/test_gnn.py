"""jaxflow.models.gnn: shapes, padding isolation, finite-difference gradients, overfitting, compile counts."""

from __future__ import annotations

import logging

import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from jaxflow.data import graph_cycles
from jaxflow.data import graphs as graph_data
from jaxflow.models import gnn

MODELS = {
  "gcn": lambda head, **kw: gnn.GCN(widths=(8, 8), output_dim=3, head=head, **kw),
  "gat": lambda head, **kw: gnn.GAT(widths=(8, 8), output_dim=3, attention_heads=2, head=head, **kw),
  "graph_network": lambda head, **kw: gnn.GraphNetwork(widths=(8,), output_dim=3, message_steps=2, head=head, **kw),
}


def small_graphs(count: int = 5, seed: int = 1) -> list[jraph.GraphsTuple]:
  """`count` generated graphs (6..16 nodes, degree features [n, 6]), half of them with a cycle."""
  examples = graph_cycles.generate_cycles(seed, "train", count + count % 2)[:count]
  return [graph_cycles.cycles_graph(ex["num_nodes"], ex["edges"]) for ex in examples]


@pytest.fixture(scope="module")
def batches():
  """(unpadded batch of 5 graphs, the same padded to 7 graphs, and its real-node count)."""
  graphs = small_graphs()
  unpadded = jraph.batch_np(graphs)
  n_real = int(np.sum(unpadded.n_node))
  padded, mask = graph_data.pad_batch(graphs, [(n_real + 13, int(np.sum(unpadded.n_edge)) + 10, 7)])
  np.testing.assert_array_equal(mask, [True] * 5 + [False] * 2)
  return unpadded, padded, n_real


@pytest.fixture(scope="module")
def init_params(batches):
  """init_params(name, head): float32 parameters of MODELS[name](head) for degree-feature graphs, made
  once per module (eager `init`; jitting it costs ~2 s of compilation per model on 2 CPU cores)."""
  _, padded, _ = batches
  cache = {}

  def get(name: str, head: str):
    if (name, head) not in cache:
      cache[name, head] = MODELS[name](head).init(jax.random.key(0), padded)
    return cache[name, head]

  return get


@pytest.mark.parametrize("head", gnn.HEADS)
@pytest.mark.parametrize("name", list(MODELS))
def test_output_shapes_and_padding_does_not_leak(batches, init_params, name, head):
  unpadded, padded, n_real = batches
  model = MODELS[name](head)
  params = init_params(name, head)
  out_padded = np.asarray(model.apply(params, padded))
  out_unpadded = np.asarray(model.apply(params, unpadded))
  expected_rows = padded.nodes.shape[0] if head == "node" else padded.n_node.shape[0]
  assert out_padded.shape == (expected_rows, 3)
  assert out_unpadded.shape == ((n_real if head == "node" else 5), 3)
  assert np.all(np.isfinite(out_padded))  # also the empty padding graphs: no 0/0
  real = n_real if head == "node" else 5
  np.testing.assert_allclose(out_padded[:real], out_unpadded, rtol=1e-5, atol=1e-6)
  assert np.std(out_unpadded[:, 0]) > 1e-4  # real outputs differ between nodes/graphs: not a constant


@pytest.mark.parametrize("name", list(MODELS))
def test_dropout_only_in_training(batches, init_params, name):
  _, padded, _ = batches
  model = MODELS[name]("node", dropout_rate=0.5)
  params = init_params(name, "node")
  eval_a, eval_b = model.apply(params, padded), model.apply(params, padded)
  train_a = model.apply(params, padded, train=True, rngs={"dropout": jax.random.key(1)})
  train_b = model.apply(params, padded, train=True, rngs={"dropout": jax.random.key(2)})
  np.testing.assert_array_equal(eval_a, eval_b)
  assert not np.allclose(train_a, train_b)


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_match_finite_differences(init_params, name):
  """Graph head: its gradient flows through every message-passing layer and the pooling."""
  head = "graph"
  model = MODELS[name](head, activation="tanh")
  graphs = [
    graph_cycles.cycles_graph(4, np.array([[0, 1], [1, 2], [2, 0], [2, 3]])),
    graph_cycles.cycles_graph(3, np.array([[0, 1], [1, 2]])),
  ]
  with jax.enable_x64(True):
    batch = jraph.batch_np(graphs)
    rng = np.random.default_rng(0)
    batch = batch._replace(nodes=rng.normal(size=batch.nodes.shape))  # float64, not one-hot: generic point
    params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float64), init_params(name, head))
    labels = jnp.asarray(rng.integers(0, 3, size=7 if head == "node" else 2))

    @jax.jit
    def loss(params):
      logits = model.apply(params, batch)
      assert logits.dtype == jnp.float64
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    # Central differences along random directions; float64 allows a small step (eps) and tight tolerances.
    check_grads(loss, (params,), order=1, modes=("rev",), atol=1e-7, rtol=1e-7, eps=1e-6)


def fit(model, graphs, labels, mask, *, steps: int, lr: float = 1e-2, params=None) -> float:
  """Full-batch adam on `graphs` for `steps` steps from `params` (default: init); accuracy over `mask`."""
  params = model.init(jax.random.key(0), graphs) if params is None else params
  tx = optax.adam(lr)

  def loss_fn(params):
    ce = optax.softmax_cross_entropy_with_integer_labels(model.apply(params, graphs), labels)
    return jnp.sum(ce * mask) / jnp.sum(mask)

  def step(carry, _):
    params, opt_state = carry
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, length=steps))((params, tx.init(params)))
  correct = jnp.argmax(model.apply(params, graphs), -1) == labels
  return float(jnp.sum(correct * mask) / jnp.sum(mask))


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_overfits_karate_node_labels(name):
  """Every node of the karate club labelled (not the semi-supervised task): training accuracy 1.0."""
  karate = graph_data.karate_club()
  model = MODELS[name]("node")
  labels, all_nodes = jnp.asarray(karate["labels"]), jnp.ones(34)
  assert fit(model, karate["graph"], labels, all_nodes, steps=150) == 1.0


# One tiny dataset per model keeps the file within its time budget (each fit compiles for 1-2 s):
# the node head on the karate club above, the graph head on a few graphs here.
@pytest.mark.parametrize("name", ["graph_network"])
def test_overfits_a_few_graphs(init_params, name):
  """Eight generated graphs (four with a cycle), padded: graph-level training accuracy 1.0."""
  graphs = small_graphs(8, seed=3)
  labels = np.array([ex["label"] for ex in graph_cycles.generate_cycles(3, "train", 8)], dtype=np.int32)
  padded, mask = graph_data.pad_batch(graphs, graph_data.budgets_for(graphs, 8, num_budgets=1))
  padded_labels = np.zeros(mask.shape, np.int32)
  padded_labels[:8] = labels
  model = MODELS[name]("graph")
  params = init_params(name, "graph")
  assert fit(model, padded, jnp.asarray(padded_labels), jnp.asarray(mask, jnp.float32), steps=300, params=params) == 1.0


def test_one_compilation_per_budget(caplog, init_params):
  """Twelve batches of 4 graphs, padded to 3 budgets (all used, in mixed order): exactly 3 compilations."""
  graphs = small_graphs(48, seed=7)
  labels = np.array([ex["label"] for ex in graph_cycles.generate_cycles(7, "train", 48)], dtype=np.int32)
  budgets = graph_data.budgets_for(graphs, 4)
  assert len(budgets) == 3
  order = np.argsort([int(g.n_node[0]) for g in graphs])  # small graphs first, then ever bigger
  order = np.concatenate([order[:4], order[-4:], order[4:-4]])  # smallest batch, biggest, the rest
  batches = list(graph_data.graph_batches(graphs, labels, 4, order=order, budgets=budgets))
  used = {(b.nodes.shape[0], b.senders.shape[0], b.n_node.shape[0]) for b, _, _ in batches}
  assert used == set(budgets)

  model, tx = MODELS["gcn"]("graph"), optax.sgd(0.1)

  def gnn_train_step(params, opt_state, graphs, labels, mask):  # the name the compile log shows
    def loss_fn(params):
      ce = optax.softmax_cross_entropy_with_integer_labels(model.apply(params, graphs), labels)
      return jnp.sum(ce * mask) / jnp.sum(mask)

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  params = init_params("gcn", "graph")
  opt_state = tx.init(params)
  step = jax.jit(gnn_train_step)
  previous = jax.config.jax_log_compiles
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"):
      losses = []
      for graphs_batch, batch_labels, mask in batches:
        params, opt_state, loss = step(params, opt_state, graphs_batch, batch_labels, mask)
        losses.append(float(loss))
  finally:
    jax.config.update("jax_log_compiles", previous)
  messages = [r.getMessage() for r in caplog.records]
  compiled = [m for m in messages if "Finished XLA compilation of jit(gnn_train_step)" in m]
  assert len(compiled) == 3, compiled
  assert all(np.isfinite(losses))


def test_create_gnn_reads_config():
  config = ml_collections.ConfigDict({"name": "gat", "widths": (8, 8), "attention_heads": 4, "dropout_rate": 0.1})
  model = gnn.create_gnn(config, output_dim=5)
  assert isinstance(model, gnn.GAT)
  fields = (model.widths, model.output_dim, model.attention_heads, model.dropout_rate, model.head)
  assert fields == ((8, 8), 5, 4, 0.1, "node")
  config = ml_collections.ConfigDict(
    {"name": "graph_network", "widths": (16,), "message_steps": 2, "activation": "tanh", "gnn_head": "node"}
  )
  model = gnn.create_gnn(config, output_dim=2)
  assert isinstance(model, gnn.GraphNetwork)
  assert (model.message_steps, model.activation, model.head) == (2, "tanh", "node")
  assert isinstance(gnn.create_gnn(ml_collections.ConfigDict({"name": "gcn", "widths": (4,)}), output_dim=2), gnn.GCN)
  with pytest.raises(ValueError, match="not a GNN"):
    gnn.create_gnn(ml_collections.ConfigDict({"name": "mlp", "widths": (4,)}), output_dim=2)


def test_bad_head_and_heads_fail_clearly(batches):
  _, padded, _ = batches
  with pytest.raises(ValueError, match="head='edge'"):
    gnn.GCN(widths=(4,), output_dim=2, head="edge").init(jax.random.key(0), padded)
  with pytest.raises(ValueError, match="not divisible"):
    gnn.GAT(widths=(6,), output_dim=2, attention_heads=4).init(jax.random.key(0), padded)


def test_mean_pool_nodes_by_hand():
  nodes = jnp.array([[1.0], [3.0], [10.0], [7.0], [0.0]])
  pooled = gnn.mean_pool_nodes(nodes, jnp.array([2, 1, 2, 0]))
  np.testing.assert_allclose(pooled, [[2.0], [10.0], [3.5], [0.0]])
