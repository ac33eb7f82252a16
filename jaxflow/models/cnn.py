"""Small convolutional network for images."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.activations import get_activation


class CNN(nn.Module):
  """Conv(kxk, SAME) -> activation [-> 2x2 max-pool] per conv layer, flatten, dense layers, head.

  inputs: [batch, height, width, channels]; returns [batch, output_dim].
  """

  conv_features: Sequence[int]
  widths: Sequence[int]
  output_dim: int
  kernel_size: int = 3
  pool: bool = True
  activation: str = "relu"
  dropout_rate: float = 0.0

  @nn.compact
  def __call__(self, inputs: jax.Array, *, train: bool = False) -> jax.Array:
    act = get_activation(self.activation)
    x = inputs
    for i, features in enumerate(self.conv_features):
      x = act(nn.Conv(features, (self.kernel_size, self.kernel_size), padding="SAME", name=f"conv_{i}")(x))
      if self.pool and min(x.shape[1:3]) >= 2:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = jnp.reshape(x, (x.shape[0], -1))
    for i, width in enumerate(self.widths):
      x = act(nn.Dense(width, name=f"dense_{i}")(x))
      x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.output_dim, name="head")(x)
