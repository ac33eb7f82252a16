"""The jitted programs of a run, each wrapped once and compiled ahead of time (so compile seconds are
measured, and a changed shape shows up as a second compilation, not a silent retrace).

Two ways through an epoch:
- fused (`train_epoch`): shuffle + every step + eval in one program; used when a whole epoch fits in
  one dispatch (the default for non-convolutional models).
- chunked: the epoch's order, then `train_chunk` programs of `steps_per_dispatch` steps (intra-epoch
  logging, one step per dispatch for convolutional models on CPU), then `eval_chunk`.
"""

from __future__ import annotations

import functools
import time

import jax
import numpy as np

from jaxflow import rng
from jaxflow.data.device import DeviceData
from jaxflow.data.graph_batches import HostData
from jaxflow.data.problem import Problem
from jaxflow.training import losses, steps
from jaxflow.training.dispatch import donates_state
from jaxflow.training.parallel import SINGLE, Layout, fetch
from jaxflow.training.state import TrainState


class PackedLayout:
  """A pytree of float32 arrays flattened into one vector on the device, unflattened on the host.

  An epoch's train metrics ([steps] per name) and eval sums (scalars and a [C, C] confusion matrix) are
  ~10 small arrays; fetching each costs the host ~50-70 us of Python, and on a 2-core machine the host's
  CPU is taken from the training program running beside it. One vector is one fetch.
  """

  def __init__(self, tree_shapes):
    leaves, self._treedef = jax.tree.flatten(tree_shapes)
    self._shapes = [leaf.shape for leaf in leaves]
    self._dtypes = [leaf.dtype for leaf in leaves]
    self._splits = np.cumsum([int(np.prod(shape)) for shape in self._shapes])[:-1]

  @staticmethod
  def pack(tree) -> jax.Array:
    return jax.numpy.concatenate([jax.numpy.ravel(leaf).astype(jax.numpy.float32) for leaf in jax.tree.leaves(tree)])

  def unpack(self, vector: np.ndarray):
    parts = np.split(np.asarray(vector), self._splits)
    leaves = [part.reshape(shape).astype(dtype) for part, shape, dtype in zip(parts, self._shapes, self._dtypes)]
    return jax.tree.unflatten(self._treedef, leaves)


def _shapes(tree) -> tuple:
  """A hashable key of a pytree's leaf shapes: one compiled program per distinct padded batch shape."""
  return tuple(np.shape(leaf) for leaf in jax.tree.leaves(tree))


class Programs:
  def __init__(
    self,
    *,
    problem: Problem,
    batch_size: int,
    lr_fn,
    steps_per_epoch: int,
    unroll,
    focal_gamma: float = 2.0,
    class_weights: tuple[float, ...] | None = None,
    augment_ops: tuple = (),
    layout: Layout = SINGLE,
    stack: int = 1,
    data_stacked: bool = False,
    stack_sharding=None,
    runtime: steps.RuntimeHparams | None = None,
    shared: dict | None = None,
  ):
    """`stack` > 1: a group of runs that differ only in their PRNG keys (the multi-seed runner) trained
    as one program, every array of the state and every stream with a leading run axis of that size
    (jax.vmap of the same step functions). `data_stacked`: the runs also have their own training data
    (e.g. a skewed subset drawn from each run's `data` stream), stacked the same way. `stack_sharding`:
    where stacked arrays live (the run axis spread over devices), None for the default device.
    `shared`: executables shared with other Programs built on the same model and optimizer objects
    (the one-run init)."""
    self.layout, self.stack, self.stack_sharding, self.data_stacked = layout, stack, stack_sharding, data_stacked
    d = 0 if data_stacked else None
    vmapped = (lambda fn, in_axes: jax.vmap(fn, in_axes=in_axes)) if stack > 1 else (lambda fn, in_axes: fn)
    loss = dict(loss_name=problem.loss, kind=problem.kind, focal_gamma=focal_gamma)
    step_fn = functools.partial(
      steps.train_step, **loss, lr_fn=lr_fn, class_weights=class_weights, layout=layout, runtime=runtime
    )
    eval_fn = functools.partial(steps.eval_step, **loss, num_classes=problem.num_classes, layout=layout)
    order = dict(num_examples=problem.train_size, steps=steps_per_epoch, batch_size=batch_size)
    train = dict(step_fn=step_fn, augment_ops=augment_ops, unroll=unroll, layout=layout)
    # Not donated: the loop dispatches epoch e+1 before it has logged, checkpointed or copied epoch e's
    # state (see loop.py), so that state must outlive the call.
    epoch_fn = functools.partial(steps.train_epoch, **order, **train, eval_fn=eval_fn)
    self._epoch_packing: PackedLayout | None = None

    def packed_epoch(*args):
      state, train_metrics, eval_sums = epoch_fn(*args)
      # Runs once, while tracing: the layout is a by-product of the one trace (no second trace for it).
      # Under vmap the shapes seen here are one run's.
      self._epoch_packing = PackedLayout(
        jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), (train_metrics, eval_sums))
      )
      return state, PackedLayout.pack((train_metrics, eval_sums))

    epoch_core = vmapped(packed_epoch, (0, d, d, d, 0, d, None))

    def train_epoch(*args):  # named for the compile log: jit(train_epoch)
      return epoch_core(*args)

    def train_chunk(state, inputs, labels, epoch_indices, offset, dropout_stream, augment_stream, *, num_steps):
      chunk = functools.partial(steps.train_chunk, **train, num_steps=num_steps)
      return vmapped(chunk, (0, d, d, 0, None, 0, 0))(
        state, inputs, labels, epoch_indices, offset, dropout_stream, augment_stream
      )

    self._epoch = layout.jit(train_epoch)
    self._chunk_fn = train_chunk  # jitted by `_donating`, once the state it trains is known
    self._eval = layout.jit(vmapped(functools.partial(steps.eval_chunk, eval_fn=eval_fn, layout=layout), (0, d)))
    self._indices = jax.jit(vmapped(functools.partial(steps.epoch_indices, **order), (0, None, 0, d)))
    self._layer_stats = jax.jit(vmapped(functools.partial(steps.layer_stats, **loss), (0, d)))
    self._probe_size = batch_size

    # Host batches (graphs): one step per batch, compiled once per padded shape (budget).
    def host_train_step(state, batch, dropout_stream):
      return step_fn(state, batch, rng.step_key(dropout_stream, state.step))

    self._host_step_fn = host_train_step
    # Whether a chunk and a host step donate the state they train on (dispatch.donates_state): decided from
    # the first state one of them is given; None before.
    self.donates_state: bool | None = None
    self._host_eval = jax.jit(eval_fn)
    self._compiled: dict[object, object] = {}
    self._shared = {} if shared is None else shared
    self.compile_seconds = 0.0

  def _run(self, key, jitted, *args, cache=None, compile_only=False, **static):
    """The program under `key` called on `args`, compiled first if it is not yet (`compile_only`: not called)."""
    cache = self._compiled if cache is None else cache
    if key not in cache:
      start = time.perf_counter()
      cache[key] = jitted.lower(*args, **static).compile()
      self.compile_seconds += time.perf_counter() - start
    return None if compile_only else cache[key](*args)

  def _donating(self, state) -> tuple:
    """(the chunk program, the host step program), jitted to donate the state or not, as
    `dispatch.donates_state` decides for the first state they train."""
    if self.donates_state is None:
      self.donates_state = donates_state(state)
      donate = (0,) if self.donates_state else ()
      self._chunk = self.layout.jit(self._chunk_fn, static_argnames="num_steps", donate_argnums=donate)
      self._host_step = jax.jit(self._host_step_fn, donate_argnums=donate)
    return self._chunk, self._host_step

  def init_single(self, init):
    """One run's init program (compiled once, shared by the Programs of the same model and optimizer),
    for a group to call per run and a one-device run to call once."""

    def call(key):
      return self._run("init_one", jax.jit(init), key, cache=self._shared)

    return call

  def init_state(self, init, init_key) -> TrainState:
    """The initial state, replicated on every device of the layout (built there, not copied there);
    stacked: one per run from the runs' [stack] init keys."""
    if self.stack > 1:
      return self._run("init", jax.jit(jax.vmap(init), out_shardings=self.stack_sharding), init_key)
    return self._run("init", jax.jit(init, out_shardings=self.layout.replicated), init_key)

  def epoch(self, state, data: DeviceData, streams, epoch: int):
    """Dispatches one fused epoch: (state, packed results on the device). `unpack_epoch` of the packed
    vector, once fetched, gives (train metrics [steps] per name, eval sums) as numpy."""
    args = (
      state,
      data.train_inputs,
      data.train_labels,
      data.eval_batches,
      dict(streams),
      data.sample_probabilities,
      np.int32(epoch),
    )
    return self._run("epoch", self._epoch, *args)

  def unpack_epoch(self, packed) -> tuple[dict, dict] | list[tuple[dict, dict]]:
    """(train metrics, eval sums) as numpy; stacked: one such pair per run."""
    host = fetch(packed)  # a group's run axis may be spread over several processes
    if self.stack > 1:
      return [self._epoch_packing.unpack(row) for row in host]
    return self._epoch_packing.unpack(host)

  def indices(self, data: DeviceData, streams, epoch: int):
    return self._run(
      "indices", self._indices, streams["data"], np.int32(epoch), streams["sampler"], data.sample_probabilities
    )

  def chunk(self, state, *, data: DeviceData, epoch_indices, offset: int, num_steps: int, streams):
    args = (
      state,
      data.train_inputs,
      data.train_labels,
      epoch_indices,
      np.int32(offset),
      streams["dropout"],
      streams["augment"],
    )
    return self._run(("chunk", num_steps), self._donating(state)[0], *args, num_steps=num_steps)

  def eval_sums(self, state, data: DeviceData | HostData, *, compile_only: bool = False):
    """Metric sums over the whole eval split: one program over device-resident batches, or one per host batch.
    `compile_only` (device-resident data): compiled, not run (an epoch's end on its own thread then compiles
    nothing: loop._overlapped_epochs)."""
    if isinstance(data, HostData):
      sums = [self._run(("host_eval", _shapes(b)), self._host_eval, state, b) for b in data.eval_batches]
      return jax.tree.map(lambda *xs: sum(xs), *sums)
    return self._run("eval", self._eval, state, data.eval_batches, compile_only=compile_only)

  def layer_stats(
    self, state, data: DeviceData | HostData, *, compile_only: bool = False
  ) -> dict[str, float] | list[dict[str, float]] | None:
    """Layer statistics on a fixed probe batch: the first `batch_size` training examples (`compile_only`:
    compiled, not run, as in `eval_sums`)."""
    if isinstance(data, HostData):
      probe = data.probe
    else:
      n = self._probe_size
      rows = (slice(None), slice(0, n)) if self.data_stacked else slice(0, n)  # stacked data: [runs, n, ...]
      probe = {
        "inputs": jax.tree.map(lambda a: a[rows], data.train_inputs),
        "labels": data.train_labels[rows],
        "mask": jax.numpy.ones(data.train_labels[rows].shape, jax.numpy.float32),
      }
    stats = self._run("layer_stats", self._layer_stats, state, probe, compile_only=compile_only)
    if compile_only:
      return None
    stats = fetch(stats)
    if self.stack > 1:
      return [{k: float(v[i]) for k, v in stats.items()} for i in range(self.stack)]
    return {k: float(v) for k, v in stats.items()}

  def host_step(self, state, *, batch, dropout_stream):
    """One train step on a host batch; metrics come back with a leading step axis of 1, like a chunk's."""
    host_step = self._donating(state)[1]
    state, metrics = self._run(("host_step", _shapes(batch)), host_step, state, batch, dropout_stream)
    return state, jax.tree.map(lambda m: m[None], metrics)

  def evaluate(self, state, data: DeviceData | HostData) -> dict[str, float]:
    return losses.finalize_metrics(jax.device_get(self.eval_sums(state, data)))
