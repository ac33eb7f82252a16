"""Model registry: `config.model.name` -> a flax module built from the config and the problem."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import ml_collections

from jaxflow.models.cnn import CNN
from jaxflow.models.initializers import LayerInits
from jaxflow.models.mlp import MLP


def layer_inits(cfg: ml_collections.ConfigDict) -> LayerInits:
  return LayerInits(kernel=cfg.kernel_init, bias=cfg.bias_init, overrides=tuple(cfg.layer_inits))


def _mlp(cfg: ml_collections.ConfigDict, output_dim: int) -> nn.Module:
  return MLP(
      widths=tuple(cfg.widths), output_dim=output_dim, activation=cfg.activation, dropout_rate=cfg.dropout_rate,
      inits=layer_inits(cfg),
  )


def _cnn(cfg: ml_collections.ConfigDict, output_dim: int) -> nn.Module:
  return CNN(
      conv_features=tuple(cfg.conv_features),
      widths=tuple(cfg.widths),
      output_dim=output_dim,
      kernel_size=cfg.kernel_size,
      pool=cfg.pool,
      activation=cfg.activation,
      dropout_rate=cfg.dropout_rate,
      inits=layer_inits(cfg),
  )


MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {"mlp": _mlp, "cnn": _cnn}

# Models whose weight gradients are convolutions: XLA:CPU runs those ~30x slower inside lax.scan
# (jax-ml/jax#12868), so the loop dispatches them one step at a time on CPU.
CONV_MODELS = frozenset({"cnn"})


def create_model(model_config: ml_collections.ConfigDict, *, output_dim: int) -> nn.Module:
  return MODELS[model_config.name](model_config, output_dim)
