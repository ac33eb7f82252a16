"""Flax (linen) models built by name from a config."""

from jaxflow.models.activations import ACTIVATIONS, get_activation
from jaxflow.models.registry import CONV_MODELS, MODELS, create_model

__all__ = ["ACTIVATIONS", "CONV_MODELS", "MODELS", "create_model", "get_activation"]
