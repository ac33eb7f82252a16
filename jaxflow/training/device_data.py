"""Puts a dataset's splits on the device in the shapes the jitted steps expect.

The datasets jaxflow trains on here are small enough to live on the device whole: the training loop
then gathers each batch by index inside the jitted step (no host->device copy per step), and the
epoch's shuffle order is a permutation drawn on the device from the `data` stream.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxflow import data as data_lib
from jaxflow.training.validate import Problem


@dataclasses.dataclass(frozen=True)
class DeviceData:
  train_inputs: jax.Array  # [n_train, *input_shape] float32
  train_labels: jax.Array  # [n_train] int32 (classification) or float32 (regression)
  eval_batches: dict[str, jax.Array]  # inputs [nb, b, *input_shape], labels [nb, b], mask [nb, b]


def problem_labels(problem: Problem, labels: np.ndarray) -> np.ndarray:
  """Dataset labels -> the problem's targets: binary from `positive_labels`, float for regression."""
  if problem.kind == "binary" and problem.positive_labels is not None:
    return np.isin(labels, problem.positive_labels).astype(np.int32)
  if problem.kind == "regression":
    return labels.astype(np.float32)
  return labels.astype(np.int32)


def pad_and_batch(inputs: np.ndarray, labels: np.ndarray, batch_size: int) -> dict[str, np.ndarray]:
  """[n, ...] -> [ceil(n / b), b, ...] with zero padding and a mask, so no example is dropped."""
  n = inputs.shape[0]
  num_batches = -(-n // batch_size)
  pad = num_batches * batch_size - n
  mask = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
  inputs = np.concatenate([inputs, np.zeros((pad, *inputs.shape[1:]), inputs.dtype)])
  labels = np.concatenate([labels, np.zeros(pad, labels.dtype)])
  shape = (num_batches, batch_size)
  return {"inputs": inputs.reshape(*shape, *inputs.shape[1:]), "labels": labels.reshape(shape), "mask": mask.reshape(shape)}


def subset(split: data_lib.Split, classes, limit) -> data_lib.Split:
  if classes is None and limit is None:
    return split
  keep = data_lib.select_examples(split.labels, classes=classes, limit=limit)
  return data_lib.Split(inputs=split.inputs[keep], labels=split.labels[keep])


def load_device_data(config: ml_collections.ConfigDict, problem: Problem) -> DeviceData:
  d = config.data
  read = dict(data_dir=d.data_dir, input_feature=d.input_feature, label_feature=d.label_feature)
  train = subset(data_lib.load_split(d.name, d.train_split, **read), d.classes, d.train_examples)
  evaluation = subset(data_lib.load_split(d.name, d.eval_split, **read), d.classes, None)
  eval_batch = min(config.train.eval_batch_size, evaluation.inputs.shape[0])
  eval_batches = pad_and_batch(evaluation.inputs, problem_labels(problem, evaluation.labels), eval_batch)
  return DeviceData(
      train_inputs=jnp.asarray(train.inputs, jnp.float32),
      train_labels=jnp.asarray(problem_labels(problem, train.labels)),
      eval_batches={k: jnp.asarray(v) for k, v in eval_batches.items()},
  )
