"""Graph models through the training loop: karate (node classification, one full-graph batch) and the
generated cycle set (graph classification, batches padded to a few budgets, one compilation each)."""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
import pytest

import jaxflow
from jaxflow.data import graph_batches as graph_data
from jaxflow.data import graphs as graph_lib
from jaxflow.data.graph_builders import load_graph_split
from jaxflow.data.graph_cycles import DEGREE_FEATURES
from jaxflow.data.steps import steps_per_epoch
from tests.conftest import config_path


def test_karate_node_classification(tmp_path):
  summary = jaxflow.train(jaxflow.load_config(config_path("karate_gcn.py")), str(tmp_path / "karate"), quiet=True)
  assert summary["steps"] == 200  # one full-graph step per epoch
  assert summary["final"]["eval"]["accuracy"] >= 0.85  # 32 unlabelled nodes; measured 0.97 for seeds 0-4
  records = [json.loads(line) for line in (tmp_path / "karate" / "metrics.jsonl").read_text().splitlines()]
  # One-step epochs: train metrics are logged at each epoch's end, so every step, next to its evaluation.
  assert [r["step"] for r in records if r["split"] == "eval"] == list(range(1, 201))
  assert len([r for r in records if r["split"] == "train"]) == 200


def test_cycles_compile_once_per_budget(tmp_path, caplog):
  """Through the loop (tests/models/test_gnn.py counts the same for every GNN on its own)."""
  model = "gcn"
  config = jaxflow.load_config(config_path("graph_cycles_gcn.py:test"), ["model.widths=(16,16)"])
  budgets = graph_lib.budgets_for(
    sum(
      (
        load_graph_split("graph_cycles", s, seed=jaxflow.rng.dataset_seed(jaxflow.rng.streams(config)["data"]))[0]
        for s in ("train", "test")
      ),
      [],
    ),
    config.train.batch_size,
  )
  jax.config.update("jax_log_compiles", True)
  try:
    with caplog.at_level(logging.WARNING, logger="jax._src.dispatch"):
      summary = jaxflow.train(config, str(tmp_path / model), quiet=True)
  finally:
    jax.config.update("jax_log_compiles", False)
  compiled = [r.getMessage() for r in caplog.records if "Finished XLA compilation" in r.getMessage()]
  train_compiles = sum("jit(host_train_step)" in m for m in compiled)
  eval_compiles = sum("jit(eval_step)" in m for m in compiled)
  # One program per padded batch shape that occurs: the shapes counted here from the run's own batches (the
  # `data` stream's permutation of each epoch, padded to the smallest of the 3 budgets that fits): 2 of the 3
  # budgets occur in these 2 epochs' train batches (the third one only pads what eval or a later epoch needs).
  host = graph_data.cycles_data(config, jaxflow.rng.streams(config)["data"])
  train_shapes = {shape_of(b) for epoch in range(config.train.epochs) for b in host.train_batches(epoch)}
  assert len(budgets) == 3 and train_compiles == len(train_shapes)
  assert eval_compiles == len({shape_of(b) for b in host.eval_batches})
  # One rule for every dataset (jaxflow.data.steps): full batches of each epoch's permutation; the 16 graphs
  # left over wait for the next epoch's draw (the graph loader padded a 63rd, shorter batch before).
  assert summary["steps"] == 2 * (2000 // 32) == 2 * steps_per_epoch(2000, 32)
  assert summary["final"]["eval"]["accuracy"] > 0.6  # chance 0.5, after 2 epochs


def shape_of(batch) -> tuple:
  return tuple(np.shape(leaf) for leaf in jax.tree.leaves(batch))


def test_graph_spec_and_input_structure():
  spec = graph_data.spec("graph_cycles")
  assert spec.input_shape == (DEGREE_FEATURES,) and spec.num_classes == 2
  structure = graph_data.input_structure(graph_data.spec("karate"))
  assert structure.nodes.shape == (2, 34)


def test_graph_model_on_image_data_is_refused(tmp_path):
  config = jaxflow.load_config(config_path("digits_mlp.py"), ["model.name=gcn"])
  with pytest.raises(jaxflow.ConfigError, match="graph"):
    jaxflow.train(config, str(tmp_path / "x"), quiet=True)
  assert not (tmp_path / "x").exists()
