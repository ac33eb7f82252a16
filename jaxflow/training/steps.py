"""Pure step functions. They are wrapped (jit, or a parallel wrapper) in exactly one place: programs.py.

`train_step` is one optimizer step on one batch; `train_chunk` runs K steps over on-device data with
`lax.scan`, so one dispatch does K steps (the host loop's overhead is paid once per chunk, not per
step); `eval_chunk` evaluates pre-batched, padded and masked data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jaxflow import rng
from jaxflow.data import augment
from jaxflow.models.dropout import rate_override
from jaxflow.training import group_metrics, losses
from jaxflow.training.parallel import SINGLE, Layout
from jaxflow.training.state import TrainState


@dataclasses.dataclass(frozen=True)
class RuntimeHparams:
  """How a group whose runs differ in lr / weight decay / dropout rate applies them from
  `state.hparams`: its optimizer is built with lr 1 and without clipping or weight decay
  (`optimizers.create_optimizer(..., runtime=True)`), and the step adds them back in the order the
  normal optimizer chain has them: clip the gradient, add the coupled decay, update, then (adamw) the
  decoupled decay, then scale by the run's lr."""

  decoupled_weight_decay: bool  # adamw
  clip_norm: float | None


Batch = dict[str, jax.Array]  # inputs [b, ...], labels [b], mask [b]


def train_step(
  state: TrainState,
  batch: Batch,
  dropout_key: jax.Array,
  *,
  loss_name: str,
  kind: str,
  lr_fn: optax.Schedule,
  focal_gamma: float = 2.0,
  class_weights: tuple[float, ...] | None = None,
  layout: Layout = SINGLE,
  runtime: RuntimeHparams | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One step. Returns the new state and this step's metric sums plus `grad_norm` and `lr`.

  `class_weights` [C] scale each example's loss by its label's weight (imbalance remedy); the logged
  train loss is then the weighted one, the quantity being minimized. Under `layout` pmap, `batch` is
  this device's equal share of the global batch: the mean of the devices' mean-loss gradients is the
  global mean's gradient, and the metric sums are summed over devices.
  """
  dropout_key = layout.dropout_key(dropout_key)
  hp = state.hparams if runtime is not None else {}

  def loss_fn(params):
    with rate_override(hp.get("dropout_rate")):
      outputs = state.apply_fn({"params": params}, batch["inputs"], train=True, rngs={"dropout": dropout_key})
    per_example = losses.per_example_loss(
      loss_name, kind, outputs=outputs, labels=batch["labels"], focal_gamma=focal_gamma
    )
    if class_weights is not None:
      per_example = per_example * jnp.asarray(class_weights, jnp.float32)[batch["labels"]]
    sums = losses.metric_sums(
      loss_name, kind, outputs=outputs, labels=batch["labels"], mask=batch["mask"], losses=per_example
    )
    return sums["loss"] / jnp.maximum(sums["count"], 1.0), sums  # the masked mean; sums ride along as aux

  (_, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  grads, metrics = layout.mean(grads), layout.sum(metrics)
  metrics["grad_norm"] = optax.tree.norm(grads)
  if runtime is None:
    metrics["lr"] = jnp.asarray(lr_fn(state.step), jnp.float32)
    return state.apply_gradients(grads=grads), metrics
  unit_lr = jnp.asarray(lr_fn(state.step), jnp.float32)  # the schedule of lr 1
  metrics["lr"] = unit_lr * hp["lr"]
  return _apply_runtime_hparams(state, grads, hp, unit_lr, runtime), metrics


def _apply_runtime_hparams(state: TrainState, grads, hp: dict, unit_lr, runtime: RuntimeHparams) -> TrainState:
  """The optimizer chain of `optimizers.create_optimizer` with lr and weight decay taken from data."""
  kernels = jax.tree.map(lambda p: p.ndim >= 2, state.params)  # weight decay: kernels only, as optimizers._is_kernel
  decay = lambda tree: jax.tree.map(lambda g, p, k: g + hp["weight_decay"] * p if k else g, tree, state.params, kernels)  # noqa: E731
  if runtime.clip_norm is not None:
    grads, _ = optax.clip_by_global_norm(runtime.clip_norm).update(grads, optax.EmptyState())
  if not runtime.decoupled_weight_decay:
    grads = decay(grads)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  if runtime.decoupled_weight_decay:  # adamw: -lr * unit(step) * (adam direction + wd * p)
    updates = jax.tree.map(
      lambda u, p, k: u - unit_lr * hp["weight_decay"] * p if k else u, updates, state.params, kernels
    )
  updates = jax.tree.map(lambda u: hp["lr"] * u, updates)
  return state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state)


def epoch_indices(
  data_stream: jax.Array,
  epoch: jax.Array,
  sampler_stream: jax.Array | None = None,
  probabilities: jax.Array | None = None,
  *,
  num_examples: int,
  steps: int,
  batch_size: int,
):
  """[steps, batch_size] example indices of one epoch.

  Uniform: a permutation from the `data` stream. Oversampling (`probabilities` [n] given): draws with
  replacement from the `sampler` stream, as many as a uniform epoch uses, so an epoch keeps its
  length and the schedule its meaning. Keyed by the epoch number (not a carried key) so a resumed run
  sees the same order.
  """
  if probabilities is not None:
    key = rng.step_key(sampler_stream, epoch)
    drawn = jax.random.choice(key, num_examples, shape=(steps * batch_size,), replace=True, p=probabilities)
    return drawn.reshape(steps, batch_size)
  order = jax.random.permutation(rng.step_key(data_stream, epoch), num_examples)
  return order[: steps * batch_size].reshape(steps, batch_size)


def train_chunk(
  state: TrainState,
  inputs: jax.Array,
  labels: jax.Array,
  epoch_indices: jax.Array,
  offset: jax.Array,
  dropout_stream: jax.Array,
  augment_stream: jax.Array | None = None,
  *,
  num_steps: int,
  step_fn: Callable,
  augment_ops: tuple = (),
  unroll: int | bool = 1,
  layout: Layout = SINGLE,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """Steps `offset .. offset + num_steps` of an epoch, on data that stays on the device.

  `epoch_indices` [steps_per_epoch, batch] is the whole epoch's order and `offset` a traced int, so
  every chunk of an epoch reuses one executable (slicing with Python ints on the host would compile a
  new slice per offset). Metrics come back stacked [num_steps]. The dropout key of each step is
  fold_in(dropout_stream, state.step): independent of how steps are grouped into chunks. With
  `augment_ops`, each batch is augmented here, on the device, each example with the key
  fold_in(fold_in(augment_stream, step), position in the global batch): independent of chunking and of
  how a batch is split over devices, and two oversampled copies of one example draw differently.
  """
  indices = jax.lax.dynamic_slice_in_dim(epoch_indices, offset, num_steps)

  def body(state, idx):
    rows, positions = layout.local_rows(idx)  # pmap: this device's rows; else the whole global batch
    batch = {
      "inputs": jax.tree.map(lambda a: a[rows], inputs),
      "labels": labels[rows],
      "mask": jnp.ones(rows.shape, jnp.float32),
    }
    batch = layout.constrain(batch)
    if augment_ops:
      key = rng.step_key(augment_stream, state.step)
      batch["inputs"] = augment.augment_batch(key, batch["inputs"], augment_ops, positions)
    return step_fn(state, batch, rng.step_key(dropout_stream, state.step))

  if num_steps == 1:
    # No scan at all: even a one-trip scan stays an XLA while loop, and conv weight-gradients inside
    # one run ~5x slower on XLA:CPU (17.6 vs 3.3 ms for the digits CNN step, measured here).
    state, metrics = body(state, indices[0])
    return state, jax.tree.map(lambda m: m[None], metrics)
  return jax.lax.scan(body, state, indices, unroll=unroll)


def eval_step(
  state: TrainState,
  batch: Batch,
  *,
  loss_name: str,
  kind: str,
  focal_gamma: float = 2.0,
  num_classes: int | None = None,
  layout: Layout = SINGLE,
) -> dict[str, jax.Array]:
  """Metric sums of one padded, masked batch (this device's rows under pmap, summed over devices);
  with `num_classes`, also its confusion matrix [C, C]."""
  outputs = state.apply_fn({"params": state.params}, batch["inputs"], train=False)
  sums = losses.metric_sums(
    loss_name, kind, outputs=outputs, labels=batch["labels"], mask=batch["mask"], focal_gamma=focal_gamma
  )
  if num_classes is not None:
    sums["confusion"] = losses.confusion_sums(
      kind, outputs=outputs, labels=batch["labels"], mask=batch["mask"], num_classes=num_classes
    )
  if "group" in batch:  # data.group_feature: per-group sums (a classification problem; checked when data loads)
    labels, mask = batch["labels"], batch["mask"]
    groups = batch["group"]
    sums.update(
      group_metrics.group_sums(kind, outputs=outputs, labels=labels, mask=mask, groups=groups, num_classes=num_classes)
    )
  return layout.sum(sums)


def eval_chunk(
  state: TrainState, batches: Batch, *, eval_fn: Callable, layout: Layout = SINGLE
) -> dict[str, jax.Array]:
  """Sums over pre-batched eval data ([num_batches, batch, ...], padding masked out)."""

  def body(total, batch):
    sums = eval_fn(state, layout.local_batch(batch))
    return jax.tree.map(jnp.add, total, sums), None

  first = layout.local_batch(jax.tree.map(lambda x: x[0], batches))
  zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), jax.eval_shape(eval_fn, state, first))
  total, _ = jax.lax.scan(body, zeros, batches)
  return total


def train_epoch(
  state: TrainState,
  inputs: jax.Array,
  labels: jax.Array,
  eval_batches: Batch,
  streams: dict[str, jax.Array],
  probabilities: jax.Array | None,
  epoch: jax.Array,
  *,
  num_examples: int,
  steps: int,
  batch_size: int,
  step_fn: Callable,
  eval_fn: Callable,
  augment_ops: tuple = (),
  unroll: int | bool = 1,
  layout: Layout = SINGLE,
):
  """A whole epoch as one program: shuffle (or oversample), `steps` train steps (scan), evaluation.

  One dispatch and one host sync per epoch, which is what lets a small model beat a per-step loop.
  `streams`: the run's PRNG streams by name. Returns (state, train metrics stacked [steps], eval metric sums).
  """
  indices = epoch_indices(
    streams["data"],
    epoch,
    streams["sampler"],
    probabilities,
    num_examples=num_examples,
    steps=steps,
    batch_size=batch_size,
  )
  state, train_metrics = train_chunk(
    state,
    inputs,
    labels,
    indices,
    jnp.int32(0),
    streams["dropout"],
    streams["augment"],
    num_steps=steps,
    step_fn=step_fn,
    augment_ops=augment_ops,
    unroll=unroll,
    layout=layout,
  )
  return state, train_metrics, eval_chunk(state, eval_batches, eval_fn=eval_fn, layout=layout)


def layer_stats(
  state: TrainState, batch: Batch, *, loss_name: str, kind: str, focal_gamma: float = 2.0
) -> dict[str, jax.Array]:
  """Per-layer activation mean/std and gradient norm on one batch, in eval mode (no dropout).

  Activations are what the modules sow into `intermediates` (post-activation outputs, keyed by layer
  name); gradient norms are over each top-level layer's parameters. Names: `LAYER/act_mean`,
  `LAYER/act_std`, `LAYER/grad_norm`. What vanishing (tiny grad_norm in early layers) and saturation
  (sigmoid act_std near 0.5, act_mean near 0 or 1) look like.
  """

  def loss_fn(params):
    outputs, captured = state.apply_fn({"params": params}, batch["inputs"], train=False, mutable=["intermediates"])
    loss = losses.masked_mean_loss(
      loss_name, kind, outputs=outputs, labels=batch["labels"], mask=batch["mask"], focal_gamma=focal_gamma
    )
    return loss, captured.get("intermediates", {})

  (_, captured), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  stats = {}
  for path, activation in jax.tree_util.tree_flatten_with_path(captured)[0]:
    # Modules sow `LAYER_act` (a sown name may not equal a submodule's name).
    name = "/".join(str(p.key) for p in path if isinstance(p, jax.tree_util.DictKey)).removesuffix("_act")
    stats[f"{name}/act_mean"] = jnp.mean(activation)
    stats[f"{name}/act_std"] = jnp.std(activation)
  for layer, layer_grads in grads.items():
    stats[f"{layer}/grad_norm"] = optax.tree.norm(layer_grads)
  return stats
