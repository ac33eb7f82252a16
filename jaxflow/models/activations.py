"""Activation functions by name, so a config can say `model.activation = "gelu"`."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def step(x: jax.Array) -> jax.Array:
  """Heaviside step forward, identity gradient backward (straight-through estimator).

  The true derivative is zero almost everywhere, so a network of step units cannot learn by gradient
  descent; the straight-through trick passes the gradient as if the unit were the identity.
  """
  # hard + (x - sg(x)), not x + sg(hard - x): the latter rounds in float32 (step(1e8) gave 0.0).
  hard = (x > 0).astype(x.dtype)
  return hard + (x - jax.lax.stop_gradient(x))


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
  "relu": nn.relu,
  "sigmoid": nn.sigmoid,
  "tanh": jnp.tanh,
  "leaky_relu": nn.leaky_relu,
  "gelu": nn.gelu,
  "swish": nn.swish,
  "step": step,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  return ACTIVATIONS[name]
