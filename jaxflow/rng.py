"""Named PRNG streams: one key per source of randomness, each pinnable on its own.

A reproducibility study varies one source (say `init`) and freezes the rest. That needs every source
to draw from its own key derived from the config, never from a chain of splits whose order couples
them. `streams(config)` derives `fold_in(root, stable_id(name))` per name, where the root is
`key(config.seed)`, or `key(config.seeds.<name>)` when that stream is pinned.

Inside the loop, per-step keys are `step_key(stream, step) = fold_in(stream, step)`: a run resumed at
step S draws exactly the numbers an uninterrupted run draws at step S.
"""

from __future__ import annotations

import hashlib
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

# Training's sources of randomness, each pinnable by `config.seeds.<name>`: what a seeds study varies.
STREAM_NAMES = ("init", "data", "dropout", "augment", "noise", "sampler")
# Draws made after training, from the run's root seed (never from a training stream, so explaining a
# run changes nothing it trained): explain's re-initialization, SmoothGrad's noise, graph layouts.
ANALYSIS_STREAMS = ("explain",)
# Perturbations a seeds study can apply, pinned like a stream by `config.seeds.<name>` but off when unset
# (a plain run never perturbs): `one_bit` flips the lowest mantissa bit of one initial weight.
PERTURBATIONS = ("one_bit",)


def stable_id(name: str) -> int:
  """A 31-bit id of a stream name, the same in every process and Python version (unlike hash())."""
  return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little") & 0x7FFFFFFF


def stream_key(seed: int, name: str) -> jax.Array:
  known = STREAM_NAMES + ANALYSIS_STREAMS + PERTURBATIONS
  if name not in known:
    raise ValueError(f"{name!r} is not a PRNG stream; streams: {', '.join(known)}")
  if _host_threefry_applies(seed):
    return jax.random.wrap_key_data(_threefry_fold_in_host(seed, stable_id(name)), impl="threefry2x32")
  return jax.random.fold_in(jax.random.key(seed), stable_id(name))


# A run's stream keys, computed on the host. Eagerly, `key(seed)` and `fold_in` compile four small programs
# (~0.1-0.25 s of every process's start, below the persistent cache's threshold); the same threefry2x32 hash in
# numpy gives the same bits (tests/test_rng.py compares them over many seeds and every stream).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _host_threefry_applies(seed) -> bool:
  """jax.random.key(seed) is [0, seed] under the default threefry2x32 implementation for these seeds."""
  return (
    isinstance(seed, (int, np.integer))
    and not isinstance(seed, bool)
    and 0 <= seed < 2**31
    and jax.config.jax_default_prng_impl == "threefry2x32"
  )


def _threefry2x32_host(key: np.ndarray, x0: np.ndarray, x1: np.ndarray) -> list[np.ndarray]:
  """jax's threefry2x32 hash (jax/_src/random/threefry2x32.py, its five unrolled rounds) on uint32 arrays."""
  ks = [key[0:1], key[1:2], key[0:1] ^ key[1:2] ^ np.uint32(0x1BD11BDA)]
  x = [x0 + ks[0], x1 + ks[1]]
  for i in range(5):
    for r in _ROTATIONS[i % 2]:
      x[0] = x[0] + x[1]
      x[1] = (x[1] << np.uint32(r)) | (x[1] >> np.uint32(32 - r))
      x[1] = x[0] ^ x[1]
    x[0] = x[0] + ks[(i + 1) % 3]
    x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
  return x


def _threefry_fold_in_host(seed: int, data: int) -> np.ndarray:
  """The key data of fold_in(key(seed), data): the hash of the count [0, data] under the key [0, seed]."""
  key = np.array([0, seed], np.uint32)
  out = _threefry2x32_host(key, np.zeros(1, np.uint32), np.array([data], np.uint32))
  return np.concatenate(out)


def streams(config: ml_collections.ConfigDict) -> dict[str, jax.Array]:
  """{stream name: typed key}. `config.seeds.<name>`, when set, replaces `config.seed` for that stream."""
  pinned = config.get("seeds") or {}
  keys = {}
  for name in STREAM_NAMES:
    seed = pinned.get(name)
    keys[name] = stream_key(config.seed if seed is None else seed, name)
  return keys


def study_key(seed: int) -> jax.Array:
  """The key of a study's own draws, not a run's (a search's GP restarts, from `--study_seed`): the trials
  keep their configs' streams; this one only decides where the search looks."""
  return jax.random.key(seed)


def step_key(stream: jax.Array, step) -> jax.Array:
  """The key of one step of a stream; `step` may be a traced integer."""
  return jax.random.fold_in(stream, step)


def derived_seed(stream: jax.Array, purpose: str) -> int:
  """An integer seed in [0, 2**32) drawn from a stream for `purpose` (e.g. generating a dataset from the
  `data` stream): 32 bits from fold_in(stream, stable_id(purpose)), apart from the stream's per-step and
  per-epoch keys, and the same in every process."""
  return int(jax.random.bits(jax.random.fold_in(stream, stable_id(purpose)), dtype=jnp.uint32))


def analysis_key(config: ml_collections.ConfigDict, purpose: str, *, impl: str | None = None) -> jax.Array:
  """A key of its own for one draw made after training (`purpose`, e.g. "explain/randomization"), from the
  `explain` stream of the run's root seed. `impl="rbg"` (XLA's RngBitGenerator) where compiling is what
  costs: a one-off draw compiles its program once (the digits CNN's init: 1.3 s with rbg vs 7.2 s with
  threefry on a loaded 2-core CPU)."""
  return jax.random.key(derived_seed(stream_key(config.seed, "explain"), purpose) & 0x7FFFFFFF, impl=impl)


def dataset_seed(data_stream: jax.Array) -> int:
  """The integer seed a generated dataset is drawn with: a function of the run's `data` stream only, so
  `config.seeds.data` pins the dataset and a study that varies the data stream varies it."""
  return derived_seed(data_stream, "generate")


# --- one_bit: the smallest possible change of a run (Summers & Dinneen 2021) -------------------------------


def one_bit_seed(config: ml_collections.ConfigDict) -> int | None:
  """`config.seeds.one_bit` when a study pinned it (the run's init gets one bit flipped), else None."""
  return (config.get("seeds") or {}).get("one_bit")


def one_bit_site(seed: int, params) -> dict:
  """Which initial weight `one_bit` flips for `seed`: one element drawn uniformly over every floating-point
  parameter element (a leaf with many weights is hit as often as its size says), from its own stream
  `fold_in(key(seed), id("one_bit"))`, so the choice depends on the seed and the tree's shapes alone.
  Returns {"leaf": leaf number in jax.tree order, "path": keystr, "index": flat element index (C order)}.
  The 32 drawn bits modulo the element count: bias below count / 2**32 (1e-4 at 430k weights)."""
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  sizes = [math.prod(x.shape) if jnp.issubdtype(x.dtype, jnp.floating) else 0 for _, x in leaves]
  total = sum(sizes)
  if total == 0:
    raise ValueError("one_bit: the model has no floating-point parameter to perturb")
  element = derived_seed(stream_key(seed, "one_bit"), "element") % total
  for leaf, size in enumerate(sizes):
    if element < size:
      return {"leaf": leaf, "path": jax.tree_util.keystr(leaves[leaf][0]), "index": int(element)}
    element -= size
  raise AssertionError("unreachable")


def flip_lowest_bit(values: np.ndarray, index: int) -> np.ndarray:
  """A copy of `values` with the lowest mantissa bit of element `index` (flat, C order) flipped: the bits
  viewed as the unsigned integer of the same width, XOR 1 (float32: a relative change of 2**-23 or less)."""
  out = np.array(values, copy=True)
  bits = out.reshape(-1).view(np.dtype(f"uint{8 * out.dtype.itemsize}"))
  bits[index] ^= 1
  return out


def apply_one_bit(params, seed: int, *, run: int | None = None):
  """`params` with `one_bit_site(seed, ...)` flipped; `run`: the params carry a leading run axis (a group's
  stacked state) and only run `run`'s copy changes. The leaf is copied through the host and put back with
  its sharding: exact, and one leaf per run."""
  leaves, treedef = jax.tree.flatten(params)
  single = params if run is None else jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), params)
  site = one_bit_site(seed, single)
  leaf = leaves[site["leaf"]]
  host = np.asarray(jax.device_get(leaf))
  if run is None:
    host = flip_lowest_bit(host, site["index"])
  else:
    host = host.copy()
    host[run] = flip_lowest_bit(host[run], site["index"])
  sharding = getattr(leaf, "sharding", None)
  leaves[site["leaf"]] = jax.device_put(host, sharding) if sharding is not None else jnp.asarray(host)
  return jax.tree.unflatten(treedef, leaves)
