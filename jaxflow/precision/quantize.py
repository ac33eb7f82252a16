"""int8 post-training quantization of any jaxflow model, without touching the model's code.

Why not aqtp: AQT replaces a module's `dot_general` when the module is *built* with it, so every
jaxflow model would need an injection point (and AQT v2 has no convolution path); its default
calibration is dynamic (the scale of the tensor at hand), not scales calibrated once on training data,
and it would be a new core dependency. Instead, flax's `nn.intercept_methods` replaces the `__call__` of
the modules that hold the matmuls, as the model runs:

- `nn.Dense`: y = x W + b;  `nn.Conv` (2-D, groups 1): y = conv(x, W) + b;
- `nn.OptimizedLSTMCell` (the RNN's LSTM): its two matmuls (input and recurrent, i/f/g/o kernels
  concatenated as flax does) quantized, the gates computed as flax computes them.

Scheme (symmetric, zero point 0, range [-127, 127]):

- **weights**: per output channel, scale_w[j] = max |W[..., j]| / 127;
- **activations** (the input of each quantized layer): scales calibrated once on a sample of the
  training split (`calibrate`), by `method` = `max` (the largest |x| seen) or `percentile` (the
  99.99th percentile of |x|, clipping rare outliers), at `granularity` = `tensor` (one scale) or
  `channel` (one per input feature/channel; folded into the weights before they are quantized:
  x W = (x / s) (diag(s) W), so the integer matmul stays one matmul). A channel that was always 0 in
  calibration takes the tensor's scale.
- the matmul runs int8 x int8 with int32 accumulation (`preferred_element_type=int32`), then
  acc * scale_x * scale_w[j] + b in float32. `emulate=True` computes the same quantized values with
  float32 matmuls instead (for backends without int8 kernels: accuracy is int8's, speed is not).
- `weights_only`: int8 weights dequantized inside the program, float32 activations and matmuls (a 4x
  smaller weight footprint; on most hardware no faster).

Every other op (activations, pooling, the LSTM gates, graph aggregations) stays float32. Matmuls in
modules this does not know stay float (`hlo.jaxpr_matmul_dtypes` on the quantized forward shows them).
"""

from __future__ import annotations

import collections
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

QMAX = 127.0
METHODS = ("max", "percentile")
GRANULARITIES = ("tensor", "channel")
PERCENTILE = 99.99


def _key(module) -> str:
  return "/".join(str(p) for p in module.path)


def _conv_supported(mod: nn.Conv) -> bool:
  size = mod.kernel_size if isinstance(mod.kernel_size, (tuple, list)) else (mod.kernel_size,)
  return (
    len(size) == 2
    and mod.feature_group_count == 1
    and mod.mask is None
    and (isinstance(mod.padding, str) and mod.padding in ("SAME", "VALID"))
  )


def _kind(mod) -> str | None:
  if type(mod) is nn.Dense:
    return "dense"
  if type(mod) is nn.Conv and _conv_supported(mod):
    return "conv"
  if type(mod) is nn.OptimizedLSTMCell:
    return "lstm"
  return None


def calibrate(model, params, samples, *, percentile: float = PERCENTILE) -> dict:
  """{layer path: {'kind', 'inputs': {name: stats}}} from running `model` on `samples` (host input
  batches of the training split). stats: abs max and percentile, per tensor and per channel."""
  collected: dict[tuple, list] = collections.defaultdict(list)
  kinds: dict[str, str] = {}

  def record(key, x):
    x = np.abs(np.asarray(x, np.float32))
    collected[key].append(x.reshape(-1, x.shape[-1]))

  def interceptor(next_fun, args, kwargs, context):
    kind = _kind(context.module) if context.method_name == "__call__" else None
    if kind is not None:
      key = _key(context.module)
      kinds[key] = kind
      if kind == "lstm":
        carry, x = args[0], args[1]
        jax.debug.callback(functools.partial(record, (key, "x")), x)
        jax.debug.callback(functools.partial(record, (key, "h")), carry[1])
      else:
        jax.debug.callback(functools.partial(record, (key, "x")), args[0])
    return next_fun(*args, **kwargs)

  def run(p, x):
    with nn.intercept_methods(interceptor):
      return model.apply({"params": p}, x)

  jitted = jax.jit(run)
  for x in samples:
    jax.block_until_ready(jitted(params, x))
  jax.effects_barrier()
  layers = {}
  for (key, name), parts in collected.items():
    values = np.concatenate(parts)
    layers.setdefault(key, {"kind": kinds[key], "inputs": {}})["inputs"][name] = {
      "max": float(values.max()),
      "percentile": float(np.percentile(values, percentile)),
      "channel_max": values.max(axis=0),
      "channel_percentile": np.percentile(values, percentile, axis=0),
      "samples": int(values.shape[0]),
    }
  return layers


def activation_scale(stats: dict, *, method: str, granularity: str) -> np.ndarray:
  """[channels] scale of one layer input (a tensor scale repeated per channel)."""
  if method not in METHODS or granularity not in GRANULARITIES:
    raise ValueError(f"method {method!r} / granularity {granularity!r}; allowed {METHODS} / {GRANULARITIES}")
  tensor = stats[method] / QMAX or 1.0
  channels = stats[f"channel_{method}"].shape[0]
  if granularity == "tensor":
    return np.full(channels, tensor, np.float32)
  per = np.asarray(stats[f"channel_{method}"], np.float32) / QMAX
  return np.where(per > 0, per, tensor).astype(np.float32)


def quantize_kernel(kernel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(int8 kernel, float32 scale per output channel = last axis)."""
  kernel = np.asarray(kernel, np.float32)
  amax = np.max(np.abs(kernel), axis=tuple(range(kernel.ndim - 1)))
  scale = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
  return np.clip(np.round(kernel / scale), -QMAX, QMAX).astype(np.int8), scale


def _subtree(params, key: str):
  if not key:  # the root module itself
    return params
  node = params
  for part in key.split("/"):
    node = node[part]
  return node


def _without(params, keys) -> dict:
  """`params` without the subtrees at `keys` (their modules are replaced, never read)."""
  if "" in keys:  # the root module itself is replaced
    return {}
  out = jax.tree.map(lambda a: a, params)
  for key in keys:
    *parents, last = key.split("/")
    node = out
    for part in parents:
      node = node[part]
    node.pop(last)
  return out


def _matmul_entry(kernel: np.ndarray, scale_x: np.ndarray | None, in_axis: int) -> dict:
  if scale_x is None:  # weights only
    q, scale = quantize_kernel(kernel)
    return {"kernel_q": q, "out_scale": scale}
  shape = [1] * kernel.ndim
  shape[in_axis] = -1
  q, scale = quantize_kernel(np.asarray(kernel, np.float32) * scale_x.reshape(shape))
  return {"kernel_q": q, "out_scale": scale, "x_inv_scale": (1.0 / scale_x).astype(np.float32)}


def quantize(
  params, calibration: dict, *, method: str = "max", granularity: str = "tensor", weights_only: bool = False
) -> dict:
  """The int8 variant's weights: {'float': params without the quantized layers, 'int8': {layer: entry}}."""
  int8 = {}
  for key, layer in calibration.items():
    p, inputs = _subtree(params, key), layer["inputs"]
    scale = (
      (lambda name: None)
      if weights_only
      else (lambda name: activation_scale(inputs[name], method=method, granularity=granularity))
    )
    if layer["kind"] in ("dense", "conv"):
      kernel = np.asarray(p["kernel"], np.float32)
      entry = _matmul_entry(kernel, scale("x"), kernel.ndim - 2)
      entry["bias"] = np.asarray(p["bias"], np.float32) if "bias" in p else np.zeros(kernel.shape[-1], np.float32)
    else:  # OptimizedLSTMCell: i, f, g, o kernels concatenated, as flax does
      gates = ("i", "f", "g", "o")
      wi = np.concatenate([np.asarray(p[f"i{g}"]["kernel"], np.float32) for g in gates], axis=-1)
      wh = np.concatenate([np.asarray(p[f"h{g}"]["kernel"], np.float32) for g in gates], axis=-1)
      entry = {
        "x": _matmul_entry(wi, scale("x"), 0),
        "h": _matmul_entry(wh, scale("h"), 0),
        "bias": np.concatenate([np.asarray(p[f"h{g}"]["bias"], np.float32) for g in gates]),
      }
    int8[key] = entry
  return {"float": _without(params, list(int8)), "int8": int8}


def _quantized_matmul(x, entry, contract, *, emulate: bool):
  """x [..., in] (or NHWC) against the entry's int8 kernel: float32 result of the int8 product."""
  x = x.astype(jnp.float32)
  kernel = entry["kernel_q"]
  if "x_inv_scale" in entry:
    xq = jnp.clip(jnp.round(x * entry["x_inv_scale"]), -QMAX, QMAX)
    if emulate:
      acc = contract(xq, kernel.astype(jnp.float32), jnp.float32)
    else:
      acc = contract(xq.astype(jnp.int8), kernel, jnp.int32).astype(jnp.float32)
  else:  # weights only: dequantize, float matmul
    acc = contract(x, kernel.astype(jnp.float32), jnp.float32)
  return acc * entry["out_scale"]


def _dense_contract(x, kernel, out_dtype):
  return jax.lax.dot_general(x, kernel, (((x.ndim - 1,), (0,)), ((), ())), preferred_element_type=out_dtype)


def _conv_contract(mod: nn.Conv):
  strides = mod.strides or 1
  strides = tuple(strides) if isinstance(strides, (tuple, list)) else (strides, strides)
  dilation = mod.kernel_dilation or 1
  dilation = tuple(dilation) if isinstance(dilation, (tuple, list)) else (dilation, dilation)
  lhs_dilation = mod.input_dilation or 1
  lhs_dilation = tuple(lhs_dilation) if isinstance(lhs_dilation, (tuple, list)) else (lhs_dilation, lhs_dilation)

  def contract(x, kernel, out_dtype):
    numbers = jax.lax.conv_dimension_numbers(x.shape, kernel.shape, ("NHWC", "HWIO", "NHWC"))
    return jax.lax.conv_general_dilated(
      x,
      kernel,
      strides,
      mod.padding,
      lhs_dilation=lhs_dilation,
      rhs_dilation=dilation,
      dimension_numbers=numbers,
      preferred_element_type=out_dtype,
    )

  return contract


def make_forward(model, *, emulate: bool = False):
  """forward(weights, inputs) -> outputs of `model` with the layers in weights['int8'] quantized."""

  def forward(weights, inputs):
    int8 = weights["int8"]

    def interceptor(next_fun, args, kwargs, context):
      entry = int8.get(_key(context.module)) if context.method_name == "__call__" else None
      if entry is None:
        return next_fun(*args, **kwargs)
      mod = context.module
      kind = _kind(mod)
      if kind == "dense":
        return _quantized_matmul(args[0], entry, _dense_contract, emulate=emulate) + entry["bias"]
      if kind == "conv":
        return _quantized_matmul(args[0], entry, _conv_contract(mod), emulate=emulate) + entry["bias"]
      (c, h), x = args[0], args[1]
      z = (
        _quantized_matmul(x, entry["x"], _dense_contract, emulate=emulate)
        + _quantized_matmul(h, entry["h"], _dense_contract, emulate=emulate)
        + entry["bias"]
      )
      i, f, g, o = jnp.split(z, 4, axis=-1)
      new_c = mod.gate_fn(f) * c + mod.gate_fn(i) * mod.activation_fn(g)
      new_h = mod.gate_fn(o) * mod.activation_fn(new_c)
      return (new_c, new_h), new_h

    with nn.intercept_methods(interceptor):
      return model.apply({"params": weights["float"]}, inputs)

  return forward


def describe(calibration: dict) -> list[dict]:
  """The calibrated layers for the report (no arrays): path, kind, per input the max and percentile."""
  return [
    {
      "layer": key,
      "kind": layer["kind"],
      "inputs": {
        n: {"max": s["max"], "percentile": s["percentile"], "samples": s["samples"]} for n, s in layer["inputs"].items()
      },
    }
    for key, layer in sorted(calibration.items())
  ]
