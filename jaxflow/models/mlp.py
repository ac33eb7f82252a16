"""Multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.activations import get_activation
from jaxflow.models.initializers import LayerInits


class MLP(nn.Module):
  """Flatten, then Dense -> activation -> dropout per hidden width, then a Dense head.

  inputs: [batch, *features] (e.g. [batch, 8, 8, 1]); returns [batch, output_dim] (logits or values).
  Each hidden layer's post-activation output is sown into the `intermediates` collection as
  `LAYER_act` (a no-op unless that collection is mutable), for the layer statistics.
  """

  widths: Sequence[int]
  output_dim: int | None  # None: headless, returns the last hidden features [batch, widths[-1]] (a stack stage)
  activation: str = "relu"
  dropout_rate: float = 0.0
  inits: LayerInits = LayerInits()

  @nn.compact
  def __call__(self, inputs: jax.Array, *, train: bool = False) -> jax.Array:
    act = get_activation(self.activation)
    x = jnp.reshape(inputs, (inputs.shape[0], -1))
    for i, width in enumerate(self.widths):
      name = f"dense_{i}"
      x = act(nn.Dense(width, name=name, kernel_init=self.inits.kernel_init(name), bias_init=self.inits.bias_init(name))(x))
      self.sow("intermediates", f"{name}_act", x)
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    if self.output_dim is None:
      return x
    return nn.Dense(self.output_dim, name="head", kernel_init=self.inits.kernel_init("head"), bias_init=self.inits.bias_init("head"))(x)
