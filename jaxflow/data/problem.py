"""The problem definition: what is predicted from what, resolved against the dataset that serves it.

`config.problem` states the kind (multiclass | binary | regression), the input shape, the classes and,
for a binary problem built from a multiclass label, which labels count as 1. `resolve_problem(config)`
reads the dataset's metadata (nothing is trained or computed) and returns the `Problem`: the kind, the
head width, the default loss and the metrics that follow, the split sizes after the config's subsets and
skew, and the model's input structure; or it raises a one-line ConfigError naming the field that does
not fit the dataset. `targets(problem, labels)` turns dataset labels into what the model is trained on.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from jaxflow.config import ConfigError, require_positive
from jaxflow.data import adapt, balance, holdout, label_noise, loading, registry
from jaxflow.data.subsets import select_examples

PROBLEM_KINDS = ("multiclass", "binary", "regression")
DEFAULT_LOSS = {"multiclass": "cross_entropy", "binary": "bce", "regression": "mse"}
# L1/L2 on a classification problem compare predicted probabilities with the one-hot target (the
# classic "MSE for classification"); cross-entropy has no meaning for a real-valued target.
COMPATIBLE_LOSSES = {
  "multiclass": ("cross_entropy", "focal", "mse", "mae"),
  "binary": ("bce", "focal", "mse", "mae"),
  "regression": ("mse", "mae"),
}
CLASSIFICATION_METRICS = ("loss", "accuracy", "balanced_accuracy", "macro_f1")
REGRESSION_METRICS = ("loss", "mae")


def metrics_of(kind: str) -> tuple[str, ...]:
  """The evaluation metrics measured for a problem kind (what `train.monitor` may watch)."""
  return REGRESSION_METRICS if kind == "regression" else CLASSIFICATION_METRICS


@dataclasses.dataclass(frozen=True)
class Problem:
  """What is predicted from what: the resolved `config.problem` plus what follows from it."""

  kind: str
  input_shape: tuple[int, ...]
  num_classes: int | None
  output_dim: int  # head width: num_classes logits, 1 logit (binary) or 1 value (regression)
  loss: str
  positive_labels: tuple[int, ...] | None  # binary built from a multiclass label
  train_size: int
  eval_size: int
  # The model's input as a pytree of ShapeDtypeStruct with batch 1: an array [1, *input_shape], or a dict
  # such as {"sequence": [1, T, F], "lengths": [1]} for variable-length sequences.
  input_structure: object = None
  dataset_classes: int | None = None  # the dataset's label classes (before a binary mapping): data.class_counts' length
  adaptation: adapt.Adaptation = adapt.Adaptation()  # data.adapt, checked against the dataset (identity when unset)
  # One name per target class (folder names, CSV labels, tfds ClassLabel names); None for regression.
  class_names: tuple[str, ...] | None = None
  feature_names: tuple[str, ...] | None = None  # a CSV's feature columns, for pictures of feature vectors

  @property
  def metrics(self) -> tuple[str, ...]:
    return metrics_of(self.kind)


def targets(problem: Problem, labels: np.ndarray) -> np.ndarray:
  """Dataset labels -> the problem's targets: binary from `positive_labels`, float for regression."""
  if problem.kind == "binary" and problem.positive_labels is not None:
    return np.isin(labels, problem.positive_labels).astype(np.int32)
  if problem.kind == "regression":
    return labels.astype(np.float32)
  return labels.astype(np.int32)


def dataset_error(error: loading.DatasetError) -> ConfigError:
  """The data layer names fields `data.x`; a config error says `config.data.x`."""
  message = str(error)
  return ConfigError(f"config.{message}" if message.startswith("data.") else message)


def read_spec(config: ml_collections.ConfigDict) -> loading.FeatureSpec:
  """What the configured dataset offers, from its metadata (a shipped dataset is prepared on first use)."""
  try:
    return registry.dataset_kind(config.data.name).spec(config.data)
  except loading.DatasetError as e:
    raise dataset_error(e) from None


def resolve_problem(config: ml_collections.ConfigDict) -> Problem:
  """The `Problem` of `config` on its dataset (adapted as `data.adapt` says), sizes after subsets and skew."""
  kind = registry.dataset_kind(config.data.name)
  spec, adaptation, original_classes = _adapted_spec(config, read_spec(config), kind)
  problem = _resolve(config, spec, kind)
  problem = dataclasses.replace(problem, adaptation=adaptation, input_structure=kind.input_structure(spec))
  problem = dataclasses.replace(
    problem, class_names=target_class_names(problem, spec.class_names), feature_names=spec.input_names
  )
  return _subset_sizes(config, problem, original_classes, kind)


def target_class_names(problem: Problem, dataset_names: tuple[str, ...] | None) -> tuple[str, ...] | None:
  """The name of each class the model predicts: the dataset's label names (a folder's sub-folders, a CSV's
  label strings, a tfds ClassLabel), "negative"/"positive" for a binary problem built from labels, "0".."K-1"
  when classes were merged (data.adapt.relabel) or the dataset has no names; None for regression."""
  if problem.kind == "regression" or problem.num_classes is None:
    return None
  if problem.kind == "binary":
    return ("negative", "positive")
  if dataset_names and problem.adaptation.relabel is None and len(dataset_names) == problem.num_classes:
    return tuple(str(n) for n in dataset_names)
  return tuple(str(i) for i in range(problem.num_classes))


def _split_sizes(config: ml_collections.ConfigDict, spec: loading.FeatureSpec, kind: registry.DatasetKind) -> dict:
  d = config.data
  if holdout.applies(d, spec, kind.stored):
    train, held = holdout.sizes(spec.split_sizes[d.train_split], d.holdout)
    return {d.train_split: train, d.eval_split: held}
  sizes = {}
  for split_field in ("train_split", "eval_split"):
    split = d[split_field]
    if split in spec.split_sizes:
      sizes[split] = spec.split_sizes[split]
    elif ("[" in split or "+" in split) and kind.stored:
      try:  # a tfds slice such as 'train[:80%]': checked, and sized, from the dataset's metadata
        field = f"config.data.{split_field}"
        sizes[split] = loading.split_size(d.name, split, split_field=field, **registry.read_options(d))
      except loading.DatasetError as e:
        raise dataset_error(e) from None
    else:
      first = next(iter(spec.split_sizes))
      single = not d.get("holdout", 0) and len(spec.split_sizes) == 1
      raise ConfigError(
        f"config.data.{split_field}={split!r} is not a split of {spec.name}; allowed: {', '.join(spec.split_sizes)}, "
        f"or a slice such as '{first}[:80%]' / '{first}[80%:]'"
        + (" (or data.holdout > 0, which holds out a share of the one split)" if single else "")
      )
  return sizes


def _classes(config: ml_collections.ConfigDict, spec: loading.FeatureSpec) -> tuple[int | None, tuple | None]:
  """(num_classes, positive_labels) of the problem on this dataset."""
  p, kind = config.problem, config.problem.kind
  if kind == "regression":
    if p.num_classes is not None:
      raise ConfigError(f"config.problem.num_classes={p.num_classes} is set for a regression problem; leave it None")
    return None, None
  if spec.num_classes is None:
    raise ConfigError(
      f"config.problem.kind={kind!r} needs a class label, but feature {spec.label_feature!r} of {spec.name!r} "
      "has no classes"
    )
  if kind == "multiclass":
    if p.num_classes is not None and p.num_classes != spec.num_classes:
      raise ConfigError(
        f"config.problem.num_classes={p.num_classes} does not fit dataset {spec.name!r}: "
        f"label {spec.label_feature!r} has {spec.num_classes} classes"
      )
    return spec.num_classes, None
  if p.positive_labels is None:
    if spec.num_classes != 2:
      raise ConfigError(
        f"config.problem.kind='binary' but {spec.name!r} has {spec.num_classes} classes; "
        "set config.problem.positive_labels to the labels that count as 1"
      )
    return 2, None
  positive = tuple(int(v) for v in p.positive_labels)
  if not positive or any(not 0 <= v < spec.num_classes for v in positive):
    raise ConfigError(f"config.problem.positive_labels={positive} must be labels in 0..{spec.num_classes - 1}")
  return 2, positive


def _resolve(config: ml_collections.ConfigDict, spec: loading.FeatureSpec, kind: registry.DatasetKind) -> Problem:
  """Checks the problem statement against what the dataset offers; says what differs."""
  p, d = config.problem, config.data
  if d.classes is not None and (not isinstance(d.classes, (tuple, list))):
    raise ConfigError(f"config.data.classes={d.classes!r} must be a tuple of labels")
  sizes = _split_sizes(config, spec, kind)
  if p.input_shape is not None and tuple(p.input_shape) != tuple(spec.input_shape):
    raise ConfigError(
      f"config.problem.input_shape={tuple(p.input_shape)} does not fit dataset {spec.name!r}: "
      f"feature {spec.input_feature!r} has shape {tuple(spec.input_shape)}"
    )
  num_classes, positive = _classes(config, spec)
  loss = config.loss or DEFAULT_LOSS[p.kind]
  if loss not in COMPATIBLE_LOSSES[p.kind]:
    raise ConfigError(
      f"config.loss={loss!r} does not fit problem.kind={p.kind!r}; allowed: {', '.join(COMPATIBLE_LOSSES[p.kind])}"
    )
  allowed = metrics_of(p.kind)
  if config.train.monitor.split("/")[1] not in allowed:
    raise ConfigError(
      f"config.train.monitor={config.train.monitor!r} is not measured for {p.kind}; "
      f"allowed: eval/{', eval/'.join(allowed)}"
    )
  _check_preparation(config, num_classes, spec, kind)
  return Problem(
    kind=p.kind,
    input_shape=tuple(spec.input_shape),
    num_classes=num_classes,
    output_dim=num_classes if p.kind == "multiclass" else 1,
    loss=loss,
    positive_labels=positive,
    train_size=sizes[d.train_split],
    eval_size=sizes[d.eval_split],
    dataset_classes=spec.num_classes,
  )


def _class_preparation_fields(config: ml_collections.ConfigDict) -> list[str]:
  """The class-based preparations the config asks for (imbalance, its remedies, label noise)."""
  d = config.data
  asked = (
    ("data.class_counts", d.class_counts is not None),
    ("data.imbalance_ratio", d.imbalance_ratio is not None),
    ("data.sampler", d.sampler != "uniform"),
    ("class_weights", config.class_weights != "none"),
    ("data.label_noise", d.label_noise.kind == "matrix" or d.label_noise.rate > 0),
  )
  return [field for field, on in asked if on]


def _check_preparation(config, num_classes: int | None, spec: loading.FeatureSpec, kind: registry.DatasetKind) -> None:
  """Imbalance, label noise and augmentation settings that cannot apply to this problem or dataset."""
  d = config.data
  asked = _class_preparation_fields(config)
  if asked and not kind.class_preparation:
    raise ConfigError(
      f"config.{asked[0]} is not supported for {kind.name} datasets ({d.name!r}); it applies to array datasets"
    )
  if asked and config.problem.kind == "regression":
    raise ConfigError(
      f"config.{asked[0]} is set for a regression problem; it needs class labels (problem.kind multiclass or binary)"
    )
  if d.label_noise.kind == "matrix" or d.label_noise.rate > 0:
    try:
      label_noise.transition_matrix(
        num_classes, kind=d.label_noise.kind, rate=d.label_noise.rate, matrix=d.label_noise.matrix
      )
    except label_noise.LabelNoiseError as e:
      raise ConfigError(f"config.{e}") from None
  if d.augment and (not kind.stored or len(spec.input_shape) != 3):
    raise ConfigError(
      f"config.data.augment needs image inputs [height, width, channels]; {spec.name!r} feature "
      f"{spec.input_feature!r} has shape {tuple(spec.input_shape)}"
    )


def _adapted_spec(config: ml_collections.ConfigDict, spec: loading.FeatureSpec, kind: registry.DatasetKind):
  """(the spec as the problem sees it after `data.adapt`, the adaptation, the dataset's own class count)."""
  d = config.data
  if not kind.stored:
    a = d.adapt
    if a.resize is not None or a.grayscale or a.relabel is not None:
      raise ConfigError(
        f"config.data.adapt is set, but {d.name!r} is a {kind.name} dataset; "
        "it applies to tfds and your own array datasets"
      )
    return spec, adapt.Adaptation(), spec.num_classes
  adaptation = adapt.from_config(d, num_classes=spec.num_classes, input_shape=spec.input_shape, dataset=spec.name)
  adapted = dataclasses.replace(
    spec, input_shape=adaptation.input_shape(spec.input_shape), num_classes=adaptation.num_classes(spec.num_classes)
  )
  return adapted, adaptation, spec.num_classes


def _subset_sizes(config, problem: Problem, original_classes: int | None, kind: registry.DatasetKind) -> Problem:
  """Split sizes after `data.classes` / `data.train_examples`, `data.adapt.relabel`'s dropped classes and
  the class skew (reads the labels; nothing is computed)."""
  d = config.data
  skewed = d.class_counts is not None or d.imbalance_ratio is not None
  relabel = problem.adaptation.relabel
  if d.classes is None and d.train_examples is None and not skewed and relabel is None:
    return problem
  if d.classes is not None:
    classes = tuple(d.classes)
    if not classes or not all(isinstance(c, int) and 0 <= c < (original_classes or 0) for c in classes):
      raise ConfigError(f"config.data.classes={classes} must be dataset labels in 0..{(original_classes or 1) - 1}")
  if d.train_examples is not None:
    require_positive(config, "data.train_examples")
  if not kind.stored:
    if d.classes is not None:
      raise ConfigError(f"config.data.classes is set, but {d.name!r} is a generated regression set without classes")
    return dataclasses.replace(problem, train_size=min(problem.train_size, d.train_examples))
  sizes = {}
  # The splits as training reads them (a held-out eval split included): their labels decide the sizes.
  loaded = dict(zip((d.train_split, d.eval_split), kind.load_splits(config, None), strict=True))
  for split, limit in ((d.train_split, d.train_examples), (d.eval_split, None)):
    labels = loaded[split].labels
    labels = labels[select_examples(labels, classes=d.classes, limit=limit)]
    labels = problem.adaptation.labels(labels)[1]
    sizes[split] = len(labels)
    if sizes[split] == 0:
      asked = (("config.data.classes", d.classes is not None), ("config.data.adapt.relabel", relabel is not None))
      raise ConfigError(f"{', '.join(f for f, on in asked if on)} leave(s) split {split!r} empty")
    if skewed and split == d.train_split:
      try:
        counts = balance.requested_counts(
          labels, problem.dataset_classes, class_counts=d.class_counts, imbalance_ratio=d.imbalance_ratio
        )
      except balance.ImbalanceError as e:
        raise ConfigError(f"config.{e}") from None
      sizes[split] = int(counts.sum())
  return dataclasses.replace(problem, train_size=sizes[d.train_split], eval_size=sizes[d.eval_split])
