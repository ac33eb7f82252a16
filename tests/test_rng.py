"""jaxflow.rng: named PRNG streams, pinning, the stable stream ids and per-step keys."""

from __future__ import annotations

import hashlib
import itertools

import jax
import numpy as np

from configs import base
from jaxflow import rng


def key_bits(key: jax.Array) -> tuple[int, ...]:
  return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def make_config(seed: int = 0, **pins: int):
  config = base.get_config()
  config.seed = seed
  for name, value in pins.items():
    config.seeds[name] = value
  return config


def test_one_typed_key_per_stream_all_distinct():
  keys = rng.streams(make_config())
  assert tuple(keys) == rng.STREAM_NAMES
  assert set(rng.STREAM_NAMES) == {"init", "data", "dropout", "augment", "noise", "sampler"}
  for key in keys.values():
    assert jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key)
    assert key.shape == ()
  bits = [key_bits(k) for k in keys.values()]
  assert len(set(bits)) == len(bits)
  # Distinct keys draw distinct numbers.
  draws = [float(jax.random.uniform(k)) for k in keys.values()]
  assert len(set(draws)) == len(draws)


def test_stream_is_fold_in_of_root_and_stable_id():
  keys = rng.streams(make_config(seed=3))
  for name in rng.STREAM_NAMES:
    expected = jax.random.fold_in(jax.random.key(3), rng.stable_id(name))
    assert key_bits(keys[name]) == key_bits(expected), name


def test_same_config_gives_identical_keys():
  a, b = rng.streams(make_config(seed=5)), rng.streams(make_config(seed=5))
  assert {n: key_bits(k) for n, k in a.items()} == {n: key_bits(k) for n, k in b.items()}


def test_changing_seed_changes_every_stream():
  a, b = rng.streams(make_config(seed=0)), rng.streams(make_config(seed=1))
  for name in rng.STREAM_NAMES:
    assert key_bits(a[name]) != key_bits(b[name]), name


def test_pinning_init_changes_only_init():
  free, pinned = rng.streams(make_config(seed=0)), rng.streams(make_config(seed=0, init=7))
  assert key_bits(free["init"]) != key_bits(pinned["init"])
  for name in set(rng.STREAM_NAMES) - {"init"}:
    assert key_bits(free[name]) == key_bits(pinned[name]), name
  # The pinned stream is derived from the pin exactly as a root seed would derive it.
  assert key_bits(pinned["init"]) == key_bits(rng.stream_key(7, "init"))


def test_pinned_stream_is_independent_of_root_seed():
  a, b = rng.streams(make_config(seed=0, init=7)), rng.streams(make_config(seed=1, init=7))
  assert key_bits(a["init"]) == key_bits(b["init"])
  for name in set(rng.STREAM_NAMES) - {"init"}:
    assert key_bits(a[name]) != key_bits(b[name]), name


def test_pin_equal_to_seed_value_is_still_a_pin():
  """seeds.init=0 is a pin (0 is not None): it must not fall back to config.seed."""
  a = rng.streams(make_config(seed=9, init=0))
  assert key_bits(a["init"]) == key_bits(rng.stream_key(0, "init"))
  assert key_bits(a["data"]) == key_bits(rng.stream_key(9, "data"))


def test_config_without_seeds_group():
  config = base.get_config()
  del config["seeds"]
  keys = rng.streams(config)
  assert key_bits(keys["data"]) == key_bits(rng.stream_key(0, "data"))


def test_stable_id_contract():
  # sha256(b"init") starts with bytes bb 54 06 8a; read little-endian that is 0x8a0654bb, and the
  # top bit cleared gives 0x0a0654bb. This value is a contract: changing it changes every run's keys.
  assert hashlib.sha256(b"init").digest()[:4] == bytes.fromhex("bb54068a")
  assert rng.stable_id("init") == 0x0A0654BB == 168187067
  ids = [rng.stable_id(n) for n in rng.STREAM_NAMES]
  assert all(0 <= i < 2**31 for i in ids)
  assert len(set(ids)) == len(ids)
  assert rng.stable_id("init") == rng.stable_id("init")


def test_step_key_equals_fold_in_eager_and_traced():
  stream = rng.streams(make_config())["dropout"]
  for step in (0, 1, 123):
    assert key_bits(rng.step_key(stream, step)) == key_bits(jax.random.fold_in(stream, step))
  traced = jax.jit(rng.step_key)(stream, np.int32(123))
  assert key_bits(traced) == key_bits(jax.random.fold_in(stream, 123))
  keys = [key_bits(rng.step_key(stream, s)) for s in range(4)]
  assert all(a != b for a, b in itertools.combinations(keys, 2))
  assert jax.dtypes.issubdtype(rng.step_key(stream, 0).dtype, jax.dtypes.prng_key)


def test_host_stream_keys_equal_jax_fold_in_bit_for_bit():
  """stream_key computes fold_in(key(seed), id) in numpy (no compile at a process's start): the same bits as
  jax's own for seeds across the 31-bit range and every stream, and jax's path where the host one does not
  apply (a negative seed)."""
  names = rng.STREAM_NAMES + rng.ANALYSIS_STREAMS + rng.PERTURBATIONS
  seeds = [0, 1, 2, 7, 42, 1000, 123_456_789, 2**31 - 1, *np.random.default_rng(0).integers(0, 2**31, 20).tolist()]
  for seed, name in itertools.product(seeds, names):
    host = rng.stream_key(seed, name)
    expected = jax.random.fold_in(jax.random.key(seed), rng.stable_id(name))
    assert key_bits(host) == key_bits(expected), (seed, name)
    assert jax.random.key_impl(host) == jax.random.key_impl(expected)
  assert rng._host_threefry_applies(np.int64(5)) and not rng._host_threefry_applies(-1)
  assert key_bits(rng.stream_key(-3, "init")) == key_bits(jax.random.fold_in(jax.random.key(-3), rng.stable_id("init")))
  # Draws from the host key equal draws from jax's.
  a, b = rng.stream_key(11, "dropout"), jax.random.fold_in(jax.random.key(11), rng.stable_id("dropout"))
  assert np.array_equal(jax.random.uniform(a, (5,)), jax.random.uniform(b, (5,)))
