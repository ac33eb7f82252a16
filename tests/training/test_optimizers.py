"""jaxflow.training.optimizers: every optimizer optimizes, schedules by value, weight decay, clipping."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import base
from jaxflow.training import optimizers


def optim_config(**fields):
  optim = base.get_config().optim
  for name, value in fields.items():
    optim[name] = value
  return optim


def build(total_steps: int = 100, steps_per_epoch: int = 10, **fields):
  optim = optim_config(**fields)
  schedule = optimizers.create_schedule(optim, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  return optimizers.create_optimizer(optim, schedule), schedule


def lrs(schedule, steps):
  return np.array([float(schedule(s)) for s in steps])


def first_update(tx, grads, params):
  """The updates of the first step, from a fresh state (jitted: one compile, not one per eager op)."""
  return jax.jit(lambda g, p: tx.update(g, tx.init(p), p)[0])(grads, params)


# A flax-shaped parameter tree: kernels are [in, out], biases [out].
TARGET = {"dense": {"kernel": jnp.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]), "bias": jnp.array([0.5, -0.5, 2.0])}}


def quadratic(params):
  return sum(jnp.sum((p - t) ** 2) for p, t in zip(jax.tree.leaves(params), jax.tree.leaves(TARGET)))


@pytest.mark.parametrize("name", optimizers.OPTIMIZER_NAMES)
def test_every_optimizer_decreases_a_quadratic(name):
  tx, _ = build(name=name, lr=0.5 if name == "adagrad" else 0.1)  # adagrad's steps shrink as 1/sqrt(t)
  params = jax.tree.map(jnp.zeros_like, TARGET)

  @jax.jit
  def run(params):
    def body(carry, _):
      params, opt_state = carry
      loss, grads = jax.value_and_grad(quadratic)(params)
      updates, opt_state = tx.update(grads, opt_state, params)
      return (optax.apply_updates(params, updates), opt_state), loss

    (params, _), trace = jax.lax.scan(body, (params, tx.init(params)), None, length=50)
    return params, trace

  final, trace = run(params)
  start, end = float(quadratic(params)), float(quadratic(final))
  assert start == pytest.approx(19.75)  # sum of squared targets: 15.25 + 4.5
  assert end < 0.05 * start, (name, start, end)
  assert float(trace[1]) < start  # the very first step already helps


def test_registries():
  """The names the config validator checks against."""
  assert set(optimizers.OPTIMIZER_NAMES) == {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad"}
  assert set(optimizers.SCHEDULE_NAMES) == {"constant", "cosine", "exponential", "linear"}


def test_constant_schedule():
  _, schedule = build(lr=0.02, schedule="constant")
  np.testing.assert_allclose(lrs(schedule, [0, 1, 50, 99, 100, 1000]), 0.02, rtol=1e-6)


def test_cosine_schedule_endpoints_and_midpoint():
  _, schedule = build(total_steps=100, lr=0.1, schedule="cosine", end_lr_factor=0.1)
  assert float(schedule(0)) == pytest.approx(0.1, rel=1e-6)
  # Half way the cosine is at the mean of start and end.
  assert float(schedule(50)) == pytest.approx(0.1 * (0.1 + 0.9 * 0.5), rel=1e-5)
  assert float(schedule(100)) == pytest.approx(0.1 * 0.1, rel=1e-5)
  assert float(schedule(150)) == pytest.approx(0.01, rel=1e-5)  # stays at the end value
  values = lrs(schedule, range(101))
  assert np.all(np.diff(values) <= 1e-9)


def test_linear_schedule():
  _, schedule = build(total_steps=100, lr=0.1, schedule="linear", end_lr_factor=0.2)
  np.testing.assert_allclose(lrs(schedule, [0, 50, 100]), [0.1, 0.06, 0.02], rtol=1e-5)


def test_exponential_schedule_halves_after_decay_steps():
  _, schedule = build(lr=0.1, schedule="exponential", decay_rate=0.5, decay_steps=10)
  np.testing.assert_allclose(lrs(schedule, [0, 10, 20, 5]), [0.1, 0.05, 0.025, 0.1 * 0.5**0.5], rtol=1e-5)


def test_exponential_schedule_defaults_to_one_epoch():
  _, schedule = build(steps_per_epoch=7, lr=0.1, schedule="exponential", decay_rate=0.5, decay_steps=None)
  np.testing.assert_allclose(lrs(schedule, [0, 7, 14]), [0.1, 0.05, 0.025], rtol=1e-5)


@pytest.mark.parametrize("schedule_name", ["constant", "cosine", "exponential"])
def test_warmup_then_schedule(schedule_name):
  warmup, total = 10, 110
  fields = dict(lr=0.1, schedule=schedule_name, end_lr_factor=0.1, decay_steps=20)
  _, warmed = build(total_steps=total, warmup_steps=warmup, **fields)
  # Linear from 0 to lr over the warmup steps.
  np.testing.assert_allclose(lrs(warmed, [0, 5, 10]), [0.0, 0.05, 0.1], rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(lrs(warmed, range(11)), 0.1 * np.arange(11) / 10, rtol=1e-5, atol=1e-9)
  # Then the schedule, started at the end of the warmup and spanning the remaining steps.
  _, plain = build(total_steps=total - warmup, warmup_steps=0, **fields)
  after = np.arange(0, 101, 5)
  np.testing.assert_allclose(lrs(warmed, warmup + after), lrs(plain, after), rtol=1e-5)
  if schedule_name == "cosine":
    assert float(warmed(total)) == pytest.approx(0.01, rel=1e-5)


def test_schedule_drives_the_optimizer():
  tx, schedule = build(name="sgd", lr=0.5, warmup_steps=4)
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.ones(3)}
  opt_state = tx.init(params)
  seen = []
  for _ in range(6):
    updates, opt_state = tx.update(grads, opt_state, params)
    seen.append(-float(updates["w"][0]))
  np.testing.assert_allclose(seen, lrs(schedule, range(6)), rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(seen, [0.0, 0.125, 0.25, 0.375, 0.5, 0.5], rtol=1e-6, atol=1e-9)


PARAMS = {
  "dense_0": {"kernel": jnp.full((3, 2), 2.0), "bias": jnp.full((2,), 2.0)},
  "conv_0": {"kernel": jnp.full((3, 3, 1, 2), 2.0), "bias": jnp.full((2,), 2.0)},
}


@pytest.mark.parametrize("name", ["sgd", "adamw", "momentum"])
def test_weight_decay_hits_kernels_not_biases(name):
  lr, wd = 0.1, 0.5
  tx, _ = build(name=name, lr=lr, weight_decay=wd)
  zero_grads = jax.tree.map(jnp.zeros_like, PARAMS)
  updates = first_update(tx, zero_grads, PARAMS)
  new = optax.apply_updates(PARAMS, updates)
  for layer in PARAMS:
    # sgd: p - lr * wd * p (coupled L2); adamw: p - lr * wd * p (decoupled); momentum's first step is the same.
    np.testing.assert_allclose(new[layer]["kernel"], 2.0 * (1 - lr * wd), rtol=1e-6)
    np.testing.assert_array_equal(new[layer]["bias"], PARAMS[layer]["bias"])


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_no_weight_decay_leaves_params_alone(name):
  tx, _ = build(name=name, lr=0.1, weight_decay=0.0)
  zero_grads = jax.tree.map(jnp.zeros_like, PARAMS)
  updates = first_update(tx, zero_grads, PARAMS)
  for leaf in jax.tree.leaves(updates):
    np.testing.assert_array_equal(leaf, 0.0)


def test_adamw_decay_is_decoupled_from_gradient_scale():
  """adamw's decay is lr * wd * p whatever the gradient; coupled decay in adam would be normalized away."""
  lr, wd = 0.1, 0.5
  tx, _ = build(name="adamw", lr=lr, weight_decay=wd)
  params = {"kernel": jnp.full((2, 2), 2.0)}
  grads = {"kernel": jnp.full((2, 2), 1e-3)}
  updates = first_update(tx, grads, params)
  # First adam step is -lr * sign(g) (bias-corrected m / sqrt(v)), plus the decoupled decay.
  np.testing.assert_allclose(updates["kernel"], -lr * 1.0 - lr * wd * 2.0, rtol=1e-4)


def test_clip_norm_bounds_the_update():
  tx, _ = build(name="sgd", lr=1.0, clip_norm=0.5)
  params = {"kernel": jnp.zeros((2, 3)), "bias": jnp.zeros(3)}
  huge = {"kernel": jnp.full((2, 3), 1e6), "bias": jnp.full((3,), -1e6)}
  updates = first_update(tx, huge, params)
  assert float(optax.tree.norm(updates)) == pytest.approx(0.5, rel=1e-5)
  # Clipping rescales the whole gradient, so its direction is kept: 9 entries of equal size.
  np.testing.assert_allclose(updates["kernel"], -0.5 / 3, rtol=1e-5)
  np.testing.assert_allclose(updates["bias"], 0.5 / 3, rtol=1e-5)
  # Below the bound the gradient passes untouched.
  small = {"kernel": jnp.full((2, 3), 0.01), "bias": jnp.zeros(3)}
  updates = first_update(tx, small, params)
  np.testing.assert_allclose(updates["kernel"], -0.01, rtol=1e-6)


def test_no_clip_passes_huge_gradient():
  tx, _ = build(name="sgd", lr=1.0, clip_norm=None)
  params = {"kernel": jnp.zeros((2, 3))}
  updates = first_update(tx, {"kernel": jnp.full((2, 3), 1e6)}, params)
  np.testing.assert_allclose(updates["kernel"], -1e6, rtol=1e-6)
