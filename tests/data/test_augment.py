"""On-device augmentation: exact transforms, the p coin, per-example keys, and one-line config errors.

Every jitted function is module-level so tests that share ops and shapes share one compilation
(each op chain costs ~0.5-1.5 s to compile on XLA:CPU, mostly the unrolled threefry hashes).
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from jaxflow.config import ConfigError
from jaxflow.data import augment

augment_batch = jax.jit(augment.augment_batch, static_argnames="ops")
augment_example = jax.jit(augment.augment_example, static_argnames="ops")
rotate = jax.jit(augment.rotate_image)
zoom = jax.jit(augment.zoom_image)
shift = jax.jit(augment.shift_image, static_argnames=("max_dx", "max_dy"))


def images(shape, seed=0):
  return jax.random.uniform(jax.random.key(seed), shape, jnp.float32)


def ops(*specs):
  return augment.parse_augment(specs)


# ---- deterministic transforms ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 16, 3)])
def test_flips(shape):
  image = images(shape)
  np.testing.assert_array_equal(augment_example(jax.random.key(0), image, ops("hflip")), image[:, ::-1])
  np.testing.assert_array_equal(augment_example(jax.random.key(0), image, ops("vflip")), image[::-1])
  np.testing.assert_array_equal(augment_example(jax.random.key(0), image, ops("hflip", "hflip")), image)
  np.testing.assert_array_equal(augment_example(jax.random.key(0), image, ops("vflip", "vflip")), image)


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 16, 3)])
def test_rotate_0_is_identity_and_90_is_rot90(shape):
  image = images(shape)
  np.testing.assert_allclose(rotate(image, 0.0), image, atol=1e-6)
  # Whole image, borders included: the zero border is blended in, not cut at a float32 hair.
  np.testing.assert_allclose(rotate(image, 90.0), jnp.rot90(image), atol=1e-5)
  np.testing.assert_allclose(rotate(image, -90.0), jnp.rot90(image, k=-1), atol=1e-5)
  np.testing.assert_allclose(rotate(image, 180.0), image[::-1, ::-1], atol=1e-5)


def test_rotate_fills_corners_with_zeros():
  out = rotate(jnp.ones((16, 16, 1)), 45.0)
  assert float(out[0, 0, 0]) == 0.0 and float(out[8, 8, 0]) == pytest.approx(1.0)


def test_zoom():
  image = images((16, 16, 3))
  np.testing.assert_allclose(zoom(image, 1.0), image, atol=1e-6)
  smaller = zoom(jnp.ones((16, 16, 1)), 0.5)  # zoom out: a zero border around a full centre
  assert float(smaller[0, 0, 0]) == 0.0 and float(smaller[8, 8, 0]) == pytest.approx(1.0)
  # Against scipy's bilinear resampling (float64) of the same map: output pixel o reads the input at
  # centre + (o - centre) / scale. Zoom in (2.0, 1.25) reads inside the image; zoom out (0.5) also reads
  # outside it, blended with the zero fill as scipy's "grid-constant" mode does. The image is non-uniform
  # (uniform noise), so a neighbouring scale moves pixels by ~0.1-0.3. Tolerance: float32 source coordinates
  # are off by <= 16 * 2^-24 ~ 1e-6 pixels here, times an intensity slope <= 1, plus the rounding of four
  # weighted terms in [0, 1) (~4 * 6e-8): 2e-6 bounds both with room.
  centre = (16 - 1) / 2
  grid = np.stack(np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij"))
  for scale in (2.0, 1.25, 0.5):
    source = centre + (grid - centre) / scale
    expected = np.stack(
      [
        scipy.ndimage.map_coordinates(np.asarray(image[..., c], np.float64), source, order=1, mode="grid-constant")
        for c in range(3)
      ],
      axis=-1,
    )
    np.testing.assert_allclose(zoom(image, scale), expected, atol=2e-6, err_msg=f"scale {scale}")


def test_shift_is_whole_pixels_with_zero_fill():
  image = images((8, 8, 1))
  np.testing.assert_array_equal(shift(image, 0, 0, max_dx=1, max_dy=1), image)
  right = shift(image, 1, 0, max_dx=1, max_dy=1)
  np.testing.assert_array_equal(right[:, 1:], image[:, :-1])
  np.testing.assert_array_equal(right[:, 0], 0.0)
  down = shift(image, 0, 1, max_dx=1, max_dy=1)
  np.testing.assert_array_equal(down[1:], image[:-1])
  np.testing.assert_array_equal(down[0], 0.0)


# ---- random ops through augment_batch ----------------------------------------------------------


def test_crop_and_translate_identity_at_zero_and_shifts_otherwise():
  batch = images((64, 8, 8, 1))
  ids = jnp.arange(64)
  np.testing.assert_array_equal(
    augment_batch(jax.random.key(0), batch, ops("crop(padding=0)", "translate(0, 0)"), ids), batch
  )
  out = np.asarray(augment_batch(jax.random.key(0), batch, ops("crop(padding=2)"), ids))
  padded = np.pad(np.asarray(batch), ((0, 0), (2, 2), (2, 2), (0, 0)))
  shifts = {(dx, dy): padded[:, 2 - dy : 10 - dy, 2 - dx : 10 - dx] for dx in range(-2, 3) for dy in range(-2, 3)}
  found = set()
  for b in range(64):  # each output is the input moved by a whole (dx, dy) in [-2, 2]^2
    matches = [s for s, shifted in shifts.items() if np.array_equal(out[b], shifted[b])]
    assert len(matches) == 1
    found.add(matches[0])
  assert len(found) > 12  # and the offsets vary across examples


def test_noise_std_and_mean_on_grey():
  grey = jnp.full((1, 256, 256, 1), 0.5)
  noise = augment_batch(jax.random.key(1), grey, ops("noise(std=0.1)"), jnp.arange(1)) - 0.5
  # n = 65,536 normal draws: the sample std has a standard error of std / sqrt(2n) = 0.1 / 362 (0.28%), the
  # mean one of std / sqrt(n) = 0.1 / 256 = 3.9e-4; each is held to 5 standard errors.
  n = noise.size
  assert abs(float(jnp.std(noise)) - 0.1) < 5 * 0.1 / np.sqrt(2 * n)
  assert abs(float(jnp.mean(noise))) < 5 * 0.1 / np.sqrt(n)


def test_brightness_range_and_half_of_the_batch_with_p_half():
  batch = images((2000, 8, 8, 1))
  delta = augment_batch(jax.random.key(2), batch, ops("brightness(max_delta=0.2, p=0.5)"), jnp.arange(2000)) - batch
  per_image = delta[:, 0, 0, 0]
  np.testing.assert_allclose(delta, jnp.broadcast_to(per_image[:, None, None, None], delta.shape), atol=1e-6)
  applied = jnp.abs(per_image) > 0
  assert 0.45 < float(applied.mean()) < 0.55
  assert float(jnp.abs(per_image).max()) <= 0.2 + 1e-6
  assert float(per_image.min()) < -0.18 and float(per_image.max()) > 0.18


def test_contrast_range_keeps_the_mean():
  batch = images((500, 8, 8, 3))
  out = augment_batch(jax.random.key(3), batch, ops("contrast(lower=0.5, upper=1.5)"), jnp.arange(500))
  mean = batch.mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(out.mean(axis=(1, 2)), mean[:, 0, 0], atol=1e-5)
  factor = ((out - mean) / (batch - mean))[:, 0, 0, 0]
  assert float(factor.min()) >= 0.5 - 1e-4 and float(factor.max()) <= 1.5 + 1e-4
  assert float(factor.min()) < 0.55 and float(factor.max()) > 1.45


def test_p_zero_never_and_p_one_always():
  batch = images((256, 8, 8, 1))
  ids = jnp.arange(256)
  np.testing.assert_array_equal(augment_batch(jax.random.key(4), batch, ops("noise(std=0.1, p=0)"), ids), batch)
  changed = (augment_batch(jax.random.key(4), batch, ops("noise(std=0.1, p=1)"), ids) != batch).any(axis=(1, 2, 3))
  assert bool(changed.all())


CHAIN = ("hflip(p=0.5)", "rotate(degrees=15)", "noise(std=0.05)")


def test_same_key_same_output_other_key_other_output_and_no_retrace():
  batch = images((8, 16, 16, 3))
  ids = jnp.arange(8)
  traced = jax.jit(chex.assert_max_traces(augment.augment_batch, n=1), static_argnames="ops")
  first = traced(jax.random.key(5), batch, ops(*CHAIN), ids)
  again = traced(jax.random.key(5), batch, ops(*CHAIN), ids)  # a freshly parsed, equal tuple: cache hit
  other = traced(jax.random.key(6), batch, ops(*CHAIN), ids)
  np.testing.assert_array_equal(first, again)
  assert bool((first != other).any(axis=(1, 2, 3)).all())
  assert float(jnp.abs(first[0] - first[1]).max()) > 0  # two examples in one batch draw differently


def test_example_id_not_position_decides():
  key = jax.random.key(7)
  image = images((16, 16, 3), seed=1)
  four = images((4, 16, 16, 3)).at[0].set(image)
  eight = images((8, 16, 16, 3), seed=2).at[3].set(image)
  out_four = augment_batch(key, four, ops(*CHAIN), jnp.array([42, 1, 2, 3]))
  out_eight = augment_batch(key, eight, ops(*CHAIN), jnp.array([10, 11, 12, 42, 14, 15, 16, 17]))
  np.testing.assert_array_equal(out_four[0], out_eight[3])


def test_vmap_of_augment_example_matches_augment_batch():
  key = jax.random.key(8)
  batch = images((4, 16, 16, 3))
  ids = jnp.array([3, 1, 4, 1])
  per_example = jax.jit(jax.vmap(functools.partial(augment.augment_example, ops=ops(*CHAIN))))
  keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, ids)
  np.testing.assert_allclose(per_example(keys, batch), augment_batch(key, batch, ops(*CHAIN), ids), atol=1e-6)


def test_appending_an_op_keeps_earlier_draws():
  batch = images((8, 8, 8, 1))
  ids = jnp.arange(8)
  before = augment_batch(jax.random.key(9), batch, ops("brightness(0.3)"), ids)
  after = augment_batch(jax.random.key(9), batch, ops("brightness(0.3)", "vflip"), ids)
  np.testing.assert_array_equal(after, before[:, ::-1])


def test_augment_inputs_leaves_labels_and_mask():
  batch = {"inputs": images((4, 8, 8, 1)), "labels": jnp.array([0, 1, 2, 3]), "mask": jnp.ones(4)}
  out = augment.augment_inputs(jax.random.key(0), batch, ops("vflip"), jnp.arange(4))
  np.testing.assert_array_equal(out["inputs"], batch["inputs"][:, ::-1])
  assert out["labels"] is batch["labels"] and out["mask"] is batch["mask"]


def test_no_ops_and_no_clipping_unless_asked():
  batch = images((4, 8, 8, 1))
  assert augment.augment_batch(jax.random.key(0), batch, (), jnp.arange(4)) is batch
  raw = augment.augment_batch(
    jax.random.key(0), jnp.ones((4, 8, 8, 1)), ops("brightness(0.5)", "noise(0.5)"), jnp.arange(4)
  )
  assert float(raw.max()) > 1.0
  clipped = augment.augment_batch(
    jax.random.key(0), jnp.ones((4, 8, 8, 1)), ops("brightness(0.5)", "noise(0.5)", "clip"), jnp.arange(4)
  )
  assert float(clipped.max()) <= 1.0 and float(clipped.min()) >= 0.0


# ---- parsing -------------------------------------------------------------------------------------


def test_parse_forms_are_equal_and_hashable():
  by_position = augment.parse_augment(("zoom(0.9, 1.1, p=0.5)", "crop(4)", "hflip()", " vflip "))
  by_keyword = augment.parse_augment(
    ("zoom(min_scale=0.9, max_scale=1.1, p=0.5)", "crop(padding=4.0)", "hflip", "vflip(p=1)")
  )
  assert by_position == by_keyword and hash(by_position) == hash(by_keyword)
  assert by_position[0] == augment.Zoom(min_scale=0.9, max_scale=1.1, p=0.5)
  assert isinstance(by_position[1].padding, int)
  assert augment.parse_augment([]) == ()


@pytest.mark.parametrize(
  "spec, says",
  [
    ("rotat(degrees=15)", "unknown op 'rotat'"),
    ("rotate(deg=15)", "unknown argument 'deg'"),
    ("rotate()", "missing degrees"),
    ("zoom(min_scale=0.9)", "missing max_scale"),
    ("rotate(degrees=abc)", "not a finite number"),
    ("noise(std=nan)", "not a finite number"),
    ("hflip(p=1.5)", "p=1.5 must be in [0, 1]"),
    ("hflip(p=-0.1)", "must be in [0, 1]"),
    ("noise(std=-0.1)", "std=-0.1 must be >= 0"),
    ("crop(padding=-1)", "padding=-1 must be >= 0"),
    ("crop(padding=1.5)", "not a whole number"),
    ("translate(max_dx=-1, max_dy=0)", "must be >= 0"),
    ("zoom(1.2, 1.1)", "min_scale <= max_scale"),
    ("contrast(lower=1.5, upper=0.5)", "lower <= upper"),
    ("brightness(max_delta=-0.1)", "must be >= 0"),
    ("rotate(degrees=200)", "must be in [0, 180]"),
    ("rotate(15, degrees=15)", "degrees given twice"),
    ("rotate(p=0.5, 15)", "positional argument"),
    ("hflip(0.5)", "positional argument"),
    ("rotate[15]", "does not read"),
    (3, "must be a string"),
  ],
)
def test_config_errors_are_one_line_naming_the_field(spec, says):
  with pytest.raises(ConfigError) as info:
    augment.parse_augment(("hflip", spec))
  message = str(info.value)
  assert "\n" not in message and message.startswith("data.augment[1]=")
  assert says in message and repr(spec) in message
  assert "usage: " in message or "allowed ops: hflip(p=1.0), vflip(p=1.0), rotate(degrees, p=1.0)" in message


def test_a_bare_string_is_not_a_tuple_of_specs():
  with pytest.raises(ConfigError, match=r"^data\.augment='hflip' must be a tuple of op specs"):
    augment.parse_augment("hflip")


def test_ops_built_in_python_are_checked_too():
  with pytest.raises(ValueError, match="p=2"):
    augment.HFlip(p=2.0)
