"""jaxflow.models: shapes, exact parameter counts, dropout, activations, gradients, capacity."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from configs import base, digits_cnn, digits_mlp
from jaxflow.models import ACTIVATIONS, CONV_MODELS, MODELS, create_model, get_activation
from jaxflow.models.activations import step

INPUT_SHAPE = (8, 8, 1)


def count_params(params) -> int:
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def param_shapes(model, batch: int = 4):
  """Parameter shapes without running the initializers (abstract evaluation compiles nothing)."""
  x = jax.ShapeDtypeStruct((batch, *INPUT_SHAPE), jnp.float32)
  return jax.eval_shape(model.init, jax.random.key(0), x)["params"]


def init(model, seed: int = 0, dtype=np.float32):
  """Deterministic parameters drawn with numpy, fan-in scaled, biases non-zero.

  model.init would compile a threefry kernel per parameter shape (~0.5 s each on this CPU); the tests
  here need parameters with the right structure and sensible values, not flax's initializers.
  """
  rng = np.random.default_rng(seed)

  def draw(shape):
    fan_in = int(np.prod(shape.shape[:-1])) if len(shape.shape) > 1 else 1
    return jnp.asarray((rng.normal(size=shape.shape) / np.sqrt(fan_in)).astype(dtype))

  return jax.tree.map(draw, param_shapes(model))


def random_inputs(batch: int, seed: int = 1) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).uniform(size=(batch, *INPUT_SHAPE)).astype(np.float32))


def test_registry_names():
  assert set(MODELS) == {"mlp", "cnn", "rnn", "stack", "gcn", "gat", "graph_network"}
  assert CONV_MODELS == {"cnn"}


@pytest.mark.parametrize("batch", [1, 5])
def test_mlp_output_shape_and_param_count(batch):
  model = create_model(digits_mlp.get_config().model, output_dim=10)
  params = init(model)
  out = jax.jit(model.apply)({"params": params}, random_inputs(batch))
  assert out.shape == (batch, 10)
  assert out.dtype == jnp.float32
  # 64 -> 256 -> 256 -> 10, each Dense with a bias.
  assert count_params(params) == (64 * 256 + 256) + (256 * 256 + 256) + (256 * 10 + 10) == 85002
  assert params["dense_0"]["kernel"].shape == (64, 256)
  assert params["head"]["kernel"].shape == (256, 10)


@pytest.mark.parametrize("batch", [1, 5])
def test_cnn_output_shape_and_param_count(batch):
  model = create_model(digits_cnn.get_config().model, output_dim=10)
  params = init(model)
  out = jax.jit(model.apply)({"params": params}, random_inputs(batch))
  assert out.shape == (batch, 10)
  conv_0 = 3 * 3 * 1 * 32 + 32  # 8x8x1 -> 8x8x32, pooled to 4x4x32
  conv_1 = 3 * 3 * 32 * 64 + 64  # 4x4x32 -> 4x4x64, pooled to 2x2x64 = 256 features
  dense_0 = 2 * 2 * 64 * 128 + 128
  head = 128 * 10 + 10
  assert count_params(params) == conv_0 + conv_1 + dense_0 + head == 53002
  assert params["conv_1"]["kernel"].shape == (3, 3, 32, 64)
  assert params["dense_0"]["kernel"].shape == (256, 128)


def test_cnn_stops_pooling_at_one_pixel_and_honours_kernel_size():
  config = base.get_config().model
  config.name = "cnn"
  config.conv_features = (2, 3, 4, 5)
  config.widths = ()
  config.kernel_size = 5
  model = create_model(config, output_dim=7)
  params = param_shapes(model)
  assert jax.eval_shape(model.apply, {"params": params}, random_inputs(3)).shape == (3, 7)
  # 8 -> 4 -> 2 -> 1 -> 1 (no pool below 2x2), so the head sees 1*1*5 features.
  expected = (25 * 1 * 2 + 2) + (25 * 2 * 3 + 3) + (25 * 3 * 4 + 4) + (25 * 4 * 5 + 5) + (5 * 7 + 7)
  assert count_params(params) == expected
  assert params["head"]["kernel"].shape == (5, 7)


def test_cnn_without_pool_keeps_spatial_size():
  config = digits_cnn.get_config().model
  config.pool = False
  params = param_shapes(create_model(config, output_dim=10))
  assert params["dense_0"]["kernel"].shape == (8 * 8 * 64, 128)


@pytest.mark.parametrize("make_config", [digits_mlp.get_config, digits_cnn.get_config], ids=["mlp", "cnn"])
def test_dropout_only_in_train_mode(make_config):
  model_config = make_config().model
  assert model_config.dropout_rate > 0
  model = create_model(model_config, output_dim=10)
  params = init(model)
  x = random_inputs(8)

  run = jax.jit(
    lambda key, train: model.apply({"params": params}, x, train=train, rngs={"dropout": key}), static_argnums=1
  )

  def apply(train, seed):
    return np.asarray(run(jax.random.key(seed), train))

  eval_plain = np.asarray(jax.jit(model.apply)({"params": params}, x))
  np.testing.assert_array_equal(apply(False, 1), apply(False, 2))
  np.testing.assert_allclose(apply(False, 1), eval_plain, rtol=1e-5, atol=1e-5)  # two programs: ~1e-7 apart
  train_1, train_2 = apply(True, 1), apply(True, 2)
  assert np.abs(train_1 - train_2).max() > 1e-3
  assert np.abs(train_1 - eval_plain).max() > 1e-3
  np.testing.assert_array_equal(train_1, apply(True, 1))  # same key, same mask


def test_zero_dropout_train_equals_eval():
  model_config = digits_mlp.get_config().model
  model_config.dropout_rate = 0.0
  model = create_model(model_config, output_dim=10)
  params = init(model)
  x = random_inputs(4)
  np.testing.assert_array_equal(model.apply({"params": params}, x, train=True), model.apply({"params": params}, x))


# Independent reference values of each activation at x = [-2, -0.5, 0, 0.5, 2].
X = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-x))


REFERENCE = {
  "relu": np.maximum(X, 0.0),
  "sigmoid": _sigmoid(X),
  "tanh": np.tanh(X),
  "leaky_relu": np.where(X > 0, X, 0.01 * X),
  # flax's gelu defaults to the tanh approximation.
  "gelu": 0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X**3))),
  "swish": X * _sigmoid(X),
  "step": (X > 0).astype(float),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_values(name):
  assert name in REFERENCE, f"add a reference for the new activation {name!r}"
  out = np.asarray(get_activation(name)(jnp.asarray(X, jnp.float32)))
  np.testing.assert_allclose(out, REFERENCE[name], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_runs_in_mlp(name):
  model_config = base.get_config().model
  model_config.widths = (16,)
  model_config.activation = name
  model = create_model(model_config, output_dim=3)
  params = init(model)
  out = model.apply({"params": params}, random_inputs(4))
  assert out.shape == (4, 3)
  assert np.all(np.isfinite(out))
  # The hidden layer really uses the activation: its output equals act(x @ W + b).
  pre = random_inputs(4).reshape(4, -1) @ params["dense_0"]["kernel"] + params["dense_0"]["bias"]
  np.testing.assert_allclose(
    out, get_activation(name)(pre) @ params["head"]["kernel"] + params["head"]["bias"], rtol=1e-5, atol=1e-5
  )


def test_step_forward_is_exact_heaviside():
  x = jnp.array([-1e8, -3.0, -1e-8, 0.0, 1e-8, 0.1, 0.3, 1.0, 3e7, 1e8, 3e38], jnp.float32)
  expected = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1], np.float32)
  np.testing.assert_array_equal(step(x), expected)
  np.testing.assert_array_equal(jax.jit(step)(x), expected)
  u = jnp.asarray(np.random.default_rng(0).uniform(-100.0, 100.0, 10_000).astype(np.float32))
  assert set(np.unique(np.asarray(step(u))).tolist()) == {0.0, 1.0}


def test_step_gradient_is_straight_through():
  x = jnp.array([-5.0, -0.1, 0.0, 0.1, 5.0, 1e8])
  np.testing.assert_array_equal(jax.jit(jax.grad(lambda v: jnp.sum(3.0 * step(v))))(x), 3 * np.ones(6))
  # Through a network: the step unit passes the upstream gradient unchanged.
  w = jnp.array([0.5, -2.0])
  grad_w = jax.grad(lambda w: jnp.sum(step(w * 2.0) * jnp.array([3.0, 4.0])))(w)
  np.testing.assert_array_equal(grad_w, [6.0, 8.0])


def tiny_model_config(kind: str):
  """Small MLP, CNN and a CNN -> MLP stack, for the checks every model gets."""
  model_config = base.get_config().model
  model_config.activation = "tanh"
  if kind == "mlp":
    model_config.widths = (5, 4)
  elif kind == "cnn":
    model_config.name, model_config.conv_features, model_config.widths = "cnn", (3, 4), (5,)
  else:
    model_config.name, model_config.stages = "stack", ("cnn", "mlp")
    model_config.conv_features, model_config.widths, model_config.pool = (3,), (5,), True
  return model_config


@pytest.mark.parametrize("kind", ["mlp", "cnn", "stack"])
def test_gradients_match_finite_differences(kind):
  model = create_model(tiny_model_config(kind), output_dim=3)
  with jax.enable_x64(True):
    x = jnp.asarray(np.random.default_rng(1).normal(size=(6, *INPUT_SHAPE)))
    labels = jnp.array([0, 1, 2, 0, 1, 2])
    params = init(model, dtype=np.float64)
    assert all(p.dtype == jnp.float64 for p in jax.tree.leaves(params))

    @jax.jit
    def loss(params):
      logits = model.apply({"params": params}, x)
      assert logits.dtype == jnp.float64
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    # Compares jvp and vjp with central differences along random directions (float64: tight tolerances).
    check_grads(loss, (params,), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("kind", ["mlp", "cnn", "stack"])
def test_overfits_tiny_dataset(kind):
  model_config = tiny_model_config(kind)
  model_config.widths = (64,)
  model_config.activation = "relu"
  model = create_model(model_config, output_dim=10)
  x = jnp.asarray(np.random.default_rng(3).normal(size=(16, *INPUT_SHAPE)).astype(np.float32))
  labels = jnp.arange(16) % 10
  params = init(model)
  tx = optax.adam(1e-2)

  def loss_fn(params):
    logits = model.apply({"params": params}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  @jax.jit
  def train(params):
    def body(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(body, (params, tx.init(params)), None, length=200)
    return params, losses

  params, losses = train(params)
  accuracy = float(jnp.mean(jnp.argmax(model.apply({"params": params}, x), -1) == labels))
  assert accuracy == 1.0
  assert float(losses[-1]) < 0.05 * float(losses[0])
