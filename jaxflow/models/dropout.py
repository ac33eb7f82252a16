"""Dropout whose rate may be a traced value: one program training runs with different dropout rates.

The same computation as flax's `nn.Dropout` (a mask from `make_rng("dropout")` under the module's
auto-name `Dropout_i`, `bernoulli(keep_prob)`, inputs scaled by 1 / keep_prob), so a run draws the
same masks with either. What it adds: inside `rate_override(rate)` every Dropout uses `rate` (a scalar,
traced under vmap: each run of a group has its own) instead of its static one. That is how a group of
hyperparameter trials that differ only in the dropout rate trains as one vmapped program
(`jaxflow.run.train.train_group`). The override lives in a contextvar that is set while the step is
traced, never between steps.
"""

from __future__ import annotations

import contextlib
import contextvars

import flax.linen as nn
import jax
import jax.numpy as jnp

_RATE = contextvars.ContextVar("jaxflow_dropout_rate", default=None)


@contextlib.contextmanager
def rate_override(rate):
  """Every Dropout applied inside uses `rate` (None: each keeps its own)."""
  token = _RATE.set(rate)
  try:
    yield
  finally:
    _RATE.reset(token)


class Dropout(nn.Module):
  rate: float
  deterministic: bool | None = None

  @nn.compact
  def __call__(self, inputs: jax.Array, deterministic: bool | None = None) -> jax.Array:
    deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
    override = _RATE.get()
    rate = self.rate if override is None else override
    if deterministic:
      return inputs
    if override is None:  # a static rate: flax's shortcuts
      if rate == 0.0:
        return inputs
      if rate == 1.0:
        return jnp.zeros_like(inputs)
    keep_prob = 1.0 - rate
    mask = jax.random.bernoulli(self.make_rng("dropout"), p=keep_prob, shape=inputs.shape)
    return jax.lax.select(mask, inputs / keep_prob, jnp.zeros_like(inputs))
