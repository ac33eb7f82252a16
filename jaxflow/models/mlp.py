"""Multilayer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.activations import get_activation
from jaxflow.models.dropout import Dropout
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
    x = jnp.reshape(inputs, (inputs.shape[0], -1))
    return dense_tail(self, x, self.widths, self.output_dim, train=train)


def dense_tail(
  module: nn.Module, x: jax.Array, widths: Sequence[int], output_dim: int | None, *, train: bool
) -> jax.Array:
  """Dense -> activation (sown as `dense_i_act`) -> dropout per width, then the `head` (unless headless).

  Called from inside a module's compact method (the MLP's, the CNN's after its conv layers), so the layers
  are that module's own `dense_i` and `head`; reads `activation`, `dropout_rate` and `inits` from it.
  x: [batch, features] -> [batch, output_dim], or [batch, widths[-1]] when output_dim is None.
  """
  act, inits = get_activation(module.activation), module.inits
  for i, width in enumerate(widths):
    name = f"dense_{i}"
    x = act(nn.Dense(width, name=name, kernel_init=inits.kernel_init(name), bias_init=inits.bias_init(name))(x))
    module.sow("intermediates", f"{name}_act", x)
    x = Dropout(module.dropout_rate, deterministic=not train)(x)
  if output_dim is None:
    return x
  return nn.Dense(output_dim, name="head", kernel_init=inits.kernel_init("head"), bias_init=inits.bias_init("head"))(x)
