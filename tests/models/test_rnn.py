"""jaxflow.models.rnn: shapes, masking of variable lengths, gradients, capacity, registry, one smoke run."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from configs import digits_rnn
from jaxflow.config import ConfigError, load_config
from jaxflow.models import LayerInits, create_model
from jaxflow.models.rnn import CELLS, RNN
from tests.conftest import config_path

TIME, FEATURES, CLASSES = 5, 3, 4
LENGTHS = np.array([5, 2, 2], np.int32)  # one full sequence, two padded ones of equal length


def make(cell: str, *, bidirectional: bool = False, head: str = "many_to_one", hidden=None, **kw) -> RNN:
  """Bidirectional models stack two layers (the second reads the first's outputs, padded steps
  included); unidirectional ones have one, which halves their compile time."""
  hidden = hidden or ((6, 5) if bidirectional else (6,))
  return RNN(cell=cell, hidden_sizes=hidden, output_dim=CLASSES, bidirectional=bidirectional, head=head, **kw)


def sequences(batch: int, seed: int = 1, time: int = TIME, dtype=np.float32) -> jax.Array:
  return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, time, FEATURES)).astype(dtype))


def init(model: RNN, inputs, seed: int = 0, dtype=np.float32):
  """Parameters drawn with numpy (fan-in scaled, biases non-zero) in the structure model.init would give.

  model.init would compile a threefry kernel per parameter shape and a QR per recurrent kernel; these
  tests need the right structure and sensible values, not flax's initializers.
  """
  rng = np.random.default_rng(seed)

  def draw(shape):
    fan_in = shape.shape[0] if len(shape.shape) > 1 else 1
    return jnp.asarray((rng.normal(size=shape.shape) / np.sqrt(fan_in)).astype(dtype))

  return {"params": jax.tree.map(draw, jax.eval_shape(model.init, jax.random.key(0), inputs)["params"])}


@functools.cache
def runner(model: RNN):
  """One jitted apply per model (modules hash by their fields) -> (outputs, {layer: sown final state});
  tests that feed the same model the same shapes share one compilation."""

  @jax.jit
  def run(variables, inputs):
    outputs, state = model.apply(variables, inputs, mutable=["intermediates"])
    return outputs, {name: value[0] for name, value in state["intermediates"].items()}

  return run


def run_final(model: RNN, variables, inputs) -> tuple[jax.Array, jax.Array]:
  """(outputs, the last layer's final state [batch, hidden or 2 * hidden])."""
  outputs, sown = runner(model)(variables, inputs)
  return outputs, sown[f"rnn_{len(model.hidden_sizes) - 1}_act"]


def padded(x: jax.Array, lengths=LENGTHS) -> dict:
  return {"sequence": x, "lengths": jnp.asarray(lengths, jnp.int32)}


@pytest.mark.parametrize("head", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes(cell, bidirectional, head):
  model = make(cell, bidirectional=bidirectional, head=head)
  x = sequences(3)
  variables = init(model, x)
  out, sown = runner(model)(variables, padded(x))
  assert out.shape == ((3, CLASSES) if head == "many_to_one" else (3, TIME, CLASSES))
  assert out.dtype == jnp.float32
  assert np.all(np.isfinite(out)) and np.std(out) > 1e-3  # real, varied outputs
  # Every layer sows its final state; bidirectional, forward and backward final states side by side.
  widths = {"rnn_0": 2 * 6, "rnn_1": 2 * 5} if bidirectional else {"rnn_0": 6}
  assert {name: v.shape for name, v in sown.items()} == {f"{name}_act": (3, w) for name, w in widths.items()}
  assert all(float(jnp.std(v)) > 1e-3 for v in sown.values())
  params = variables["params"]
  assert set(params) == {*widths, "head"}
  final = sown[f"rnn_{len(widths) - 1}_act"]
  assert params["head"]["kernel"].shape == (final.shape[1], CLASSES)
  if head == "many_to_one":  # the head reads the last layer's final state, exactly what was sown
    np.testing.assert_allclose(out, final @ params["head"]["kernel"] + params["head"]["bias"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("head", ["many_to_one", "many_to_many"])
def test_headless_returns_the_features_the_head_reads(head):
  model = RNN(cell="lstm", hidden_sizes=(6,), output_dim=None, head=head)  # a stage of a stacked model
  x = sequences(3)
  variables = init(model, x)
  assert set(variables["params"]) == {"rnn_0"}
  out, sown = runner(model)(variables, padded(x))
  assert out.shape == ((3, 6) if head == "many_to_one" else (3, TIME, 6))
  if head == "many_to_one":
    np.testing.assert_array_equal(out, sown["rnn_0_act"])
  else:  # the last valid step's output is the final state
    np.testing.assert_allclose(out[np.arange(3), LENGTHS - 1], sown["rnn_0_act"], rtol=1e-6, atol=1e-7)


def test_lstm_parameter_count_and_layout():
  # Per LSTM layer: 4 gates x (input kernel, recurrent kernel, one bias), the flax LSTMCell layout.
  params = init(make("lstm", hidden=(6,), bidirectional=True), sequences(1))["params"]
  cell = params["rnn_0"]["forward_rnn"]["cell"]
  assert sorted(cell) == ["hf", "hg", "hi", "ho", "if", "ig", "ii", "io"]
  assert cell["ii"]["kernel"].shape == (FEATURES, 6) and cell["hi"]["kernel"].shape == (6, 6)
  lstm = 4 * (FEATURES * 6 + 6 * 6 + 6)
  assert sum(np.size(p) for p in jax.tree.leaves(params)) == 2 * lstm + (12 * CLASSES + CLASSES)


def test_image_is_read_as_rows():
  model = make("simple", hidden=(6,))
  image = jnp.asarray(np.random.default_rng(2).uniform(size=(2, 4, 3, 2)).astype(np.float32))  # [b, h, w, c]
  rows = image.reshape(2, 4, 6)  # 4 steps of width * channels features
  variables = init(model, rows)
  run = jax.jit(model.apply)
  out = run(variables, image)
  assert out.shape == (2, CLASSES)
  np.testing.assert_array_equal(out, run(variables, rows))


MASKED = [("lstm", False), ("lstm", True), ("gru", True), ("simple", True)]  # bidirectional covers both directions


@pytest.mark.parametrize("cell, bidirectional", MASKED, ids=[f"{c}-{'bi' if b else 'uni'}" for c, b in MASKED])
def test_variable_lengths_match_truncated_sequences(cell, bidirectional):
  """Each example's many-to-one output equals the same model run on its sequence cut to its length.

  Bidirectional, this holds only if the backward pass starts at the last *valid* step (not in the
  padding) and its final state is the one after step 0. Two stacked layers: the second reads the
  first's outputs at padded steps, which must not matter either.
  """
  model = make(cell, bidirectional=bidirectional)
  x = sequences(3)
  variables = init(model, x)
  out, _ = run_final(model, variables, padded(x))
  full, _ = run_final(model, variables, padded(x, [TIME] * 3))  # every step is data (and the same compilation)
  cut, _ = run_final(model, variables, x[1:, : LENGTHS[1]])  # examples 1 and 2 have the same length
  np.testing.assert_allclose(out[0], full[0], rtol=1e-5, atol=1e-6)  # length == time: nothing padded
  np.testing.assert_allclose(out[1:], cut, rtol=1e-5, atol=1e-6)
  # Read as data (lengths = time), the padding changes the outputs: the check above has teeth.
  assert not np.allclose(out[1:], full[1:], atol=1e-3)


@pytest.mark.parametrize("head", ["many_to_one", "many_to_many"])
@pytest.mark.parametrize("cell, bidirectional", MASKED, ids=[f"{c}-{'bi' if b else 'uni'}" for c, b in MASKED])
def test_padding_values_do_not_change_outputs(cell, bidirectional, head):
  """Whatever the padding holds: many-to-one outputs and many-to-many outputs at valid steps stay put."""
  model = make(cell, bidirectional=bidirectional, head=head)
  x = sequences(3)
  variables = init(model, x)
  pad = np.arange(TIME)[None, :] >= LENGTHS[:, None]  # [batch, time]
  garbage = jnp.where(pad[..., None], 100.0 * sequences(3, seed=7), x)
  assert not np.array_equal(garbage, x)
  (out, final), (out_garbage, final_garbage) = (
    run_final(model, variables, padded(x)),
    run_final(model, variables, padded(garbage)),
  )
  valid = slice(None) if head == "many_to_one" else ~pad
  np.testing.assert_allclose(np.asarray(out)[valid], np.asarray(out_garbage)[valid], rtol=1e-6, atol=1e-6)
  np.testing.assert_allclose(final, final_garbage, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
  "cell, bidirectional", [("lstm", True), ("gru", False), ("simple", False)], ids=["lstm-bi", "gru-uni", "simple-uni"]
)
def test_gradients_match_finite_differences(cell, bidirectional):
  """Reverse-mode gradients through the length masking (and both directions, for the LSTM), in float64."""
  with jax.enable_x64(True):
    model = make(cell, bidirectional=bidirectional, hidden=(3,), param_dtype=jnp.float64)
    x = sequences(3, time=4, dtype=np.float64)
    lengths = jnp.array([4, 2, 1])
    labels = jnp.array([0, 3, 1])
    params = init(model, x, dtype=np.float64)["params"]
    assert jax.tree.leaves(params)[0].dtype == jnp.float64

    @jax.jit
    def loss(params, sequence):
      logits = model.apply({"params": params}, {"sequence": sequence, "lengths": lengths})
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    assert np.isfinite(loss(params, x)) and loss(params, x).dtype == jnp.float64
    check_grads(loss, (params, x), order=1, modes=("rev",), atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_overfits_tiny_dataset(cell):
  """16 random variable-length sequences with random labels: memorized exactly, so the cell can learn."""
  rng = np.random.default_rng(3)
  inputs = {"sequence": sequences(16, seed=4), "lengths": jnp.asarray(rng.integers(2, TIME + 1, size=16))}
  labels = jnp.asarray(rng.integers(0, CLASSES, size=16))
  model = make(cell, hidden=(32,))
  tx = optax.adam(1e-2)
  params = init(model, inputs["sequence"])["params"]

  def loss_fn(params):
    logits = model.apply({"params": params}, inputs)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  @jax.jit
  def fit(params):
    def step(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(loss_fn)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), losses = jax.lax.scan(step, (params, tx.init(params)), length=150)
    return params, losses

  params, losses = fit(params)
  predictions = jnp.argmax(model.apply({"params": params}, inputs), axis=-1)
  assert losses[-1] < 0.05 < losses[0]
  assert float(jnp.mean(predictions == labels)) == 1.0


def test_registry_builds_digits_rnn():
  config = digits_rnn.get_config()
  model = create_model(config.model, output_dim=10)
  assert isinstance(model, RNN)
  assert (model.cell, tuple(model.hidden_sizes), model.bidirectional, model.head) == (
    "lstm",
    (128,),
    False,
    "many_to_one",
  )
  assert model.dropout_rate == config.model.dropout_rate > 0
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
  assert set(params) == {"rnn_0", "head"}
  # 8 rows of 8 pixels into 128 LSTM units, then a 10-way head.
  assert sum(np.size(p) for p in jax.tree.leaves(params)) == 4 * (8 * 128 + 128 * 128 + 128) + 128 * 10 + 10 == 71434


def test_registry_rejects_bad_rnn_fields():
  for field, value, says in (
    ("rnn_cell", "transformer", "allowed: lstm, gru, simple"),
    ("rnn_head", "one_to_many", "allowed: many_to_one, many_to_many"),
    ("rnn_hidden", (), "non-empty tuple of positive ints"),
    ("rnn_hidden", (64, 0), "non-empty tuple of positive ints"),
  ):
    config = digits_rnn.get_config().model
    config[field] = value
    with pytest.raises(ConfigError, match=f"config.model.{field}=.*{says}"):
      create_model(config, output_dim=10)


def test_layer_inits_reach_cell_input_kernels_and_biases():
  inits = LayerInits(overrides=("rnn_0.kernel=constant(0.5)", "rnn_0.bias=constant(0.25)", "head.bias=constant(-1)"))
  model = make("lstm", hidden=(4,), inits=inits)
  params = jax.jit(model.init)(jax.random.key(0), sequences(1))["params"]
  cell = params["rnn_0"]["cell"]
  np.testing.assert_array_equal(cell["ii"]["kernel"], np.full((FEATURES, 4), 0.5))
  np.testing.assert_array_equal(cell["hf"]["bias"], np.full(4, 0.25))
  np.testing.assert_array_equal(params["head"]["bias"], np.full(CLASSES, -1.0))
  recurrent = np.asarray(cell["hi"]["kernel"])  # recurrent kernels keep flax's orthogonal init
  np.testing.assert_allclose(recurrent @ recurrent.T, np.eye(4), atol=1e-5)


def test_train_digits_rnn_end_to_end(tmp_path):
  import jaxflow

  config = load_config(config_path("digits_rnn.py") + ":test")
  summary = jaxflow.train(config, str(tmp_path / "run"), quiet=True)
  assert summary["status"] == "completed"
  assert summary["steps"] == 2 * (1437 // config.train.batch_size)
  assert summary["num_params"] == 71434
  assert summary["final"]["eval"]["accuracy"] > 0.5  # two epochs are far above chance (0.1)
  assert (tmp_path / "run" / "summary.json").exists()
