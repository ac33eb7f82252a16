"""The data as training sees it, on the host: one pipeline for training, the audit, explain and the profiler.

Order matters and is fixed: the splits (read from disk, or generated from the `data` stream) -> class
subset / size limit (`data.classes`, `data.train_examples`) -> adaptation (`data.adapt`) -> skew of the
training split (`data.class_counts` / `data.imbalance_ratio`, the `data` stream) -> standardization
(`data.standardize`, fitted on that training split, applied to both) -> the problem's targets -> label noise
(the `noise` stream) -> class weights and oversampling probabilities, computed from the targets the model will
see. Evaluation data is never skewed, noised or augmented.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
import numpy as np

from jaxflow import rng
from jaxflow.data import adapt, balance, groups, registry, standardize
from jaxflow.data import label_noise as label_noise_lib
from jaxflow.data.loading import Split
from jaxflow.data.problem import Problem, targets
from jaxflow.data.subsets import select_examples


@dataclasses.dataclass(frozen=True)
class PreparedData:
  """Both splits after every preparation, host arrays."""

  train: Split  # inputs and dataset labels (and metadata) after subset, adaptation and skew
  eval: Split  # after subset and adaptation
  train_targets: np.ndarray  # [n_train] the problem's targets, noisy when label noise is on
  eval_targets: np.ndarray  # [n_eval]
  label_noise: label_noise_lib.NoisyLabels | None = None  # clean and noisy training targets, for the workdir
  class_weights: tuple[float, ...] | None = None  # [C] loss weights (a static constant of the train step)
  sample_probabilities: np.ndarray | None = None  # [n_train] per-example draw probabilities (oversampling)
  standardization: standardize.Standardization | None = None  # fitted on `train`, applied to both splits
  group_names: tuple[str, ...] | None = None  # `data.group_feature`'s groups (jaxflow/data/groups.py)
  eval_groups: np.ndarray | None = None  # [n_eval, G] one-hot group of each evaluation example


def take(split: Split, keep: np.ndarray) -> Split:
  """The examples `keep` of a split (inputs, labels and metadata rows)."""
  metadata = {name: values[keep] for name, values in split.metadata.items()}
  return Split(inputs=jax.tree.map(lambda a: a[keep], split.inputs), labels=split.labels[keep], metadata=metadata)


def subset(split: Split, classes, limit) -> Split:
  if classes is None and limit is None:
    return split
  return take(split, select_examples(split.labels, classes=classes, limit=limit))


def load_splits(
  config: ml_collections.ConfigDict, data_stream: jax.Array, adaptation: adapt.Adaptation = adapt.Adaptation()
) -> tuple[Split, Split]:
  """(train, eval) on the host, as the dataset kind reads them; `data.classes` / `data.train_examples`,
  then `adaptation` (`Problem.adaptation`, i.e. `data.adapt`) applied."""
  d = config.data
  train, evaluation = registry.dataset_kind(d.name).load_splits(config, data_stream)
  train, evaluation = subset(train, d.classes, d.train_examples), subset(evaluation, d.classes, None)
  return adapt.apply(train, adaptation), adapt.apply(evaluation, adaptation)


def skew(split: Split, config: ml_collections.ConfigDict, num_classes: int | None, data_stream: jax.Array) -> Split:
  """The training split with `data.class_counts` / `data.imbalance_ratio` applied (dataset classes)."""
  d = config.data
  if d.class_counts is None and d.imbalance_ratio is None:
    return split
  counts = balance.requested_counts(
    split.labels, num_classes, class_counts=d.class_counts, imbalance_ratio=d.imbalance_ratio
  )
  return take(split, balance.skewed_subset(split.labels, counts, rng.derived_seed(data_stream, "class_counts")))


def noisy_labels(config: ml_collections.ConfigDict, problem: Problem, labels: np.ndarray, noise_stream: jax.Array):
  """`data.label_noise` applied to the problem's training targets, or None when it is off."""
  noise = config.data.label_noise
  if problem.num_classes is None or (noise.kind != "matrix" and noise.rate == 0):
    return None
  transition = label_noise_lib.transition_matrix(
    problem.num_classes, kind=noise.kind, rate=noise.rate, matrix=noise.matrix
  )
  return label_noise_lib.corrupt(labels, transition, rng.derived_seed(noise_stream, "label_noise"))


def prepare(config: ml_collections.ConfigDict, problem: Problem, streams: dict[str, jax.Array]) -> PreparedData:
  """Both splits as the model will see them (see the module docstring for the order)."""
  train, evaluation = load_splits(config, streams["data"], problem.adaptation)
  train = skew(train, config, problem.dataset_classes, streams["data"])
  scaling = None
  if not isinstance(train.inputs, dict) and standardize.wanted(config.data, problem.input_shape):
    scaling = standardize.fit(train.inputs)
    train = dataclasses.replace(train, inputs=scaling.apply(train.inputs))
    evaluation = dataclasses.replace(evaluation, inputs=scaling.apply(evaluation.inputs))
  train_targets = targets(problem, train.labels)
  noise = noisy_labels(config, problem, train_targets, streams["noise"])
  train_targets = train_targets if noise is None else noise.noisy
  weights, probabilities = None, None
  if problem.num_classes is not None and config.class_weights != "none":
    weighting = balance.class_weights(
      train_targets, problem.num_classes, config.class_weights, beta=config.class_weights_beta
    )
    weights = tuple(float(w) for w in weighting)
  if problem.num_classes is not None and config.data.sampler == "oversample":
    probabilities = balance.oversample_probabilities(train_targets, problem.num_classes)
  group_names, eval_groups = None, None
  if config.data.get("group_feature"):
    groups.check(config.data, kind=problem.kind, graphs=False)
    group_names, eval_groups = groups.eval_groups(evaluation.metadata, config.data.group_feature)
  return PreparedData(
    train=train,
    eval=evaluation,
    train_targets=train_targets,
    eval_targets=targets(problem, evaluation.labels),
    label_noise=noise,
    class_weights=weights,
    sample_probabilities=probabilities,
    standardization=scaling,
    group_names=group_names,
    eval_groups=eval_groups,
  )


def data_key(config: ml_collections.ConfigDict, streams: dict[str, jax.Array]) -> tuple:
  """Which streams decide the prepared data: the `data` stream when the dataset is generated or skewed,
  the `noise` stream when labels are noised. Runs with equal keys can share one copy of the data."""
  d = config.data
  uses_data = registry.dataset_kind(d.name).generated or d.class_counts is not None or d.imbalance_ratio is not None
  uses_noise = d.label_noise.kind == "matrix" or d.label_noise.rate > 0

  def key(k):
    return tuple(np.asarray(jax.random.key_data(k)).ravel().tolist())

  return (key(streams["data"]) if uses_data else None, key(streams["noise"]) if uses_noise else None)
