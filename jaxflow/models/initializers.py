"""Weight initializers by name, for kernels and biases apart, with per-layer overrides.

A spec is a string a config (and a command line) can hold: `"lecun_normal"`, `"zeros"`,
`"constant(0.5)"`, `"normal(stddev=10)"`, `"uniform(scale=0.05)"`. Per-layer overrides are
`"LAYER.PARAM=SPEC"` strings, e.g. `("dense_0.kernel=normal(stddev=10)", "head.bias=constant(0.1)")`,
so the experiments on initialization (constant vs random, the scale that makes gradients vanish or
explode) are config changes, not code.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax.linen import initializers as init

Initializer = Callable[..., jax.Array]


def _symmetric_uniform(scale: float = 0.05) -> Initializer:
  """U(-scale, scale) (flax's `uniform(scale)` is U(0, scale), which is rarely what is meant)."""

  def initializer(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, minval=-scale, maxval=scale)

  return initializer


# name -> (factory, its positional argument name or None)
_FACTORIES: dict[str, tuple[Callable[..., Initializer], str | None]] = {
  "zeros": (lambda: init.zeros, None),
  "ones": (lambda: init.ones, None),
  "constant": (lambda value=0.0: init.constant(value), "value"),
  "normal": (lambda stddev=0.01: init.normal(stddev), "stddev"),
  "uniform": (_symmetric_uniform, "scale"),
  "xavier_normal": (init.xavier_normal, None),
  "xavier_uniform": (init.xavier_uniform, None),
  "glorot_normal": (init.glorot_normal, None),
  "glorot_uniform": (init.glorot_uniform, None),
  "he_normal": (init.he_normal, None),
  "he_uniform": (init.he_uniform, None),
  "kaiming_normal": (init.kaiming_normal, None),
  "kaiming_uniform": (init.kaiming_uniform, None),
  "lecun_normal": (init.lecun_normal, None),
  "lecun_uniform": (init.lecun_uniform, None),
}
INITIALIZER_NAMES = tuple(_FACTORIES)

_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


class InitializerError(ValueError):
  """A spec that does not parse; the message says what is allowed."""


def parse(spec: str) -> Initializer:
  """`"normal(stddev=10)"` / `"normal(10)"` -> a flax initializer."""
  match = _SPEC.match(spec)
  if not match or match.group(1) not in _FACTORIES:
    raise InitializerError(f"{spec!r} is not an initializer; allowed: {', '.join(INITIALIZER_NAMES)}")
  name, args = match.group(1), (match.group(2) or "").strip()
  factory, positional = _FACTORIES[name]
  if not args:
    return factory()
  if positional is None:
    raise InitializerError(f"{spec!r}: {name} takes no argument")
  key, _, value = args.rpartition("=")
  key = key.strip() or positional
  if key != positional:
    raise InitializerError(f"{spec!r}: {name} takes one argument, {positional}")
  try:
    return factory(float(value))
  except ValueError:
    raise InitializerError(f"{spec!r}: {positional} must be a number") from None


@dataclasses.dataclass(frozen=True)
class LayerInits:
  """Default kernel and bias specs plus `LAYER.PARAM=SPEC` overrides; hashable, so a module field."""

  kernel: str = "lecun_normal"
  bias: str = "zeros"
  overrides: tuple[str, ...] = ()

  def _override(self, layer: str, param: str) -> str | None:
    for item in self.overrides:
      target, _, spec = item.partition("=")
      if target.strip() == f"{layer}.{param}":
        return spec.strip()
    return None

  def kernel_init(self, layer: str) -> Initializer:
    return parse(self._override(layer, "kernel") or self.kernel)

  def bias_init(self, layer: str) -> Initializer:
    return parse(self._override(layer, "bias") or self.bias)

  def check(self) -> None:
    """Every spec parses and every override reads LAYER.PARAM=SPEC; raises InitializerError."""
    parse(self.kernel)
    parse(self.bias)
    for item in self.overrides:
      target, sep, spec = item.partition("=")
      layer, dot, param = target.strip().partition(".")
      if not sep or not dot or param not in ("kernel", "bias"):
        raise InitializerError(
          f"{item!r} must read LAYER.kernel=SPEC or LAYER.bias=SPEC, e.g. dense_0.kernel=normal(stddev=10)"
        )
      parse(spec.strip())

  def override_layers(self) -> set[str]:
    return {item.partition("=")[0].strip().partition(".")[0] for item in self.overrides}
