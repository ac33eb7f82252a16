"""On-device image augmentation, per example, inside the jitted train step.

Augmenting on the device keeps the host pipeline a plain gather (the data already sits on the device,
see data/device.py), and keying every example by `fold_in(step_key, example_id)` makes an
example's augmentation independent of the batch it lands in and of how a batch is split over devices:
a run on 1 or 8 devices, or a resumed run, draws exactly the same images.

Config: `config.data.augment` is a tuple of op specs applied in order, e.g.
`("hflip(p=0.5)", "rotate(degrees=15, p=0.5)", "noise(std=0.05)")`. Arguments are numbers, by keyword
or, for an op's own arguments, by position in the order listed below (`"zoom(0.9, 1.1)"`); `p`
(default 1.0) is the probability that the op is applied to an example.

  hflip(), vflip()                 mirror left-right / top-bottom
  rotate(degrees)                  angle uniform in [-degrees, degrees], counter-clockwise as displayed
  zoom(min_scale, max_scale)       scale uniform in [min_scale, max_scale] about the centre; > 1 zooms in
  crop(padding)                    pad `padding` zero pixels on each side, crop H x W at random (CIFAR)
  translate(max_dx, max_dy)        whole-pixel shift uniform in {-max_dx..max_dx} x {-max_dy..max_dy}
  noise(std)                       additive Gaussian noise
  brightness(max_delta)            add a delta uniform in [-max_delta, max_delta)
  contrast(lower, upper)           (x - mean) * factor + mean, factor uniform in [lower, upper), mean per channel
  clip()                           clip to [0, 1]

Decisions:
- Fill: zeros wherever an op needs pixels from outside the image (rotate, zoom out, crop, translate),
  the same fill as the CIFAR padded crop, so every geometric op agrees on what "outside" looks like.
- Interpolation: rotate and zoom are bilinear, with the image extended by zeros
  (`jax.scipy.ndimage.map_coordinates(order=1, mode="constant")`), so the border fades instead of
  being cut. translate moves whole pixels: exact, no blur, and `translate(1, 0)` means one pixel.
- No clipping: the ops are linear in the pixel values, so the noise std and the brightness and
  contrast ranges hold exactly as configured, and a model sees what it was told it would see. Values
  may leave [0, 1] by the noise / delta / contrast amount; end the tuple with `"clip()"` to clip.
- Keys: the op at position i of the tuple draws from `fold_in(example_key, i)`, so appending an op
  never changes what the earlier ops draw.

dm-pix supplies the flips, brightness and contrast. Its `rotate`/`affine_transform` are not used: in
mode="constant" a pixel whose source coordinate lies a float32 hair outside the image (7.0000005 for
an 8-pixel side) becomes the fill value outright, so rotating by 90 degrees zeroed border pixels;
map_coordinates blends with the zero border instead and is exact to ~1e-7. Nor are its `random_*`
helpers: they draw with their own key splits, and the ops here draw all their randomness in one call
(see the note above AugmentOp).

Deep photo style transfer (Luan et al. 2017) is out of scope: it is an optimisation per image, not an
augmentation op one can draw inside a train step.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax.scipy import ndimage

from jaxflow.config import ConfigError


def _pix():
  import dm_pix  # deferred: 0.07-0.17 s of imports (chex, absl.testing) that only an augmenting run needs

  return dm_pix


# ------------------------------------------------------------------------------------------------
# Deterministic transforms: the ops draw their parameters and call these; tests call them directly.


def _resample(image: jax.Array, inverse: jax.Array) -> jax.Array:
  """Output pixel o reads input position centre + inverse @ (o - centre) ((row, col) order), bilinear.

  Outside the image is zero, blended in by the interpolation weights rather than cut at the border.
  """
  h, w = image.shape[:2]
  cy, cx = (h - 1) / 2, (w - 1) / 2
  rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32) - cy, jnp.arange(w, dtype=jnp.float32) - cx, indexing="ij")
  source = [cy + inverse[0, 0] * rows + inverse[0, 1] * cols, cx + inverse[1, 0] * rows + inverse[1, 1] * cols]

  def plane(channel):
    return ndimage.map_coordinates(channel, source, order=1, mode="constant", cval=0.0)

  return jax.vmap(plane, in_axes=-1, out_axes=-1)(image).astype(image.dtype)


def rotate_image(image: jax.Array, degrees: jax.Array | float) -> jax.Array:
  """[H, W, C] rotated counter-clockwise (as displayed, row 0 on top) about the centre; 90 == jnp.rot90."""
  theta = jnp.deg2rad(jnp.asarray(degrees, jnp.float32))
  c, s = jnp.cos(theta), jnp.sin(theta)
  # Inverse map in (row, col) with rows pointing down: source = R(-theta) applied to the output offset.
  return _resample(image, jnp.array([[c, s], [-s, c]]))


def zoom_image(image: jax.Array, scale: jax.Array | float) -> jax.Array:
  """[H, W, C] scaled by `scale` about the centre: > 1 magnifies (edges leave), < 1 shrinks (zero border)."""
  inverse = jnp.eye(2, dtype=jnp.float32) / jnp.asarray(scale, jnp.float32)
  return _resample(image, inverse)


def shift_image(image: jax.Array, dx: jax.Array | int, dy: jax.Array | int, *, max_dx: int, max_dy: int) -> jax.Array:
  """[H, W, C] moved dx pixels right and dy down (|dx| <= max_dx, |dy| <= max_dy), zeros shifted in.

  Pad-then-slice keeps shapes static while dx, dy are traced; the static bounds size the padding.
  """
  padded = jnp.pad(image, ((max_dy, max_dy), (max_dx, max_dx), (0, 0)))
  start = (jnp.asarray(max_dy - dy, jnp.int32), jnp.asarray(max_dx - dx, jnp.int32), jnp.int32(0))
  return jax.lax.dynamic_slice(padded, start, image.shape)


def _to_int(u: jax.Array, bound: int) -> jax.Array:
  """u uniform in [0, 1) -> an integer uniform in {-bound..bound}."""
  return jnp.minimum(jnp.floor(u * (2 * bound + 1)).astype(jnp.int32), 2 * bound) - bound


def _symmetric(u: jax.Array, bound: float) -> jax.Array:
  """u uniform in [0, 1) -> uniform in [-bound, bound)."""
  return bound * (2.0 * u - 1.0)


# ------------------------------------------------------------------------------------------------
# Ops: frozen (hashable) dataclasses, so a tuple of them is a static argument of a jitted function.
#
# An op is a deterministic function of its uniforms: `augment_example` draws all of an op's randomness
# (its parameters and the p coin) in ONE jax.random.uniform call. Each threefry call is unrolled into
# the HLO and dominates compile time on XLA:CPU (~0.1-0.3 s each); split + coin + randint per op made
# an 8-op chain cost several seconds more to compile.


@dataclasses.dataclass(frozen=True, kw_only=True)
class AugmentOp:
  """One configured op; `transform` always applies it, `p` is handled by `augment_example`."""

  p: float = 1.0
  name: ClassVar[str] = ""

  def __post_init__(self):
    problem = self.problem()
    if problem:
      raise ValueError(problem)

  def problem(self) -> str | None:
    """Why these arguments cannot be used, or None; one phrase, for a one-line ConfigError."""
    if not 0.0 <= self.p <= 1.0:
      return f"p={self.p} must be in [0, 1]"
    return None

  def num_draws(self, shape: tuple[int, ...]) -> int:
    """How many uniforms in [0, 1) `transform` takes for an image of this shape."""
    return 0

  def transform(self, u: jax.Array, image: jax.Array) -> jax.Array:
    raise NotImplementedError


@dataclasses.dataclass(frozen=True, kw_only=True)
class HFlip(AugmentOp):
  name: ClassVar[str] = "hflip"

  def transform(self, u, image):
    return _pix().flip_left_right(image)


@dataclasses.dataclass(frozen=True, kw_only=True)
class VFlip(AugmentOp):
  name: ClassVar[str] = "vflip"

  def transform(self, u, image):
    return _pix().flip_up_down(image)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Rotate(AugmentOp):
  degrees: float
  name: ClassVar[str] = "rotate"

  def problem(self):
    if not 0.0 <= self.degrees <= 180.0:
      return f"degrees={self.degrees} must be in [0, 180]"
    return super().problem()

  def num_draws(self, shape):
    return 1

  def transform(self, u, image):
    return rotate_image(image, _symmetric(u[0], self.degrees))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Zoom(AugmentOp):
  min_scale: float
  max_scale: float
  name: ClassVar[str] = "zoom"

  def problem(self):
    if not 0.0 < self.min_scale <= self.max_scale:
      return f"needs 0 < min_scale <= max_scale, got min_scale={self.min_scale}, max_scale={self.max_scale}"
    return super().problem()

  def num_draws(self, shape):
    return 1

  def transform(self, u, image):
    return zoom_image(image, self.min_scale + (self.max_scale - self.min_scale) * u[0])


@dataclasses.dataclass(frozen=True, kw_only=True)
class Crop(AugmentOp):
  padding: int
  name: ClassVar[str] = "crop"

  def problem(self):
    if self.padding < 0:
      return f"padding={self.padding} must be >= 0"
    return super().problem()

  def num_draws(self, shape):
    return 2

  def transform(self, u, image):
    # Pad by P then crop at a random offset in [0, 2P]^2 == a whole-pixel shift in [-P, P]^2.
    p = self.padding
    return shift_image(image, _to_int(u[0], p), _to_int(u[1], p), max_dx=p, max_dy=p)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Translate(AugmentOp):
  max_dx: int
  max_dy: int
  name: ClassVar[str] = "translate"

  def problem(self):
    if self.max_dx < 0 or self.max_dy < 0:
      return f"max_dx={self.max_dx}, max_dy={self.max_dy} must be >= 0"
    return super().problem()

  def num_draws(self, shape):
    return 2

  def transform(self, u, image):
    dx, dy = _to_int(u[0], self.max_dx), _to_int(u[1], self.max_dy)
    return shift_image(image, dx, dy, max_dx=self.max_dx, max_dy=self.max_dy)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Noise(AugmentOp):
  std: float
  name: ClassVar[str] = "noise"

  def problem(self):
    if self.std < 0:
      return f"std={self.std} must be >= 0"
    return super().problem()

  def num_draws(self, shape):
    return math.prod(shape)

  def transform(self, u, image):
    # Inverse-CDF normals, as jax.random.normal makes them; the clamp keeps erfinv(-1) = -inf out.
    v = jnp.maximum(2.0 * u - 1.0, jnp.nextafter(jnp.float32(-1.0), jnp.float32(0.0)))
    normal = jnp.sqrt(2.0) * jax.scipy.special.erfinv(v)
    return image + (self.std * normal).reshape(image.shape).astype(image.dtype)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Brightness(AugmentOp):
  max_delta: float
  name: ClassVar[str] = "brightness"

  def problem(self):
    if self.max_delta < 0:
      return f"max_delta={self.max_delta} must be >= 0"
    return super().problem()

  def num_draws(self, shape):
    return 1

  def transform(self, u, image):
    return _pix().adjust_brightness(image, _symmetric(u[0], self.max_delta))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Contrast(AugmentOp):
  lower: float
  upper: float
  name: ClassVar[str] = "contrast"

  def problem(self):
    if not 0.0 <= self.lower <= self.upper:
      return f"needs 0 <= lower <= upper, got lower={self.lower}, upper={self.upper}"
    return super().problem()

  def num_draws(self, shape):
    return 1

  def transform(self, u, image):
    return _pix().adjust_contrast(image, self.lower + (self.upper - self.lower) * u[0])


@dataclasses.dataclass(frozen=True, kw_only=True)
class Clip(AugmentOp):
  name: ClassVar[str] = "clip"

  def transform(self, u, image):
    return jnp.clip(image, 0.0, 1.0)


OPS: Mapping[str, type[AugmentOp]] = {
  op.name: op for op in (HFlip, VFlip, Rotate, Zoom, Crop, Translate, Noise, Brightness, Contrast, Clip)
}
OP_NAMES = tuple(OPS)


# ------------------------------------------------------------------------------------------------
# Parsing "rotate(degrees=15, p=0.5)" strings.

# The same spec grammar as models/initializers.py (`name` or `name(args)`). Its `parse` takes at
# most one argument and returns an initializer, so it cannot be reused for multi-argument ops.
_SPEC = re.compile(r"^\s*([a-z_]+)\s*(?:\((.*)\))?\s*$")


def _arguments(cls: type[AugmentOp]) -> list[dataclasses.Field]:
  """The op's own arguments first (positional order), then p."""
  fields = dataclasses.fields(cls)
  return [f for f in fields if f.name != "p"] + [f for f in fields if f.name == "p"]


def signature(cls: type[AugmentOp]) -> str:
  """`rotate(degrees, p=1.0)`: what an error message offers as the allowed form."""
  parts = [f.name if f.default is dataclasses.MISSING else f"{f.name}={f.default}" for f in _arguments(cls)]
  return f"{cls.name}({', '.join(parts)})"


def _allowed_ops() -> str:
  return "allowed ops: " + ", ".join(signature(op) for op in OPS.values())


def _number(text: str, field: dataclasses.Field) -> float | int:
  value = float(text)  # ValueError is turned into a ConfigError by the caller
  if not math.isfinite(value):
    raise ValueError
  if field.type in ("int", int):
    if value != int(value):
      raise ValueError
    return int(value)
  return value


def _parse_one(spec: object, where: str) -> AugmentOp:
  def fail(problem: str, cls: type[AugmentOp] | None = None) -> ConfigError:
    allowed = f"usage: {signature(cls)}" if cls else _allowed_ops()
    return ConfigError(f"{where}={spec!r}: {problem}; {allowed}")

  if not isinstance(spec, str):
    raise fail("must be a string such as 'rotate(degrees=15, p=0.5)'")
  match = _SPEC.match(spec)
  if not match:
    raise fail("does not read NAME or NAME(ARG=NUMBER, ...)")
  name, body = match.group(1), (match.group(2) or "").strip()
  if name not in OPS:
    raise fail(f"unknown op {name!r}")
  cls = OPS[name]
  arguments = _arguments(cls)
  by_name = {f.name: f for f in arguments}
  positional = [f.name for f in arguments if f.name != "p"]
  values: dict[str, float | int] = {}
  keyword_seen = False
  for item in body.split(",") if body else []:
    key, equals, text = item.partition("=")
    if equals:
      keyword_seen = True
    else:
      key, text = "", key
      if keyword_seen or len(values) >= len(positional):
        raise fail(f"positional argument {text.strip()!r} after a keyword or past the op's own arguments", cls)
      key = positional[len(values)]
    key, text = key.strip(), text.strip()
    if key not in by_name:
      raise fail(f"unknown argument {key!r}", cls)
    if key in values:
      raise fail(f"{key} given twice", cls)
    try:
      values[key] = _number(text, by_name[key])
    except ValueError:
      kind = "a whole number" if by_name[key].type in ("int", int) else "a finite number"
      raise fail(f"{key}={text!r} is not {kind}", cls) from None
  missing = [f.name for f in arguments if f.default is dataclasses.MISSING and f.name not in values]
  if missing:
    raise fail(f"missing {', '.join(missing)}", cls)
  try:
    return cls(**values)
  except ValueError as e:
    raise fail(str(e), cls) from None


def parse_augment(specs: Sequence[str], field: str = "data.augment") -> tuple[AugmentOp, ...]:
  """Op specs -> hashable ops, checked before any compute; every problem is a one-line ConfigError."""
  if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence):
    raise ConfigError(f"{field}={specs!r} must be a tuple of op specs such as ('hflip(p=0.5)',); {_allowed_ops()}")
  return tuple(_parse_one(spec, f"{field}[{i}]") for i, spec in enumerate(specs))


# ------------------------------------------------------------------------------------------------
# Application.


def augment_example(key: jax.Array, image: jax.Array, ops: tuple[AugmentOp, ...]) -> jax.Array:
  """One example [H, W, C] -> [H, W, C]; `key` is this example's own key.

  Op i draws `uniform(fold_in(key, i), [n + 1])`: its n parameters, then the `p` coin last, so the
  parameters do not move when p changes (uniform draws are prefix-stable under the partitionable
  threefry, jax's default). The coin selects with jnp.where rather than lax.cond: under vmap a cond
  becomes a select of both branches anyway. p of 0 or 1 is decided statically: such an op costs
  nothing or draws no coin, and a flip with p=1 draws nothing at all.
  """
  if image.ndim != 3:
    raise ValueError(f"augment_example wants one image [H, W, C], got shape {image.shape}")
  for position, op in enumerate(ops):
    if op.p == 0.0:
      continue
    n = op.num_draws(image.shape)
    coin = op.p < 1.0
    if n == 0 and not coin:
      image = op.transform(jnp.zeros((0,), jnp.float32), image)
      continue
    u = jax.random.uniform(jax.random.fold_in(key, position), (n + coin,), jnp.float32)
    out = op.transform(u[:n], image)
    image = jnp.where(u[n] < op.p, out, image) if coin else out
  return image


def augment_batch(key: jax.Array, images: jax.Array, ops: tuple[AugmentOp, ...], example_ids: jax.Array) -> jax.Array:
  """[B, H, W, C] -> [B, H, W, C]; example b uses fold_in(key, example_ids[b]).

  `example_ids` int [B] must identify the example independently of its batch and device (its index in
  the training set, or its position in the global batch when `key` is already per step); jit with
  `ops` static: `jax.jit(augment_batch, static_argnames="ops")`.
  """
  if not ops:
    return images

  def one(example_id, image):
    return augment_example(jax.random.fold_in(key, example_id), image, ops)

  return jax.vmap(one)(example_ids, images)


def augment_inputs(
  key: jax.Array, batch: Mapping[str, jax.Array], ops: tuple[AugmentOp, ...], example_ids: jax.Array
) -> dict:
  """A {"inputs", "labels", ...} batch with only its images augmented; labels and mask pass through."""
  return {**batch, "inputs": augment_batch(key, batch["inputs"], ops, example_ids)}
