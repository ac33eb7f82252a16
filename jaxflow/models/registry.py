"""Model registry: `config.model.name` -> a flax module built from the config and the problem."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import ml_collections

from jaxflow.config import ConfigError
from jaxflow.models import gnn, rnn, stack
from jaxflow.models.cnn import CNN
from jaxflow.models.initializers import LayerInits
from jaxflow.models.mlp import MLP


def layer_inits(cfg: ml_collections.ConfigDict) -> LayerInits:
  return LayerInits(kernel=cfg.kernel_init, bias=cfg.bias_init, overrides=tuple(cfg.layer_inits))


def _mlp(cfg: ml_collections.ConfigDict, output_dim: int) -> nn.Module:
  return MLP(
    widths=tuple(cfg.widths),
    output_dim=output_dim,
    activation=cfg.activation,
    dropout_rate=cfg.dropout_rate,
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
  # Checked here, not in run/validate.py, so a bad value is a one-line ConfigError before compute
  # (validate builds every model once for its layer names).
  for field, allowed in (("rnn_cell", rnn.CELLS), ("rnn_head", rnn.HEADS)):
    if cfg[field] not in allowed:
      raise ConfigError(f"config.model.{field}={cfg[field]!r} is not known; allowed: {', '.join(allowed)}")
  hidden = cfg.rnn_hidden
  if (
    not isinstance(hidden, (tuple, list))
    or not hidden
    or not all(isinstance(h, int) and not isinstance(h, bool) and h > 0 for h in hidden)
  ):
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


def _stack(cfg: ml_collections.ConfigDict, output_dim: int) -> nn.Module:
  """Registry models chained headless, then one head (jaxflow/models/stack.py)."""
  kinds = tuple(cfg.stages)
  allowed = sorted(set(MODELS) - {"stack"} - GRAPH_MODELS)
  if not kinds or any(kind not in allowed for kind in kinds):
    raise ConfigError(f"config.model.stages={kinds!r} must name registry models in order, from: {', '.join(allowed)}")
  stages = tuple((name, MODELS[kind](cfg, None)) for name, kind in zip(stack.stage_names(kinds), kinds))
  return stack.Stack(stages=stages, output_dim=output_dim, inits=layer_inits(cfg))


def _gnn(cfg: ml_collections.ConfigDict, output_dim: int | None) -> nn.Module:
  if cfg.gnn_head not in (None, "node", "graph"):
    raise ConfigError(f"config.model.gnn_head={cfg.gnn_head!r} is not known; allowed: node, graph")
  return gnn.create_gnn(cfg, output_dim=output_dim, inits=layer_inits(cfg))


MODELS: dict[str, Callable[[ml_collections.ConfigDict, int | None], nn.Module]] = {
  "mlp": _mlp,
  "cnn": _cnn,
  "rnn": _rnn,
  "stack": _stack,
  "gcn": _gnn,
  "gat": _gnn,
  "graph_network": _gnn,
}
# Models that take a jraph.GraphsTuple, so only the graph datasets feed them (and they no other model).
GRAPH_MODELS = frozenset({"gcn", "gat", "graph_network"})

# Models whose weight gradients are convolutions: XLA:CPU runs those ~30x slower inside lax.scan
# (jax-ml/jax#12868), so the loop dispatches them one step at a time on CPU.
CONV_MODELS = frozenset({"cnn"})


def has_conv(model_config: ml_collections.ConfigDict) -> bool:
  """Whether the model's weight gradients include convolutions (a stack: any of its stages)."""
  kinds = tuple(model_config.stages) if model_config.name == "stack" else (model_config.name,)
  return any(kind in CONV_MODELS for kind in kinds)


def create_model(model_config: ml_collections.ConfigDict, *, output_dim: int) -> nn.Module:
  return MODELS[model_config.name](model_config, output_dim)


def param_shapes(model_config: ml_collections.ConfigDict, output_dim: int, input_structure):
  """The model's parameter tree as shapes only (jax.eval_shape: nothing is computed or drawn)."""
  model = create_model(model_config, output_dim=output_dim)
  key = jax.eval_shape(jax.random.key, 0)
  return jax.eval_shape(model.init, key, input_structure)["params"]


def reads_sequences(model_config: ml_collections.ConfigDict) -> bool:
  """Whether the model reads its input as a sequence (an RNN, or a stack with an RNN stage)."""
  kinds = tuple(model_config.stages) if model_config.name == "stack" else (model_config.name,)
  return "rnn" in kinds
