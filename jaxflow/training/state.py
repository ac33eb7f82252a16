"""TrainState creation and the hash of parameters that names a run's result."""

from __future__ import annotations

import hashlib

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state


class TrainState(train_state.TrainState):
  """params, opt_state and step in one pytree; apply_fn and tx are static (not leaves).

  `hparams`: hyperparameters that are data rather than part of the program (`lr`, `weight_decay`,
  `dropout_rate`), set only for a group of runs that differ in them and train as one vmapped program
  (each run its own values; see steps.train_step). Empty for every other run. Not checkpointed: they
  come from each run's config.
  """

  hparams: dict = flax.struct.field(default_factory=dict)


def init_fn(model: nn.Module, tx: optax.GradientTransformation, input_structure):
  """key -> TrainState: parameter and optimizer init as one pure function, so it compiles as one
  program (eagerly, optax's init would compile a small program per distinct leaf shape).

  `input_structure`: the model's input as a pytree of jax.ShapeDtypeStruct (batch 1, or a shape tuple
  for a plain float32 array); the model is initialized on zeros of that structure. `step` is an int32
  array so the state's structure never changes.
  """
  if isinstance(input_structure, tuple) and all(isinstance(d, int) for d in input_structure):  # a plain shape
    input_structure = jax.ShapeDtypeStruct((1, *input_structure), jnp.float32)

  def init(init_key: jax.Array) -> TrainState:
    variables = model.init(init_key, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), input_structure))
    state = TrainState.create(apply_fn=model.apply, params=variables["params"], tx=tx)
    return state.replace(step=jnp.asarray(0, jnp.int32))

  return init


def num_params(params) -> int:
  return int(sum(np.size(p) for p in jax.tree.leaves(params)))


def params_sha256(params) -> str:
  """sha256 over (path, dtype, shape, bytes) of every parameter, in a fixed order.

  Equal hashes mean bitwise-equal parameters: the reproducibility check of a run.
  """
  return tree_sha256(params)


def tree_sha256(tree) -> str:
  """sha256 over (path, dtype, shape, bytes) of every array leaf of a pytree (typed PRNG keys by their
  key data), in a fixed order: what a checkpoint's verification compares."""
  digest = hashlib.sha256()
  keys_as_data = jax.tree.map(
    lambda x: jax.random.key_data(x) if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key) else x,
    tree,
  )
  leaves, _ = jax.tree_util.tree_flatten_with_path(jax.device_get(keys_as_data))
  for path, leaf in leaves:
    array = np.ascontiguousarray(np.asarray(leaf))
    digest.update(jax.tree_util.keystr(path).encode())
    digest.update(f"{array.dtype}{array.shape}".encode())
    digest.update(array.tobytes())
  return digest.hexdigest()
