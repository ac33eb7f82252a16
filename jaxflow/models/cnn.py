"""Small convolutional network for images."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.activations import get_activation
from jaxflow.models.initializers import LayerInits
from jaxflow.models.mlp import dense_tail


class CNN(nn.Module):
  """Conv(kxk, SAME) -> activation [-> 2x2 max-pool] per conv layer, flatten, dense layers, head.

  inputs: [batch, height, width, channels]; returns [batch, output_dim]. Post-activation outputs of
  each conv and dense layer are sown into `intermediates` as `LAYER_act` (layer statistics).
  """

  conv_features: Sequence[int]
  widths: Sequence[int]
  output_dim: int | None  # None: headless (a stack stage): feature maps if there are no dense layers
  kernel_size: int = 3
  pool: bool = True
  activation: str = "relu"
  dropout_rate: float = 0.0
  inits: LayerInits = LayerInits()

  @nn.compact
  def __call__(self, inputs: jax.Array, *, train: bool = False) -> jax.Array:
    act = get_activation(self.activation)
    x = inputs
    k, inits = self.kernel_size, self.inits
    for i, features in enumerate(self.conv_features):
      name = f"conv_{i}"
      x = act(
        nn.Conv(
          features,
          (k, k),
          padding="SAME",
          name=name,
          kernel_init=inits.kernel_init(name),
          bias_init=inits.bias_init(name),
        )(x)
      )
      self.sow("intermediates", f"{name}_act", x)
      if self.pool and min(x.shape[1:3]) >= 2:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    if self.output_dim is None and not self.widths:
      return x  # [batch, h, w, c]: a conv stem, e.g. for an RNN that reads the maps row by row
    return dense_tail(self, jnp.reshape(x, (x.shape[0], -1)), self.widths, self.output_dim, train=train)
