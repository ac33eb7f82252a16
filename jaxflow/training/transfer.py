"""Transfer learning: start from another run's parameters, matched by layer name; freeze some layers,
re-initialize others.

`config.init_from=WORKDIR` takes that run's best checkpoint (else its latest). Layers are the top-level
entries of the parameter tree (`conv_0`, `dense_0`, `head`); `config.freeze` and `config.reinit` hold
layer names or name prefixes (`"conv"` matches every `conv_i`). Frozen layers get a zero update
(optax.multi_transform with set_to_zero: no gradient step, no weight decay); re-initialized layers keep
the fresh initialization (a new head for a new task).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence

import jax
import numpy as np
import optax

from jaxflow.config import ConfigError
from jaxflow.training import checkpoints


def matches(layer: str, patterns: Iterable[str]) -> bool:
  return any(layer == p or layer.startswith(p) for p in patterns)


def check_patterns(field: str, patterns: Sequence[str], layers: Iterable[str]) -> None:
  layers = sorted(layers)
  unknown = [p for p in patterns if not any(matches(layer, [p]) for layer in layers)]
  if unknown:
    raise ConfigError(
      f"config.{field} names no layer of the model ({', '.join(unknown)}); its layers: {', '.join(layers)}"
    )


def source_params(workdir: str):
  """The parameters of `workdir`'s best checkpoint, else its latest (read-only)."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory):
    raise ConfigError(f"config.init_from={workdir!r} holds no checkpoints (no {directory})")
  found = checkpoints.read_run_params(workdir, which=checkpoints.BEST, fallback=True)
  if found is not None:
    return found[0]
  raise ConfigError(f"config.init_from={workdir!r} holds no checkpoints")


def check_compatible(source: Mapping, target_shapes: Mapping, reinit: Sequence[str]) -> None:
  """Every layer that is not re-initialized must exist in the source with the same leaf shapes."""
  problems = []
  for layer, target in sorted(target_shapes.items()):
    if matches(layer, reinit):
      continue
    if layer not in source:
      problems.append(f"{layer}: not in the source run")
      continue
    want = jax.tree.map(lambda x: tuple(x.shape), target)
    have = jax.tree.map(lambda x: tuple(np.shape(x)), source[layer])
    if jax.tree.structure(want) != jax.tree.structure(have) or want != have:
      problems.append(f"{layer}: shapes {have} in the source, {want} here")
  if problems:
    raise ConfigError(
      f"config.init_from: layers do not match ({'; '.join(problems)}); add them to config.reinit to start them fresh"
    )


def transfer(fresh: Mapping, source: Mapping, reinit: Sequence[str]) -> dict:
  """Fresh parameters with every non-reinit layer replaced by the source's (same dtypes as fresh)."""
  return {
    layer: params
    if matches(layer, reinit)
    else jax.tree.map(lambda f, s: np.asarray(s, dtype=f.dtype), params, source[layer])
    for layer, params in fresh.items()
  }


def with_frozen(tx: optax.GradientTransformation, freeze: Sequence[str]) -> optax.GradientTransformation:
  """`tx` for trainable layers, a zero update for frozen ones."""
  if not freeze:
    return tx

  def labels(params):
    return {
      layer: jax.tree.map(lambda _: "frozen" if matches(layer, freeze) else "trainable", p)
      for layer, p in params.items()
    }

  return optax.multi_transform({"trainable": tx, "frozen": optax.set_to_zero()}, labels)
