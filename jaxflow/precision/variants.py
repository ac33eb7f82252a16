"""The precision variants of one model: f32, bf16, int8 (weights and activations) and int8 weights only.

Each `Variant` is a pure `forward(weights, inputs) -> outputs` (jit-able, and runnable op by op), its
weights on the host, and `prepare(inputs)` that turns a host batch into what that variant is fed.

- **f32**: the trained model as it is.
- **bf16**: parameters *and* float inputs cast to bfloat16 on the host, so the program computes in
  bf16 and is fed half the bytes. jaxflow's Dense/Conv layers leave `dtype=None` (computation dtype
  inferred from inputs and parameters), so bf16 in means bf16 matmuls; a module whose `param_dtype`
  decides the dtype of a state it creates (the RNN's zero initial carry) is rebuilt with
  `param_dtype=bfloat16`, else its float32 carry would silently upcast every step back to f32
  (PITFALLS.md). Integer inputs (lengths, graph indices) are left alone. What the program asks for is
  checked, not assumed: `hlo.jaxpr_matmul_dtypes` of the forward lists every matmul's dtypes.
- **int8**: `quantize` with activation scales calibrated on training data; `int8_weights`: weights only.

Accuracy of each variant is measured on the whole evaluation split (`evaluate`), its outputs compared
with f32's on the same batches (max |difference|, share of equal predictions).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxflow.config import ConfigError
from jaxflow.precision import quantize

PRECISIONS = ("f32", "bf16", "int8")
COMPUTE_DTYPE = {"f32": "f32", "bf16": "bf16", "int8": "int8", "int8_weights": "f32"}


@dataclasses.dataclass
class Variant:
  name: str  # f32 | bf16 | int8 | int8_weights
  forward: Callable
  weights: object
  prepare: Callable = lambda inputs: inputs
  notes: list = dataclasses.field(default_factory=list)
  fallback: Callable | None = None  # the same math for a backend that cannot compile `forward` (int8 emulated in f32)

  @property
  def compute_dtype(self) -> str:
    return COMPUTE_DTYPE[self.name]


def parse_precisions(text: str) -> list[str]:
  """`--precisions` as known names, f32 first; anything else is a one-line ConfigError."""
  names = [p.strip() for p in str(text).split(",") if p.strip()]
  bad = [p for p in names if p not in PRECISIONS]
  if not names or bad:
    raise ConfigError(
      f"--precisions={text!r}: {'no precision given' if not names else f'{bad[0]!r} is not known'}; "
      f"allowed: {', '.join(PRECISIONS)} (comma-separated)"
    )
  # f32 first, always: the reference every other precision's accuracy and speed is compared with.
  return ["f32", *dict.fromkeys(n for n in names if n != "f32")]


def cast_floats(tree, dtype):
  """Float leaves of a host pytree to `dtype` (numpy, ml_dtypes' bfloat16); other leaves unchanged."""

  def cast(leaf):
    a = np.asarray(leaf)
    return a.astype(dtype) if np.issubdtype(a.dtype, np.floating) or a.dtype == jnp.bfloat16 else a

  return jax.tree.map(cast, tree)


def _apply(model):
  return lambda weights, inputs: model.apply({"params": weights}, inputs)


def bf16_model(model):
  """`model`, rebuilt with param_dtype=bfloat16 where it has that field (module docstring)."""
  fields = {f.name for f in dataclasses.fields(model)}
  return model.clone(param_dtype=jnp.bfloat16) if "param_dtype" in fields else model


def build_variants(
  model,
  params,
  precisions: list[str],
  *,
  calibration_inputs: list | None = None,
  method: str = "max",
  granularity: str = "tensor",
) -> tuple[list[Variant], dict | None]:
  """The variants of `precisions` (int8 adds `int8_weights`), and the int8 calibration (or None)."""
  variants = []
  calibration = None
  for name in precisions:
    if name == "f32":
      variants.append(Variant("f32", _apply(model), params))
    elif name == "bf16":
      rebuilt = bf16_model(model)
      notes = ["rebuilt with param_dtype=bfloat16"] if rebuilt is not model else []
      variants.append(
        Variant(
          "bf16",
          _apply(rebuilt),
          cast_floats(params, jnp.bfloat16),
          prepare=lambda x: cast_floats(x, jnp.bfloat16),
          notes=notes,
        )
      )
    elif name == "int8":
      calibration = quantize.calibrate(model, params, calibration_inputs)
      notes = [
        f"activation scales: {granularity}, {method} "
        f"over {len(calibration_inputs)} calibration batches of the training split"
      ]
      emulated = quantize.make_forward(model, emulate=True)
      variants.append(
        Variant(
          "int8",
          quantize.make_forward(model),
          quantize.quantize(params, calibration, method=method, granularity=granularity),
          notes=notes,
          fallback=emulated,
        )
      )
      variants.append(
        Variant(
          "int8_weights",
          quantize.make_forward(model),
          quantize.quantize(params, calibration, weights_only=True),
          notes=["int8 weights dequantized in the program; float32 matmuls"],
        )
      )
  return variants, calibration


def _metric(problem, outputs: np.ndarray, labels: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
  """(sum of the per-example metric, count): correct predictions, or |error| for regression."""
  outputs = np.asarray(outputs, np.float32)
  if problem.kind == "regression":
    value = np.abs(outputs.reshape(labels.shape) - labels)
  elif problem.kind == "binary":
    value = ((outputs.reshape(labels.shape) > 0).astype(np.int32) == labels).astype(np.float32)
  else:
    value = (outputs.argmax(-1) == labels).astype(np.float32)
  return float((value * mask).sum()), float(mask.sum())


def metric_name(problem) -> str:
  return "mae" if problem.kind == "regression" else "accuracy"


def evaluate(variant: Variant, eval_set: list, problem, device, *, reference: list | None = None) -> tuple[dict, list]:
  """{metric, value, vs reference outputs}, and this variant's outputs per eval batch (float32, host)."""
  forward = jax.jit(variant.forward)
  weights = jax.device_put(variant.weights, device)
  total, count, outputs = 0.0, 0.0, []
  for inputs, labels, mask in eval_set:
    out = np.asarray(jax.device_get(forward(weights, jax.device_put(variant.prepare(inputs), device))), np.float32)
    outputs.append(out)
    s, c = _metric(problem, out, labels, mask)
    total, count = total + s, count + c
  result = {"metric": metric_name(problem), "value": total / max(count, 1.0), "examples": int(count)}
  if reference is not None:
    diffs = [np.abs(o - r)[m > 0] for o, r, (_, _, m) in zip(outputs, reference, eval_set)]
    scale = max(float(np.abs(r[m > 0]).max()) for r, (_, _, m) in zip(reference, eval_set))
    result["max_abs_output_diff"] = float(max(d.max() for d in diffs))
    result["max_abs_reference_output"] = scale
    if problem.kind == "multiclass":
      same = sum(
        float(((o.argmax(-1) == r.argmax(-1)) * m).sum()) for o, r, (_, _, m) in zip(outputs, reference, eval_set)
      )
      result["same_prediction_share"] = same / max(count, 1.0)
  return result, outputs
