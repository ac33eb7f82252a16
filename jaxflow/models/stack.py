"""Hybrid models by composition: registry models run one after another, then one head.

`model.name = "stack"` with `model.stages = ("cnn", "rnn")` builds each stage from the registry
*headless* (output_dim=None: a model returns its features instead of logits) and feeds each stage's output
to the next: a conv stem's feature maps [batch, h, w, c] are read by the RNN as h rows of w*c features.
No class per combination: any order of registry models whose shapes connect.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.initializers import LayerInits


class Stack(nn.Module):
  """inputs -> stage_0 -> ... -> stage_k -> Dense head. Returns [batch, output_dim] (or [batch, time,
  output_dim] when the last stage returns a sequence). Parameters nest under each stage's name (`cnn`,
  `rnn`, ...; a repeated stage gets `_1`, `_2`), so freeze / reinit / init_from address whole stages."""

  stages: Sequence[tuple[str, nn.Module]]  # (name, headless module built with parent=None)
  output_dim: int
  inits: LayerInits = LayerInits()

  @nn.compact
  def __call__(self, inputs, *, train: bool = False) -> jax.Array:
    x = inputs
    for name, stage in self.stages:
      x = stage.clone(name=name, parent=self)(x, train=train)
    if x.ndim > 3:  # feature maps into a head: flatten all but the batch axis
      x = jnp.reshape(x, (x.shape[0], -1))
    return nn.Dense(
      self.output_dim, name="head", kernel_init=self.inits.kernel_init("head"), bias_init=self.inits.bias_init("head")
    )(x)


def stage_names(kinds: Sequence[str]) -> list[str]:
  """("cnn", "rnn", "cnn") -> ["cnn", "rnn", "cnn_1"]: unique, readable parameter-tree names."""
  seen: dict[str, int] = {}
  names = []
  for kind in kinds:
    names.append(kind if kind not in seen else f"{kind}_{seen[kind]}")
    seen[kind] = seen.get(kind, 0) + 1
  return names
