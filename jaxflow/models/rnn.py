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
from jaxflow.models.dropout import Dropout
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
    raise ValueError(
      f"RNN inputs must be [batch, time, features] or [batch, height, width, channels]; got shape {inputs.shape}"
    )
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
  `output_dim=None` drops the head and returns those features instead ([batch, h] / [batch, time, h]).
  Padded steps never update the state (flax `nn.RNN(seq_lengths=...)`), so many-to-one outputs do not
  depend on what the padding holds.

  `inits` sets each cell's input kernels and bias (layer names `rnn_i`) and the head's; recurrent kernels
  keep flax's orthogonal init. `activation` is the simple cell's nonlinearity (LSTM and GRU use their own
  tanh/sigmoid). `unroll` is passed to the time scan (`True` unrolls it fully; on XLA:CPU it was no
  faster for the digits, see configs/digits_rnn.py). `param_dtype` must match the parameters given at
  apply (float64 for gradient checks): the scan's zero initial state is made in it. Each layer's final
  hidden features `[batch, hidden]` (`[batch, 2 * hidden]` bidirectional) are sown into `intermediates`
  as `LAYER_act`, for the layer statistics.
  """

  cell: str
  hidden_sizes: Sequence[int]
  output_dim: int | None  # None: headless (a stack stage), returns the features the head would read
  bidirectional: bool = False
  head: str = "many_to_one"
  activation: str = "tanh"
  dropout_rate: float = 0.0
  inits: LayerInits = LayerInits()
  unroll: int | bool = 1
  param_dtype: jnp.dtype = jnp.float32  # also the zero initial state's dtype, which nn.RNN's scan must keep

  def _make_cell(self, name: str, features: int) -> nn.RNNCellBase:
    # parent=None: built here but owned by the nn.RNN it is handed to, so parameters nest under the layer
    # (rnn_i/cell/..., rnn_i/forward_rnn/cell/...) instead of becoming siblings of it.
    kw = dict(
      kernel_init=self.inits.kernel_init(name),
      bias_init=self.inits.bias_init(name),
      param_dtype=self.param_dtype,
      parent=None,
    )
    if self.cell == "simple":
      kw["activation_fn"] = get_activation(self.activation)
    # OptimizedLSTMCell: the same parameters as LSTMCell, but one fused matmul per step instead of eight.
    return {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "simple": nn.SimpleCell}[self.cell](features, **kw)

  def _layer(self, name: str, features: int, x: jax.Array, lengths: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """[batch, time, in] -> (final hidden [batch, h], outputs [batch, time, h]); h doubles when bidirectional."""
    if self.bidirectional:
      forward, backward = (nn.RNN(self._make_cell(name, features), unroll=self.unroll, parent=None) for _ in range(2))
      (fwd, bwd), outputs = nn.Bidirectional(forward, backward, return_carry=True, name=name)(x, seq_lengths=lengths)
      return jnp.concatenate([_final_hidden(self.cell, fwd), _final_hidden(self.cell, bwd)], axis=-1), outputs
    rnn = nn.RNN(self._make_cell(name, features), unroll=self.unroll, return_carry=True, name=name)
    carry, outputs = rnn(x, seq_lengths=lengths)
    return _final_hidden(self.cell, carry), outputs

  @nn.compact
  def __call__(self, inputs: Inputs, *, train: bool = False) -> jax.Array:
    if self.cell not in CELLS:
      raise ValueError(f"RNN cell {self.cell!r} is not known; allowed: {', '.join(CELLS)}")
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
        x = Dropout(self.dropout_rate, deterministic=not train)(x)
    features = final if self.head == "many_to_one" else x
    features = Dropout(self.dropout_rate, deterministic=not train)(features)
    if self.output_dim is None:
      return features
    inits = dict(kernel_init=self.inits.kernel_init("head"), bias_init=self.inits.bias_init("head"))
    return nn.Dense(self.output_dim, name="head", param_dtype=self.param_dtype, **inits)(features)
