"""The whole inference function of a trained model: what training did to an input, the model, the answer.

A deployed model takes inputs as the dataset stores them (uint8 pixels at the stored size), not as the
training pipeline fed them, so the program does what the pipeline did on the host: pixels / 255 (the
pipeline's float32 division, `data.loading`), then `data.adapt`'s resize and grayscale with the same jax
functions; then the model in eval mode (no dropout); then the problem's output transform: softmax
probabilities (multiclass), [1 - p, p] (binary, p = sigmoid of the one logit), or the values (regression).
Feature standardization (`data.standardize`, tabular features by default) is replayed with the statistics
the run stored (its workdir's standardize.json), after the adaptation, as the pipeline does.

Everything here is pure: `inference_fn(weights, inputs)` closes over static facts only (`RawInput`, the
adaptation, the kind) and is what `export` lowers with a symbolic batch dimension.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.data import adapt
from jaxflow.data.problem import Problem
from jaxflow.data.standardize import Standardization

UINT8_SCALE = np.float32(255.0)


@dataclasses.dataclass(frozen=True)
class RawInput:
  """One example as the dataset stores it: what the exported program takes (batch dimension apart)."""

  name: str  # the dataset feature, e.g. "image"
  shape: tuple[int, ...]
  dtype: str  # "uint8" for images: scaled by 1/255 in the program
  fields: dict | None = None  # a dict input (variable-length sequences): {field: (shape, dtype)}

  @property
  def scaled(self) -> bool:
    return self.dtype == "uint8"


def preprocess(
  x: jax.Array, raw: RawInput, adaptation: adapt.Adaptation, standardization: Standardization | None = None
) -> jax.Array:
  """Stored inputs [b, *raw.shape] -> what the model was trained on (float32, adapted, standardized)."""
  x = x.astype(jnp.float32) / UINT8_SCALE if raw.scaled else x.astype(jnp.float32)
  if adaptation.resize is not None and tuple(x.shape[1:3]) != tuple(adaptation.resize):
    x = jax.image.resize(x, (x.shape[0], *adaptation.resize, x.shape[3]), "linear", antialias=True)
  if adaptation.grayscale and x.shape[-1] != 1:
    x = (x[..., :3] @ jnp.asarray(adapt.LUMA_WEIGHTS, jnp.float32))[..., None]
  if standardization is not None:
    x = (x - jnp.asarray(standardization.mean)) / jnp.asarray(standardization.std)
  return x


def output_names(problem: Problem) -> tuple[str, ...]:
  return ("value",) if problem.kind == "regression" else ("probabilities",)


def transform(outputs: jax.Array, problem: Problem) -> dict[str, jax.Array]:
  """The model's raw outputs (logits, or values) -> what a prediction means, float32."""
  outputs = outputs.astype(jnp.float32)
  if problem.kind == "regression":
    return {"value": outputs}
  if problem.kind == "binary":
    p = jax.nn.sigmoid(outputs[:, :1])
    return {"probabilities": jnp.concatenate([1.0 - p, p], axis=-1)}
  return {"probabilities": jax.nn.softmax(outputs, axis=-1)}


def inference_fn(
  forward: Callable,
  problem: Problem,
  raw: RawInput,
  *,
  compute_dtype=jnp.float32,
  standardization: Standardization | None = None,
) -> Callable[[object, object], dict]:
  """fn(weights, stored inputs) -> {output name: [b, ...]}; `forward(weights, model inputs)` is the model
  (in eval mode) of one precision variant, fed `compute_dtype` floats."""

  def fn(weights, inputs):
    if raw.fields is not None:  # sequences: floats as they are, lengths as integers
      x = {k: v.astype(compute_dtype) if jnp.issubdtype(v.dtype, jnp.floating) else v for k, v in inputs.items()}
    else:
      x = preprocess(inputs, raw, problem.adaptation, standardization).astype(compute_dtype)
    return transform(forward(weights, x), problem)

  return fn


def ensemble_fn(single: Callable) -> Callable[[object, object], dict]:
  """fn(stacked weights, inputs) -> the seeds' mean of each output and its across-seed standard deviation
  (`std_` + name): `single` vmapped over the leading axis of every weight."""

  def fn(stacked, inputs):
    each = jax.vmap(single, in_axes=(0, None))(stacked, inputs)
    out = {name: values.mean(axis=0) for name, values in each.items()}
    out |= {f"std_{name}": values.std(axis=0) for name, values in each.items()}
    return out

  return fn
