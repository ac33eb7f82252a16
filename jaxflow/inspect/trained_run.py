"""What `jaxflow explain` looks at: a trained run's model and parameters, and the examples to explain.

`load_run(workdir)` rebuilds the run's config from WORKDIR/config.json, validates it, builds the model
and reads the BEST checkpoint's parameters (else the latest) onto this process's first device, whatever
layout wrote them (one device, pmap, sharded, several hosts: `Checkpointer.read_params`).

`choose_examples(run, n)` takes the first examples of the evaluation split the way training reads it,
one class after another (so 16 digits cover all ten classes), and states the model's input as what
saliency is taken with respect to:
  images and sequences: x = the input array [k, ...] (a {"sequence", "lengths"} input: x is the
    sequence, the lengths are held fixed);
  graphs: x = the node features, tiled once per explained node (node head) or graph (graph head)
    [k, n, F], so that example i's score is row i's output of its own copy: examples stay independent
    along axis 0, which the saliency functions rely on.
`apply_fn(params, x) -> outputs [k, C]` closes over everything else.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxflow import models, rng
from jaxflow.data.problem import Problem
from jaxflow.run import trained
from jaxflow.run.assemble import host_data, problem_of


@dataclasses.dataclass
class Run:
  workdir: str
  config: ml_collections.ConfigDict
  problem: Problem
  model: object  # flax module
  params: dict
  random_params: dict | None  # a fresh initialization from an explain-only key: the randomization check
  step: int
  which: str  # "best" or "latest"
  family: str  # "image", "sequence" (a dict input: sequence + lengths) or "graph"
  layer_order: list[tuple[str, ...]]  # module paths in the order the model calls them


@dataclasses.dataclass
class Examples:
  x: np.ndarray  # float inputs [k, ...] (see the module docstring)
  target: np.ndarray  # int32 [k]: the output column explained (the predicted class; 0 for one output)
  labels: np.ndarray  # [k] the true labels (problem targets)
  predictions: np.ndarray  # [k] predicted class, or the predicted value (one output)
  captions: list[str]
  indices: list[int]  # positions in the evaluation split (graphs: node or graph index in the batch)
  apply_fn: Callable  # (params, x) -> outputs [k, C]
  sown: dict  # {layer path: post-activation output} the modules sow for these examples (graphs: for the graph)
  lengths: np.ndarray | None = None  # [k] valid steps of a {"sequence", "lengths"} input
  drawings: list[dict] | None = None  # graphs: per example, the graph to draw (pictures.graph_importance)
  node_rows: list[np.ndarray] | None = None  # graphs: per example, the rows of x[i] belonging to the drawn graph


def explain_key(config: ml_collections.ConfigDict, purpose: str) -> jax.Array:
  """A key of its own for each of explain's random draws (SmoothGrad's noise, the re-initialization),
  from the run's `explain` stream (`jaxflow.rng.analysis_key`): the same run explained twice draws the
  same numbers, and no draw shares a key with training's streams. An "rbg" key: these draws happen once
  per explain, where compiling is what costs (a truncated normal per kernel compiles 5x slower with
  threefry on XLA:CPU)."""
  return rng.analysis_key(config, f"explain/{purpose}", impl="rbg")


def _zeros(structure):
  if isinstance(structure, jax.ShapeDtypeStruct):
    return jnp.zeros(structure.shape, structure.dtype)
  return jax.tree.map(lambda s: None if s is None else jnp.zeros(s.shape, s.dtype), structure)


def load_run(workdir: str, *, randomize: bool = True) -> Run:
  """The run in `workdir`, with a re-initialized copy of its model's parameters (`randomize=False`:
  none, `random_params` is None). ConfigError when the workdir holds no run or no checkpoint."""
  config = trained.read_config(workdir)
  problem = problem_of(config)
  model = models.create_model(config.model, output_dim=problem.output_dim)
  params, step, which = trained.read_params(workdir)
  random_params = None
  if randomize:
    random_params = jax.jit(model.init)(explain_key(config, "randomization"), _zeros(problem.input_structure))["params"]
    # Committed to the device the checkpoint was read onto, like `params`: jit would otherwise compile
    # a second program for the same shapes (a committed and an uncommitted argument differ in its cache).
    random_params = jax.device_put(random_params, jax.local_devices()[0])
  order = layer_order(model, problem.input_structure, explain_key(config, "randomization"))
  if config.model.name in models.GRAPH_MODELS:
    family = "graph"
  elif isinstance(problem.input_structure, dict):
    family = "sequence"
  else:
    family = "image" if len(problem.input_shape) == 3 else "array"
  return Run(workdir, config, problem, model, params, random_params, step, which, family, order)


def layer_order(model, input_structure, key: jax.Array) -> list[tuple[str, ...]]:
  """The paths of the modules the model calls, in call order (traced with eval_shape: nothing runs).

  Parameter trees cannot say which layer comes first: every tree that passes through jit or a
  checkpoint comes back with its keys sorted (`head` before `rnn_0`).
  """
  order: list[tuple[str, ...]] = []

  def record(next_fun, args, kwargs, context):
    if context.method_name == "__call__" and context.module.scope is not None:
      path = tuple(context.module.scope.path)
      if path not in order:
        order.append(path)
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(model.init, key, input_structure)
  return order


def _round_robin(labels: np.ndarray, n: int, classified: bool) -> list[int]:
  """First examples of each class in turn (eval order), n in all; unclassified data: the first n."""
  if not classified:
    return list(range(min(n, labels.shape[0])))
  queues = {c: list(np.flatnonzero(labels == c)) for c in np.unique(labels)}
  chosen: list[int] = []
  while len(chosen) < min(n, labels.shape[0]):
    for c in sorted(queues):
      if queues[c] and len(chosen) < n:
        chosen.append(int(queues[c].pop(0)))
  return chosen


def _targets(outputs: np.ndarray, problem: Problem) -> tuple[np.ndarray, np.ndarray]:
  """(target column [k], prediction [k]) from outputs [k, C] or [k, T, C]."""
  outputs = np.asarray(outputs)
  summed = outputs.reshape(outputs.shape[0], -1, outputs.shape[-1]).sum(axis=1)
  if problem.output_dim == 1:
    value = summed[:, 0]
    return np.zeros(outputs.shape[0], np.int32), (value > 0).astype(np.int32) if problem.kind == "binary" else value
  predicted = summed.argmax(axis=-1).astype(np.int32)
  return predicted, predicted


def _caption(label, prediction, kind: str, names=None) -> str:
  """`y=` the true class and `p=` the predicted one, by name when the classes have names (circle, square)."""
  if kind == "regression":
    return f"y={float(label):.2f} f={float(prediction):.2f}"
  name = (lambda c: names[int(c)]) if names else (lambda c: str(int(c)))
  return f"y={name(label)} p={name(prediction)}"


def choose_examples(run: Run, n: int) -> Examples:
  if run.family == "graph":
    return _graph_examples(run, n)
  config, problem, model = run.config, run.problem, run.model
  prepared = host_data(config, problem, rng.streams(config))  # the data as training sees it
  evaluation, labels_all = prepared.eval, prepared.eval_targets
  chosen = _round_robin(labels_all, n, problem.kind != "regression")
  lengths = None
  if run.family == "sequence":
    x = np.asarray(evaluation.inputs["sequence"][chosen], np.float32)
    lengths = np.asarray(evaluation.inputs["lengths"][chosen], np.int32)
    apply_fn = functools.partial(_apply_sequence, model, lengths)
    model_inputs = {"sequence": x, "lengths": lengths}
  else:
    x = np.asarray(evaluation.inputs[chosen], np.float32)
    apply_fn = functools.partial(_apply_array, model)
    model_inputs = x
  outputs, sown = jax.device_get(jax.jit(functools.partial(forward, model))(run.params, model_inputs))
  sown = _in_call_order(sown, run.layer_order)
  target, predictions = _targets(outputs, problem)
  labels = labels_all[chosen]
  names = problem.class_names
  captions = [f"#{i} " + _caption(y, p, problem.kind, names) for i, y, p in zip(chosen, labels, predictions)]
  return Examples(
    x=x,
    target=target,
    labels=labels,
    predictions=predictions,
    captions=captions,
    indices=chosen,
    apply_fn=apply_fn,
    sown=sown,
    lengths=lengths,
  )


def forward(model, params, inputs) -> tuple[jax.Array, dict]:
  """(outputs, {layer path: post-activation output}): what the modules sow into `intermediates`
  (`LAYER_act`, the first sow of each), in eval mode."""
  outputs, captured = model.apply({"params": params}, inputs, train=False, mutable=["intermediates"])
  sown = {}
  for path, value in jax.tree_util.tree_flatten_with_path(
    captured.get("intermediates", {}), is_leaf=lambda v: isinstance(v, tuple)
  )[0]:
    name = "/".join(str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey)).removesuffix("_act")
    sown[name] = value[0] if isinstance(value, tuple) else value
  return outputs, sown


def _in_call_order(sown: dict, order: list[tuple[str, ...]]) -> dict:
  """Sown layers in the order the model calls them (a jitted function returns its dicts sorted)."""
  rank = {"/".join(path): i for i, path in enumerate(order)}
  return dict(sorted(sown.items(), key=lambda item: rank.get(item[0], len(rank))))


# Module-level appliers bound with functools.partial (see choose_examples).
def _apply_array(model, params, x):
  """Examples of array inputs: the model on a batch of them."""
  return model.apply({"params": params}, x, train=False)


def _apply_sequence(model, lengths, params, sequence):
  """Examples of padded sequences: the model on them with their true lengths."""
  return model.apply({"params": params}, {"sequence": sequence, "lengths": lengths}, train=False)


def _apply_graph(model, graph, rows, params, tiled_nodes):
  """Example i: the model on the graph with node features tiled_nodes[i]; output row rows[i]."""

  def one(nodes, row):
    return model.apply({"params": params}, graph._replace(nodes=nodes), train=False)[row]

  return jax.vmap(one)(tiled_nodes, jnp.asarray(rows))


def _graph_examples(run: Run, n: int) -> Examples:
  """Graph models' examples: the evaluation batch's first `n` explained nodes or graphs, and their drawings."""
  config, problem, model = run.config, run.problem, run.model
  host = host_data(config, problem, rng.streams(config))
  batch = host.eval_batches[0]
  graph = jax.tree.map(np.asarray, batch["inputs"])
  nodes = np.asarray(graph.nodes, np.float32)
  head = config.model.gnn_head or ("graph" if config.model.name == "graph_network" else "node")
  rows = np.flatnonzero(np.asarray(batch["mask"]) > 0)[:n]
  x = np.repeat(nodes[None], len(rows), axis=0)
  apply_fn = functools.partial(_apply_graph, model, graph, tuple(int(r) for r in rows))
  outputs, sown = jax.device_get(jax.jit(functools.partial(forward, model))(run.params, graph))
  sown = _in_call_order(sown, run.layer_order)
  target, predictions = _targets(np.asarray(outputs)[rows], problem)
  labels = np.asarray(batch["labels"])[rows]
  layout_seed = rng.derived_seed(rng.stream_key(config.seed, "explain"), "explain/layout")
  names = problem.class_names
  if head == "node":  # one graph (e.g. the karate club): one layout, each row rings its node
    drawings, node_rows = _node_drawings(graph, nodes.shape[0], rows, layout_seed)
    captions = [f"node {r} " + _caption(y, p, problem.kind, names) for r, y, p in zip(rows, labels, predictions)]
  else:  # a padded batch of graphs: draw each explained graph alone
    drawings, node_rows = _graph_drawings(graph, rows, layout_seed)
    captions = [f"graph {r} " + _caption(y, p, problem.kind, names) for r, y, p in zip(rows, labels, predictions)]
  return Examples(
    x=x,
    target=target,
    labels=labels,
    predictions=predictions,
    captions=captions,
    indices=[int(r) for r in rows],
    apply_fn=apply_fn,
    sown=sown,
    drawings=drawings,
    node_rows=node_rows,
  )


def _node_drawings(graph, num_nodes: int, rows, layout_seed: int) -> tuple[list[dict], list[np.ndarray]]:
  """A node head's one graph: one spring layout of its real nodes, a drawing per row ringing its node."""
  import networkx as nx  # ~0.1 s to import (its own, cold: more): only graph models need a layout

  senders, receivers = np.asarray(graph.senders), np.asarray(graph.receivers)
  real = int(np.asarray(graph.n_node)[0]) if len(graph.n_node) == 1 else num_nodes
  keep = (senders < real) & (receivers < real) & (senders != receivers)
  g = nx.Graph()
  g.add_nodes_from(range(real))
  g.add_edges_from(zip(senders[keep].tolist(), receivers[keep].tolist()))
  positions = nx.spring_layout(g, seed=layout_seed)
  drawn = {
    "positions": np.array([positions[i] for i in range(real)]),
    "senders": senders[keep],
    "receivers": receivers[keep],
  }
  drawings, node_rows = [], []
  for row in rows:
    drawings.append({**drawn, "focus": int(row)})
    node_rows.append(np.arange(real))
  return drawings, node_rows


def _graph_drawings(graph, rows, layout_seed: int) -> tuple[list[dict], list[np.ndarray]]:
  """A padded batch of graphs: each explained graph drawn alone, with its own spring layout."""
  import networkx as nx  # ~0.1 s to import (its own, cold: more): only graph models need a layout

  senders, receivers = np.asarray(graph.senders), np.asarray(graph.receivers)
  offsets = np.concatenate([[0], np.cumsum(np.asarray(graph.n_node))])
  drawings, node_rows = [], []
  for row in rows:
    lo, hi = int(offsets[row]), int(offsets[row + 1])
    keep = (senders >= lo) & (senders < hi) & (receivers >= lo) & (receivers < hi) & (senders != receivers)
    g = nx.Graph()
    g.add_nodes_from(range(hi - lo))
    g.add_edges_from(zip((senders[keep] - lo).tolist(), (receivers[keep] - lo).tolist()))
    positions = nx.spring_layout(g, seed=layout_seed)
    drawings.append(
      {
        "positions": np.array([positions[i] for i in range(hi - lo)]),
        "senders": senders[keep] - lo,
        "receivers": receivers[keep] - lo,
        "focus": None,
      }
    )
    node_rows.append(np.arange(lo, hi))
  return drawings, node_rows
