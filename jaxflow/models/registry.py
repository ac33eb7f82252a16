"""Model registry: `config.model.name` -> a flax module built from the config and the problem."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import ml_collections

from jaxflow.config import ConfigError
from jaxflow.models import rnn
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


def _rnn(cfg: ml_collections.ConfigDict, output_dim: int) -> nn.Module:
  # Checked here, not in training/validate.py, so a bad value is a one-line ConfigError before compute
  # (validate builds every model once for its layer names).
  for field, allowed in (("rnn_cell", rnn.CELLS), ("rnn_head", rnn.HEADS)):
    if cfg[field] not in allowed:
      raise ConfigError(f"config.model.{field}={cfg[field]!r} is not known; allowed: {', '.join(allowed)}")
  hidden = cfg.rnn_hidden
  if not isinstance(hidden, (tuple, list)) or not hidden or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden):
    raise ConfigError(f"config.model.rnn_hidden={hidden!r} must be a non-empty tuple of positive ints, e.g. (64,)")
  return rnn.RNN(
      cell=cfg.rnn_cell,
      hidden_sizes=tuple(hidden),
      output_dim=output_dim,
      bidirectional=cfg.rnn_bidirectional,
      head=cfg.rnn_head,
      activation=cfg.activation,
      dropout_rate=cfg.dropout_rate,
      inits=layer_inits(cfg),
  )


MODELS: dict[str, Callable[[ml_collections.ConfigDict, int], nn.Module]] = {"mlp": _mlp, "cnn": _cnn, "rnn": _rnn}

# Models whose weight gradients are convolutions: XLA:CPU runs those ~30x slower inside lax.scan
# (jax-ml/jax#12868), so the loop dispatches them one step at a time on CPU.
CONV_MODELS = frozenset({"cnn"})


def create_model(model_config: ml_collections.ConfigDict, *, output_dim: int) -> nn.Module:
  return MODELS[model_config.name](model_config, output_dim)
