"""Hybrids by composition: registry models chained headless, one head, parameters named by stage."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxflow
from jaxflow import models
from tests.conftest import config_path


def build(*overrides: str):
  config = jaxflow.load_config(config_path("digits_conv_lstm.py"), list(overrides))
  return config, models.create_model(config.model, output_dim=10)


def test_conv_stem_feeds_lstm_over_rows():
  _, model = build()
  x = jnp.asarray(np.random.default_rng(0).random((3, 8, 8, 1)), jnp.float32)
  params = jax.jit(model.init)(jax.random.key(0), x)["params"]
  assert sorted(params) == ["cnn", "head", "rnn"]
  assert params["cnn"]["conv_0"]["kernel"].shape == (3, 3, 1, 32)
  # The LSTM's input kernel sees a row of the stem's maps: 8 columns x 32 channels = 256 features.
  lstm_kernels = [leaf.shape for path, leaf in jax.tree_util.tree_flatten_with_path(params["rnn"])[0] if leaf.ndim == 2]
  assert (256, 4 * 64) in lstm_kernels or (256, 64) in lstm_kernels
  assert params["head"]["kernel"].shape == (64, 10)
  assert model.apply({"params": params}, x).shape == (3, 10)


def test_stage_names_are_unique():
  from jaxflow.models.stack import stage_names

  assert stage_names(("cnn", "mlp", "cnn", "cnn")) == ["cnn", "mlp", "cnn_1", "cnn_2"]


def test_stack_of_one_equals_its_model_with_a_head():
  """stages=("mlp",) is an MLP whose head moved out of the stage: the same parameters (shapes, renamed under
  the stage) compute the same function. The stack's parameters, moved to the MLP's names, give the MLP's
  outputs on random digits-shaped inputs: the same float32 ops in the same order, so equal to rounding
  (1e-6 on logits of size ~1)."""
  config = jaxflow.load_config(config_path("digits_mlp.py"), ["model.name=stack", "model.stages=('mlp',)"])
  stacked = models.create_model(config.model, output_dim=10)
  plain = models.create_model(jaxflow.load_config(config_path("digits_mlp.py")).model, output_dim=10)
  x = jnp.asarray(np.random.default_rng(0).random((4, 8, 8, 1)), jnp.float32)
  params = stacked.init(jax.random.key(0), x)["params"]
  renamed = {**params["mlp"], "head": params["head"]}
  assert jax.tree.map(np.shape, renamed) == jax.tree.map(np.shape, plain.init(jax.random.key(0), x)["params"])
  out = stacked.apply({"params": params}, x)
  np.testing.assert_allclose(out, plain.apply({"params": renamed}, x), rtol=1e-6, atol=1e-6)
  assert float(jnp.std(out)) > 0.01  # the logits vary across inputs: the comparison is not of constants


@pytest.mark.parametrize("stages", [("cnn", "transformer"), ("stack",), ()])
def test_bad_stages(stages):
  with pytest.raises(jaxflow.ConfigError, match="config.model.stages"):
    build(f"model.stages={stages!r}".replace("()", "()"))


def test_hybrid_trains_end_to_end(tmp_path):
  summary = jaxflow.train(
    jaxflow.load_config(config_path("digits_conv_lstm.py:test")), str(tmp_path / "hybrid"), quiet=True
  )
  assert summary["steps_per_dispatch"] == 1  # a stack with a conv stage follows the CPU conv rule
  assert summary["final"]["eval"]["accuracy"] > 0.5
