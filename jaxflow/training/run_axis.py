"""A group of runs as one pytree: every array carries a leading run axis (the multi-seed runner's vmap)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

take = jax.jit(
  lambda tree, i: jax.tree.map(lambda x: x[i], tree)
)  # run i of a stacked tree (one compile per structure)


def stack(trees):
  """Trees of equal structure -> one tree with a leading run axis."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
