"""Recurrent network: stacked LSTM / GRU / simple cells (flax `nn.RNN`), uni- or bidirectional.

Images are read as sequences of rows, so the 8x8 digits ([batch, 8, 8, 1]) are 8 steps of 8 features
and train unchanged. Variable-length sequences come as `{"sequence": ..., "lengths": ...}`; the lengths
go to `nn.RNN(seq_lengths=...)`, which keeps padded steps out of the final carry of both directions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxflow.models.activations import get_activation
from jaxflow.models.initializers import LayerInits

CELLS = ("lstm", "gru", "simple")
HEADS = ("many_to_one", "many_to_many")

Inputs = jax.Array | Mapping[str, jax.Array]


def as_sequence(inputs: Inputs) -> tuple[jax.Array, jax.Array | None]:
  """Inputs -> (sequence [batch, time, features], lengths [batch] int32 or None).

  `[batch, time, features]` is taken as is; `[batch, height, width, channels]` becomes `height` steps of
  `width * channels` features (an image read row by row); a dict `{"sequence", "lengths"}` carries the
  valid length of each sequence (steps at `t >= length` are padding), its sequence either rank.
  """
  lengths = None
  if isinstance(inputs, Mapping):
    inputs, lengths = inputs["sequence"], jnp.asarray(inputs["lengths"], jnp.int32)
  if inputs.ndim == 4:
    inputs = jnp.reshape(inputs, (*inputs.shape[:2], -1))
  if inputs.ndim != 3:
    raise ValueError(f"RNN inputs must be [batch, time, features] or [batch, height, width, channels]; got shape {inputs.shape}")
  return inputs, lengths


def _final_hidden(cell: str, carry) -> jax.Array:
  """A cell's carry -> its hidden state [batch, hidden]: LSTM carries (c, h); GRU and simple carry h."""
  return carry[1] if cell == "lstm" else carry


class RNN(nn.Module):
  """Stacked recurrent layers `rnn_0 .. rnn_{n-1}` (dropout between them), then a Dense `head`.

  inputs: `[batch, time, features]`, an image `[batch, height, width, channels]` (read as `height` steps
  of `width * channels` features), or `{"sequence": [batch, time, features], "lengths": [batch]}`.
  returns:
    many_to_one:  `[batch, output_dim]` from the final state at each sequence's last valid step
                  (bidirectional: the forward final state concatenated with the backward final state,
                  i.e. the backward pass after it has read step 0).
    many_to_many: `[batch, time, output_dim]`, one output per step. Outputs at padded steps
                  (`t >= length`) are not zeroed and may be anything: callers mask them out of losses
                  and metrics.
  Padded steps never update the state (flax `nn.RNN(seq_lengths=...)`), so many-to-one outputs do not
  depend on what the padding holds.

  `inits` sets each cell's input kernels and bias (layer names `rnn_i`) and the head's; recurrent kernels
  keep flax's orthogonal init. `activation` is the simple cell's nonlinearity (LSTM and GRU use their own
  tanh/sigmoid). `unroll` is passed to the time scan (`True` unrolls it fully). Each layer's final hidden
  features `[batch, hidden]` (`[batch, 2 * hidden]` bidirectional) are sown into `intermediates` as
  `LAYER_act`, for the layer statistics.
  """

  cell: str
  hidden_sizes: Sequence[int]
  output_dim: int
  bidirectional: bool = False
  head: str = "many_to_one"
  activation: str = "tanh"
  dropout_rate: float = 0.0
  inits: LayerInits = LayerInits()
  unroll: int | bool = 1

  def _layer(self, name: str, features: int, x: jax.Array, lengths: jax.Array | None):
    """One recurrent layer over [batch, time, in] -> (final hidden [batch, h or 2h], outputs [batch, time, h or 2h])."""
    # parent=None: built here but owned by the nn.RNN they are handed to, so parameters nest under
    # `name` (rnn_i/cell/..., rnn_i/forward_rnn/cell/...) instead of becoming siblings of the layer.
    kw = dict(kernel_init=self.inits.kernel_init(name), bias_init=self.inits.bias_init(name), parent=None)
    if self.cell == "lstm":
      make_cell = lambda: nn.OptimizedLSTMCell(features, **kw)  # noqa: E731  (one fused matmul per step)
    elif self.cell == "gru":
      make_cell = lambda: nn.GRUCell(features, **kw)  # noqa: E731
    elif self.cell == "simple":
      make_cell = lambda: nn.SimpleCell(features, activation_fn=get_activation(self.activation), **kw)  # noqa: E731
    else:
      raise ValueError(f"RNN cell {self.cell!r} is not known; allowed: {', '.join(CELLS)}")
    if self.bidirectional:
      forward, backward = (nn.RNN(make_cell(), unroll=self.unroll, parent=None) for _ in range(2))
      layer = nn.Bidirectional(forward, backward, return_carry=True, name=name)
      (fwd, bwd), outputs = layer(x, seq_lengths=lengths)
      return jnp.concatenate([_final_hidden(self.cell, fwd), _final_hidden(self.cell, bwd)], axis=-1), outputs
    carry, outputs = nn.RNN(make_cell(), unroll=self.unroll, return_carry=True, name=name)(x, seq_lengths=lengths)
    return _final_hidden(self.cell, carry), outputs

  @nn.compact
  def __call__(self, inputs: Inputs, *, train: bool = False) -> jax.Array:
    if self.head not in HEADS:
      raise ValueError(f"RNN head {self.head!r} is not known; allowed: {', '.join(HEADS)}")
    if not self.hidden_sizes:
      raise ValueError("RNN needs at least one recurrent layer: hidden_sizes=() is empty")
    x, lengths = as_sequence(inputs)
    for i, features in enumerate(self.hidden_sizes):
      name = f"rnn_{i}"
      final, x = self._layer(name, features, x, lengths)
      self.sow("intermediates", f"{name}_act", final)  # a sown name may not equal a submodule's
      if i + 1 < len(self.hidden_sizes):
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    features = final if self.head == "many_to_one" else x
    features = nn.Dropout(self.dropout_rate, deterministic=not train)(features)
    head = nn.Dense(self.output_dim, name="head", kernel_init=self.inits.kernel_init("head"), bias_init=self.inits.bias_init("head"))
    return head(features)
