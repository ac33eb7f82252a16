"""Quality of jaxflow's GNNs on the two graph tasks it ships, with small hand-written optax loops.

Targets (issue "GNN on jraph"): GCN on Zachary's karate club, semi-supervised (one labelled node per
class: the two leaders), median accuracy over 5 seeds on the 32 unlabelled nodes >= 0.85; a GNN on
graph_cycles (does the graph contain a cycle?) well above chance, which is 0.5 (balanced classes).
For scale, a logistic regression on each graph's degree histogram, node and edge counts is reported too:
it is what a model gets without seeing how the edges connect.

  python benchmarks/gnn_quality.py                      # ~3-5 min on 2 CPU cores
  python benchmarks/gnn_quality.py --seeds 5 --epochs 20 --out benchmarks/results/gnn_quality.json

Every key comes from jaxflow.rng streams of the seed (init, dropout, data), as the training loop draws
them; graph_cycles is generated from `jaxflow.rng.dataset_seed` of the data stream of seed 0 and read through tfds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import common  # noqa: E402

KARATE_TARGET = 0.85


def karate_run(model, seed: int, *, steps: int = 200, lr: float = 1e-2, weight_decay: float = 5e-4) -> float:
  """Full-batch adamw on the two labelled nodes; accuracy on the other 32."""
  import jax
  import jax.numpy as jnp
  import optax

  from jaxflow import rng
  from jaxflow.data import graphs as graph_data

  karate = graph_data.karate_club()
  graph, labels = karate["graph"], jnp.asarray(karate["labels"])
  train_mask, eval_mask = jnp.asarray(karate["train_mask"]), jnp.asarray(karate["eval_mask"])
  params = model.init(rng.stream_key(seed, "init"), graph)
  dropout = rng.stream_key(seed, "dropout")
  tx = optax.adamw(lr, weight_decay=weight_decay)

  def loss_fn(params, key):
    logits = model.apply(params, graph, train=True, rngs={"dropout": key})
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(ce * train_mask) / jnp.sum(train_mask)

  def step(carry, i):
    params, opt_state = carry
    grads = jax.grad(loss_fn)(params, rng.step_key(dropout, i))
    updates, opt_state = tx.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), None

  (params, _), _ = jax.jit(lambda c: jax.lax.scan(step, c, jnp.arange(steps)))((params, tx.init(params)))
  correct = jnp.argmax(model.apply(params, graph), -1) == labels
  return float(jnp.sum(correct * eval_mask) / jnp.sum(eval_mask))


def cycles_run(model, train, test, seed: int, *, epochs: int, batch_size: int = 32, lr: float = 3e-3) -> dict:
  """Minibatch adam on padded batches (3 budgets shared by both splits); train and test accuracy."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from jaxflow import rng
  from jaxflow.data import graphs as graph_data

  (train_graphs, train_labels), (test_graphs, test_labels) = train, test
  budgets = graph_data.budgets_for(train_graphs + test_graphs, batch_size)
  first = graph_data.pad_batch(train_graphs[:batch_size], budgets)[0]
  params = model.init(rng.stream_key(seed, "init"), first)
  data_key, dropout = rng.stream_key(seed, "data"), rng.stream_key(seed, "dropout")
  tx = optax.adam(lr)
  opt_state = tx.init(params)

  def loss_fn(params, graphs, labels, mask, key):
    logits = model.apply(params, graphs, train=True, rngs={"dropout": key})
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return jnp.sum(ce * mask) / jnp.sum(mask)

  @jax.jit
  def train_step(params, opt_state, graphs, labels, mask, key):
    grads = jax.grad(loss_fn)(params, graphs, labels, mask, key)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  @jax.jit
  def correct(params, graphs, labels, mask):
    return jnp.sum((jnp.argmax(model.apply(params, graphs), -1) == labels) * mask)

  def accuracy(graphs, labels) -> float:
    batches = graph_data.graph_batches(graphs, labels, batch_size, order=np.arange(len(graphs)), budgets=budgets)
    return sum(float(correct(params, *batch)) for batch in batches) / len(graphs)

  step = 0
  for epoch in range(epochs):
    order = np.asarray(jax.random.permutation(rng.step_key(data_key, epoch), len(train_graphs)))
    batches = graph_data.graph_batches(train_graphs, train_labels, batch_size, order=order, budgets=budgets)
    for graphs, labels, mask in batches:
      params, opt_state = train_step(params, opt_state, graphs, labels, mask, rng.step_key(dropout, step))
      step += 1
  return {
    "train_accuracy": accuracy(train_graphs, train_labels),
    "test_accuracy": accuracy(test_graphs, test_labels),
    "steps": step,
  }


def degree_baseline(seed: int) -> float:
  """Logistic regression on [degree histogram (0..5+), the same / n, n, m]: no connectivity seen."""
  import numpy as np
  from sklearn.linear_model import LogisticRegression
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler

  from jaxflow.data import graph_cycles

  def features(split):
    rows, labels = [], []
    for ex in graph_cycles.generate_cycles(seed, split):
      n = ex["num_nodes"]
      hist = graph_cycles.degree_features(n, ex["edges"]).sum(axis=0)
      rows.append(np.concatenate([hist, hist / n, [n, len(ex["edges"])]]))
      labels.append(ex["label"])
    return np.array(rows), np.array(labels)

  clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
  clf.fit(*features("train"))
  return float(clf.score(*features("test")))


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--epochs", type=int, default=20)
  parser.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gnn_quality.json"))
  args = parser.parse_args()
  import jax

  from jaxflow import rng
  from jaxflow.data import graph_builders, graph_cycles
  from jaxflow.models import gnn

  lines = ["| task | model | seeds | metric | per seed | median | target |", "|---|---|---|---|---|---|---|"]
  results: dict = {"versions": {"jax": jax.__version__}, "device": jax.devices()[0].device_kind}

  karate_models = {
    "gcn": gnn.GCN(widths=(16, 16), output_dim=2, dropout_rate=0.5),
    "gat": gnn.GAT(widths=(16, 16), output_dim=2, attention_heads=4, dropout_rate=0.5),
  }
  results["karate"] = {}
  for name, model in karate_models.items():
    start = time.perf_counter()
    accs = [karate_run(model, seed) for seed in range(args.seeds)]
    median = statistics.median(accs)
    target = f">= {KARATE_TARGET}" if name == "gcn" else "-"
    results["karate"][name] = {"accuracy": accs, "median": median, "seconds": time.perf_counter() - start}
    per_seed = " ".join(f"{a:.3f}" for a in accs)
    lines.append(
      f"| karate (2 labels, 32 eval nodes) | {name} | {args.seeds} | eval accuracy | {per_seed} | {median:.3f} "
      f"| {target} |"
    )
    print(lines[-1], flush=True)

  data_seed = rng.dataset_seed(rng.stream_key(0, "data"))
  with tempfile.TemporaryDirectory() as data_dir:
    train = graph_builders.load_graph_split("graph_cycles", "train", seed=data_seed, data_dir=data_dir)
    test = graph_builders.load_graph_split("graph_cycles", "test", seed=data_seed, data_dir=data_dir)
  baseline = degree_baseline(data_seed)
  chance = graph_cycles.CYCLES_CHANCE
  results["graph_cycles"] = {"data_seed": data_seed, "chance": chance, "degree_baseline": baseline, "models": {}}
  lines.append(f"| graph_cycles (seed {data_seed}) | chance | - | test accuracy | - | {chance:.3f} | - |")
  lines.append(f"| graph_cycles | degree-histogram logistic regression | - | test accuracy | - | {baseline:.3f} | - |")
  cycle_models = {
    "gcn": gnn.GCN(widths=(64,) * 4, output_dim=2, head="graph"),
    "gat": gnn.GAT(widths=(64,) * 4, output_dim=2, attention_heads=4, head="graph"),
    "graph_network": gnn.GraphNetwork(widths=(64, 64), output_dim=2, message_steps=4, head="graph"),
  }
  cycle_seeds = min(args.seeds, 3)
  for name, model in cycle_models.items():
    start = time.perf_counter()
    runs = [cycles_run(model, train, test, seed, epochs=args.epochs) for seed in range(cycle_seeds)]
    accs = [r["test_accuracy"] for r in runs]
    median = statistics.median(accs)
    seconds = time.perf_counter() - start
    results["graph_cycles"]["models"][name] = {"runs": runs, "median_test_accuracy": median, "seconds": seconds}
    per_seed = " ".join(f"{a:.3f}" for a in accs)
    lines.append(
      f"| graph_cycles ({args.epochs} epochs) | {name} | {cycle_seeds} | test accuracy | {per_seed} | {median:.3f} "
      "| > 0.5 |"
    )
    print(lines[-1], flush=True)

  table = "\n".join(lines)
  results["table"] = table
  print(table)
  common.write_payload(args.out, results)
  ok = results["karate"]["gcn"]["median"] >= KARATE_TARGET
  sys.exit(0 if ok else 1)


if __name__ == "__main__":
  main()
