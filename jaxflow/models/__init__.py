"""Flax (linen) models built by name from a config."""

from jaxflow.models.activations import ACTIVATIONS, get_activation
from jaxflow.models.initializers import INITIALIZER_NAMES, LayerInits
from jaxflow.models.registry import (
  CONV_MODELS,
  GRAPH_MODELS,
  MODELS,
  create_model,
  has_conv,
  layer_inits,
  param_shapes,
  reads_sequences,
)

__all__ = [
  "ACTIVATIONS",
  "CONV_MODELS",
  "GRAPH_MODELS",
  "INITIALIZER_NAMES",
  "MODELS",
  "LayerInits",
  "create_model",
  "get_activation",
  "has_conv",
  "layer_inits",
  "param_shapes",
  "reads_sequences",
]
