"""Prepared array data on the device, in the shapes the jitted steps expect.

The array datasets jaxflow trains on are small enough to live on the device whole: the training loop
gathers each batch by index inside the jitted step (no host->device copy per step), and the epoch's
shuffle order is a permutation drawn on the device from the `data` stream. Evaluation batches are padded
to a whole number of batches with a mask, so every evaluation example counts exactly once.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from jaxflow.data import label_noise as label_noise_lib
from jaxflow.data.pipeline import PreparedData
from jaxflow.data.standardize import Standardization


@dataclasses.dataclass(frozen=True)
class DeviceData:
  train_inputs: object  # [n_train, *input_shape] float32, or a pytree of such arrays (e.g. sequence + lengths)
  train_labels: jax.Array  # [n_train] int32 (classification) or float32 (regression); noisy if label noise is on
  eval_batches: dict[str, jax.Array]  # inputs [nb, b, *input_shape], labels [nb, b], mask [nb, b]
  sample_probabilities: jax.Array | None = None  # [n_train] per-example draw probabilities (oversampling)
  class_weights: tuple[float, ...] | None = None  # [C] loss weights (a static constant of the train step)
  label_noise: label_noise_lib.NoisyLabels | None = None  # clean and noisy training labels, for the workdir
  standardization: Standardization | None = None  # the feature scaling applied (stored in the workdir)
  group_names: tuple[str, ...] | None = None  # eval_batches["group"]'s columns (data.group_feature)


def pad_and_batch(inputs, labels: np.ndarray, batch_size: int, groups: np.ndarray | None = None) -> dict:
  """[n, ...] -> [ceil(n / b), b, ...] with zero padding and a mask, so no example is dropped.

  `inputs` is an array or a pytree of arrays sharing the leading example axis; `groups` ([n, G] one-hot)
  comes along as `group` (padding rows belong to no group).
  """
  n = labels.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n

  def batched(a: np.ndarray) -> np.ndarray:
    a = np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)])
    return a.reshape(num_batches, batch_size, *a.shape[1:])

  mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  return {
    "inputs": jax.tree.map(batched, inputs),
    "labels": batched(labels),
    "mask": mask.reshape(num_batches, batch_size),
    **({} if groups is None else {"group": batched(groups)}),
  }


def to_device(prepared: PreparedData, *, eval_batch_size: int, num_devices: int = 1, place=None) -> DeviceData:
  """Both prepared splits on the device. `place` puts host arrays on the device(s) (`Layout.place`:
  replicated over the mesh); the eval batch is padded to a multiple of `num_devices`."""
  eval_batch = min(eval_batch_size, prepared.eval_targets.shape[0])
  eval_batch = -(-eval_batch // num_devices) * num_devices  # every device gets an equal share (padding is masked)
  eval_batches = pad_and_batch(prepared.eval.inputs, prepared.eval_targets, eval_batch, prepared.eval_groups)
  # jax.device_put, not jnp.asarray: in jax 0.10 jnp.asarray of a numpy array binds `stage`, which compiles a
  # small program per shape and dtype outside a trace (six here, ~0.1-0.2 s of every process's start).
  place = place or jax.device_put
  probabilities = prepared.sample_probabilities
  return DeviceData(
    train_inputs=place(prepared.train.inputs),
    train_labels=place(prepared.train_targets),
    eval_batches=place(eval_batches),
    sample_probabilities=None if probabilities is None else place(np.asarray(probabilities)),
    class_weights=prepared.class_weights,
    label_noise=prepared.label_noise,
    standardization=prepared.standardization,
    group_names=prepared.group_names,
  )
