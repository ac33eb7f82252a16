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
from jaxflow import rng
from jaxflow.data import adapt, balance, synthetic
from jaxflow.data import label_noise as label_noise_lib
from jaxflow.training.validate import Problem


@dataclasses.dataclass(frozen=True)
class DeviceData:
  train_inputs: object  # [n_train, *input_shape] float32, or a pytree of such arrays (e.g. sequence + lengths)
  train_labels: jax.Array  # [n_train] int32 (classification) or float32 (regression); noisy if label noise is on
  eval_batches: dict[str, jax.Array]  # inputs [nb, b, *input_shape], labels [nb, b], mask [nb, b]
  sample_probabilities: jax.Array | None = None  # [n_train] per-example draw probabilities (oversampling)
  class_weights: tuple[float, ...] | None = None  # [C] loss weights (a static constant of the train step)
  label_noise: label_noise_lib.NoisyLabels | None = None  # clean and noisy training labels, for the workdir


def problem_labels(problem: Problem, labels: np.ndarray) -> np.ndarray:
  """Dataset labels -> the problem's targets: binary from `positive_labels`, float for regression."""
  if problem.kind == "binary" and problem.positive_labels is not None:
    return np.isin(labels, problem.positive_labels).astype(np.int32)
  if problem.kind == "regression":
    return labels.astype(np.float32)
  return labels.astype(np.int32)


def pad_and_batch(inputs, labels: np.ndarray, batch_size: int) -> dict:
  """[n, ...] -> [ceil(n / b), b, ...] with zero padding and a mask, so no example is dropped.

  `inputs` is an array or a pytree of arrays sharing the leading example axis.
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
  }


def subset(split: data_lib.Split, classes, limit) -> data_lib.Split:
  if classes is None and limit is None:
    return split
  keep = data_lib.select_examples(split.labels, classes=classes, limit=limit)
  metadata = {name: values[keep] for name, values in split.metadata.items()}
  return data_lib.Split(
    inputs=jax.tree.map(lambda a: a[keep], split.inputs), labels=split.labels[keep], metadata=metadata
  )


def load_splits(
  config: ml_collections.ConfigDict, data_stream: jax.Array, adaptation: adapt.Adaptation = adapt.Adaptation()
) -> tuple[data_lib.Split, data_lib.Split]:
  """(train, eval) on the host: a tfds dataset read from disk, or a generated one drawn from `data_stream`;
  `data.classes` / `data.train_examples`, then `adaptation` (`Problem.adaptation`, i.e. `data.adapt`) applied."""
  d = config.data
  if d.name in synthetic.GENERATED:
    splits = synthetic.GENERATED[d.name].generate(rng.dataset_seed(data_stream))
    train, evaluation = splits[d.train_split], splits[d.eval_split]
  else:
    read = dict(
      data_dir=d.data_dir,
      input_feature=d.input_feature,
      label_feature=d.label_feature,
      metadata_features=tuple(d.metadata_features),
    )
    train, evaluation = (
      data_lib.load_split(d.name, d.train_split, **read),
      data_lib.load_split(d.name, d.eval_split, **read),
    )
  train, evaluation = subset(train, d.classes, d.train_examples), subset(evaluation, d.classes, None)
  return adapt.apply(train, adaptation), adapt.apply(evaluation, adaptation)


def skew(
  split: data_lib.Split, config: ml_collections.ConfigDict, num_classes: int | None, data_stream: jax.Array
) -> data_lib.Split:
  """The training split with `data.class_counts` / `data.imbalance_ratio` applied (dataset classes)."""
  d = config.data
  if d.class_counts is None and d.imbalance_ratio is None:
    return split
  counts = balance.requested_counts(
    split.labels, num_classes, class_counts=d.class_counts, imbalance_ratio=d.imbalance_ratio
  )
  keep = balance.skewed_subset(split.labels, counts, rng.derived_seed(data_stream, "class_counts"))
  return data_lib.Split(inputs=jax.tree.map(lambda a: a[keep], split.inputs), labels=split.labels[keep])


def noisy_labels(config: ml_collections.ConfigDict, problem: Problem, labels: np.ndarray, noise_stream: jax.Array):
  """`data.label_noise` applied to the problem's training labels, or None when it is off."""
  noise = config.data.label_noise
  if noise.kind != "matrix" and noise.rate == 0:
    return None
  transition = label_noise_lib.transition_matrix(
    problem.num_classes, kind=noise.kind, rate=noise.rate, matrix=noise.matrix
  )
  return label_noise_lib.corrupt(labels, transition, rng.derived_seed(noise_stream, "label_noise"))


def load_device_data(
  config: ml_collections.ConfigDict,
  problem: Problem,
  streams: dict[str, jax.Array],
  *,
  num_devices: int = 1,
  place=None,
) -> DeviceData:
  """Both splits on the device; the training split skewed, noised and weighted as the config says.

  Order matters and is fixed: class subset / size limit -> skew (the `data` stream) -> the problem's
  labels -> label noise (the `noise` stream) -> class weights and oversampling probabilities, computed
  from the labels the model will see. Evaluation data is never skewed, noised or augmented.
  `place` puts host arrays on the device(s) (`Layout.place`: replicated over the mesh); the eval batch
  is padded to a multiple of `num_devices`.
  """
  train, evaluation = load_splits(config, streams["data"], problem.adaptation)
  train = skew(train, config, problem.dataset_classes, streams["data"])
  eval_batch = min(config.train.eval_batch_size, evaluation.labels.shape[0])
  eval_batch = -(-eval_batch // num_devices) * num_devices  # every device gets an equal share (padding is masked)
  eval_batches = pad_and_batch(evaluation.inputs, problem_labels(problem, evaluation.labels), eval_batch)
  train_labels = problem_labels(problem, train.labels)
  noise, weights, probabilities = None, None, None
  if problem.num_classes is not None:
    noise = noisy_labels(config, problem, train_labels, streams["noise"])
    train_labels = train_labels if noise is None else noise.noisy
    if config.class_weights != "none":
      weights = tuple(
        float(w)
        for w in balance.class_weights(
          train_labels, problem.num_classes, config.class_weights, beta=config.class_weights_beta
        )
      )
    if config.data.sampler == "oversample":
      probabilities = jnp.asarray(balance.oversample_probabilities(train_labels, problem.num_classes))
  place = place or (lambda tree: jax.tree.map(jnp.asarray, tree))
  return DeviceData(
    train_inputs=place(train.inputs),
    train_labels=place(train_labels),
    eval_batches=place(eval_batches),
    sample_probabilities=None if probabilities is None else place(probabilities),
    class_weights=weights,
    label_noise=noise,
  )
