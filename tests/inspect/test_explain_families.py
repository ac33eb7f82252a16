"""Explain beyond the CNN, MLP, RNN and GCN node head of test_explain.py (issue 23, point 2): a stack, GAT,
GraphNetwork, a GCN graph head, padded sequences and flat features, each a tiny run trained one epoch.

Each is explained the way `jaxflow explain` computes (trained_run.load_run, choose_examples, explain.analyse:
one jitted program), with a short path (16 steps, 2 SmoothGrad samples) since the properties checked do not
depend on it: the attributions have the input's shape, the vanilla gradient is d score / d x computed here
with jax.grad on the model's own apply (the right examples, the right output column), and what must get no
attribution gets exactly none: padded time steps, and the nodes of the batch's other graphs for a graph head.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxflow
from jaxflow.inspect import explain
from jaxflow.inspect import trained_run as subject
from tests.conftest import config_path

GRAPHS_64 = ["data.train_examples=64", "train.batch_size=64"]
ONE_EPOCH = ["train.epochs=1", "train.histogram_every=1000", "train.class_report_every=1000"]
FAMILIES = {
  "stack": ("digits_mlp.py", ["model.name=stack", "model.stages=('mlp',)", "model.widths=(16,)"], "image"),
  "gat": ("karate_gcn.py", ["model.name=gat", "model.widths=(8,)"], "graph"),
  # 64 graphs in one batch: one training step, so one padded shape compiled (two batches of 32 compiled two).
  "graph_network": (
    "graph_cycles_gcn.py",
    ["model.name=graph_network", "model.widths=(8,)", "model.message_steps=1", *GRAPHS_64],
    "graph",
  ),
  "gcn_graph_head": ("graph_cycles_gcn.py", ["model.widths=(8,)", *GRAPHS_64], "graph"),
  "padded_sequences": ("adding_rnn.py", ["model.rnn_hidden=(8,)", "data.train_examples=200"], "sequence"),
}


def explained(tmp_path, config_file: str, overrides: list[str], examples: int = 4):
  workdir = str(tmp_path / "run")
  summary = jaxflow.train(jaxflow.load_config(config_path(config_file), [*ONE_EPOCH, *overrides]), workdir, quiet=True)
  run = subject.load_run(workdir, randomize=False)
  chosen = subject.choose_examples(run, examples)
  analyse = functools.partial(explain.analyse, chosen.apply_fn, path_steps=16, ig_steps=16, samples=2)
  out = jax.device_get(jax.jit(analyse)(run.params, chosen.x, chosen.target, jax.random.key(0, impl="rbg")))
  x, target = jnp.asarray(chosen.x), np.asarray(chosen.target)
  score = lambda z: jnp.sum(chosen.apply_fn(run.params, z)[jnp.arange(len(target)), target])  # noqa: E731
  # Examples are independent along axis 0 (trained_run's contract), so the gradient of the summed scores is
  # each example's own gradient. Jitted: op by op, every primitive of the model compiled alone (3-4 CPU-s a
  # family here, against ~0.4 s for the one program); the math is the same jax.grad of the same apply.
  reference = np.asarray(jax.jit(jax.grad(score))(x))
  for method in ("vanilla_gradient", "gradient_x_input", "smoothgrad", "integrated_gradients"):
    assert out[method].shape == chosen.x.shape and np.all(np.isfinite(out[method])), method
  # The same float32 gradient computed in another program (vmapped over the path): rounding ~1e-7 relative.
  np.testing.assert_allclose(out["vanilla_gradient"], reference, rtol=1e-4, atol=1e-6 * np.abs(reference).max())
  assert np.abs(reference).max() > 0
  return run, chosen, out, summary


@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_explain_family(tmp_path, family):
  config_file, overrides, kind = FAMILIES[family]
  run, chosen, out, summary = explained(tmp_path, config_file, overrides)
  assert run.family == kind
  if "data.train_examples=64" in overrides:  # graph_cycles trains on its first 64 graphs: one batch of 64
    assert summary["steps"] == 1
  if family == "padded_sequences":
    steps = np.arange(chosen.x.shape[1])[None, :]
    padded = steps >= chosen.lengths[:, None]
    assert padded.any() and (~padded).any()
    for method in ("vanilla_gradient", "gradient_x_input", "integrated_gradients"):
      assert np.all(out[method][padded] == 0.0), method  # a masked step cannot move the output
    assert np.abs(out["vanilla_gradient"][~padded]).max() > 0
  if family in ("graph_network", "gcn_graph_head"):
    for i, rows in enumerate(chosen.node_rows):  # a graph's output sees its own nodes only
      others = np.setdiff1d(np.arange(chosen.x.shape[1]), rows)
      assert np.all(out["vanilla_gradient"][i][others] == 0.0)
      assert np.abs(out["vanilla_gradient"][i][rows]).max() > 0


@pytest.mark.slow
def test_explain_flat_features(tmp_path):
  """An .npz of 4 flat features (the `array` family: no image axes)."""
  rng = np.random.default_rng(2)
  y = np.arange(40) % 2
  x = rng.normal(size=(40, 4)) + 3.0 * y[:, None]
  split = np.where(np.arange(40) < 32, "train", "test")
  path = str(tmp_path / "flat.npz")
  np.savez(path, x=x, y=y, split=split)  # read as input "features"
  overrides = [f"data.name=npz:{path}", "data.input_feature=features", "data.label_feature=y", "model.widths=(16,)"]
  run, chosen, out, _ = explained(tmp_path, "digits_mlp.py", [*overrides, "train.batch_size=8"])
  assert run.family == "array" and chosen.x.shape == (4, 4)
