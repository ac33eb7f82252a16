"""Checks a training config against the registries and the dataset before anything is computed.

`validate(config)` either returns the resolved `Problem` (the head size, loss and metrics that follow
from `config.problem` and the dataset) or raises a one-line ConfigError naming the field, the value and
what is allowed. Nothing is written to the workdir before it passes.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from jaxflow import data as data_lib
from jaxflow import models
from jaxflow.config import ConfigError, get_field, require_choice, require_positive, require_type
from jaxflow.data import adapt, augment, balance, label_noise, synthetic
from jaxflow.models import initializers
from jaxflow.training import graph_data, losses, optimizers, parallel, transfer

MONITOR_METRICS = ("eval/accuracy", "eval/balanced_accuracy", "eval/macro_f1", "eval/loss", "eval/mae")
CLASSIFICATION_METRICS = ("loss", "accuracy", "balanced_accuracy", "macro_f1")


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

  @property
  def metrics(self) -> tuple[str, ...]:
    return ("loss", "mae") if self.kind == "regression" else CLASSIFICATION_METRICS


def _check_fields(config: ml_collections.ConfigDict) -> None:
  require_type(config, "seed", int)
  for name in config.seeds.keys():
    if config.seeds[name] is not None:
      require_type(config, f"seeds.{name}", int)
  require_choice(config, "problem.kind", losses.PROBLEM_KINDS)
  require_choice(config, "model.name", models.MODELS)
  require_choice(config, "model.activation", models.ACTIVATIONS)
  for field in ("model.widths", "model.conv_features"):
    value = get_field(config, field)
    if not isinstance(value, (tuple, list)) or not all(
      isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value
    ):
      raise ConfigError(f"config.{field}={value!r} must be a tuple of positive ints, e.g. (256, 256)")
  require_positive(config, "model.kernel_size")
  rate = require_type(config, "model.dropout_rate", (int, float))
  if not 0 <= rate < 1:
    raise ConfigError(f"config.model.dropout_rate={rate!r} must be in [0, 1)")
  inits = models.layer_inits(config.model)
  for field, spec in (("kernel_init", inits.kernel), ("bias_init", inits.bias)):
    try:
      initializers.parse(spec)
    except initializers.InitializerError as e:
      raise ConfigError(f"config.model.{field}={spec!r}: {e}") from None
  try:
    inits.check()
  except initializers.InitializerError as e:
    raise ConfigError(f"config.model.layer_inits: {e}") from None
  if config.loss is not None:
    require_choice(config, "loss", losses.LOSS_NAMES)
  require_positive(config, "focal_gamma", float, allow_zero=True)
  require_choice(config, "class_weights", balance.WEIGHTINGS)
  beta = require_type(config, "class_weights_beta", (int, float))
  if not 0 < beta < 1:
    raise ConfigError(f"config.class_weights_beta={beta!r} must be in (0, 1), e.g. 0.999")
  require_choice(config, "data.sampler", balance.SAMPLERS)
  require_choice(config, "data.label_noise.kind", label_noise.NOISE_KINDS)
  rate = require_type(config, "data.label_noise.rate", (int, float))
  if not 0 <= rate <= 1:
    raise ConfigError(f"config.data.label_noise.rate={rate!r} must be in [0, 1]")
  for field in ("data.metadata_features", "data.augment"):
    value = get_field(config, field)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
      raise ConfigError(f"config.{field}={value!r} must be a tuple of strings")
  augment.parse_augment(tuple(config.data.augment), "config.data.augment")
  check_parallel_fields(config)
  require_choice(config, "optim.name", optimizers.OPTIMIZER_NAMES)
  require_choice(config, "optim.schedule", optimizers.SCHEDULE_NAMES)
  require_positive(config, "optim.lr", float)
  require_positive(config, "optim.momentum", float, allow_zero=True)
  require_positive(config, "optim.weight_decay", float, allow_zero=True)
  if config.optim.clip_norm is not None:
    require_positive(config, "optim.clip_norm", float)
  require_positive(config, "optim.warmup_steps", allow_zero=True)
  require_positive(config, "optim.decay_rate", float)
  if config.optim.decay_steps is not None:
    require_positive(config, "optim.decay_steps")
  require_positive(config, "optim.end_lr_factor", float, allow_zero=True)
  for field in (
    "train.batch_size",
    "train.eval_batch_size",
    "train.epochs",
    "train.log_every",
    "train.histogram_every",
    "train.class_report_every",
  ):
    require_positive(config, field)
  require_positive(config, "train.layer_stats_every", allow_zero=True)
  if config.train.steps_per_dispatch is not None:
    require_positive(config, "train.steps_per_dispatch")
  require_type(config, "train.overwrite", bool)
  require_type(config, "train.early_stopping.enabled", bool)
  require_choice(config, "train.monitor", MONITOR_METRICS)
  require_choice(config, "train.monitor_mode", ("max", "min"))
  require_positive(config, "train.early_stopping.patience")
  require_positive(config, "train.early_stopping.min_delta", float, allow_zero=True)
  require_type(config, "train.early_stopping.restore_best", bool)
  require_positive(config, "checkpoint.every_epochs", allow_zero=True)
  if config.checkpoint.every_seconds is not None:
    require_positive(config, "checkpoint.every_seconds", float)
  require_positive(config, "checkpoint.keep")


def _resolve_problem(config: ml_collections.ConfigDict, spec: data_lib.FeatureSpec) -> Problem:
  """Checks the problem statement against what the dataset offers; says what differs."""
  p, d = config.problem, config.data
  if d.classes is not None and (not isinstance(d.classes, (tuple, list))):
    raise ConfigError(f"config.data.classes={d.classes!r} must be a tuple of labels")
  sizes = {}
  for split_field in ("train_split", "eval_split"):
    split = d[split_field]
    if split in spec.split_sizes:
      sizes[split] = spec.split_sizes[split]
    elif (
      ("[" in split or "+" in split) and d.name not in synthetic.GENERATED and d.name not in graph_data.GRAPH_DATASETS
    ):
      read = dict(
        data_dir=d.data_dir,
        input_feature=d.input_feature,
        label_feature=d.label_feature,
        metadata_features=tuple(d.metadata_features),
      )
      try:  # a tfds slice such as 'train[:80%]': load_split checks it, and its length is the size
        sizes[split] = len(data_lib.load_split(d.name, split, split_field=f"config.data.{split_field}", **read).labels)
      except data_lib.DatasetError as e:
        raise ConfigError(f"config.{e}" if str(e).startswith("data.") else str(e)) from None
    else:
      raise ConfigError(
        f"config.data.{split_field}={split!r} is not a split of {spec.name}; allowed: {', '.join(spec.split_sizes)}"
      )
  if p.input_shape is not None and tuple(p.input_shape) != tuple(spec.input_shape):
    raise ConfigError(
      f"config.problem.input_shape={tuple(p.input_shape)} does not fit dataset {spec.name!r}: "
      f"feature {spec.input_feature!r} has shape {tuple(spec.input_shape)}"
    )
  kind = p.kind
  if kind == "regression" and p.num_classes is not None:
    raise ConfigError(f"config.problem.num_classes={p.num_classes} is set for a regression problem; leave it None")
  num_classes = None
  positive = None
  if kind in ("multiclass", "binary"):
    if spec.num_classes is None:
      raise ConfigError(
        f"config.problem.kind={kind!r} needs a class label, but feature {spec.label_feature!r} of {spec.name!r} has no classes"
      )
    num_classes = spec.num_classes
    if kind == "multiclass" and p.num_classes is not None and p.num_classes != spec.num_classes:
      raise ConfigError(
        f"config.problem.num_classes={p.num_classes} does not fit dataset {spec.name!r}: "
        f"label {spec.label_feature!r} has {spec.num_classes} classes"
      )
    if kind == "binary":
      if p.positive_labels is not None:
        positive = tuple(int(v) for v in p.positive_labels)
        bad = [v for v in positive if not 0 <= v < spec.num_classes]
        if bad or not positive:
          raise ConfigError(f"config.problem.positive_labels={positive} must be labels in 0..{spec.num_classes - 1}")
      elif spec.num_classes != 2:
        raise ConfigError(
          f"config.problem.kind='binary' but {spec.name!r} has {spec.num_classes} classes; "
          "set config.problem.positive_labels to the labels that count as 1"
        )
      num_classes = 2
  loss = config.loss or losses.DEFAULT_LOSS[kind]
  if loss not in losses.COMPATIBLE_LOSSES[kind]:
    raise ConfigError(
      f"config.loss={loss!r} does not fit problem.kind={kind!r}; allowed: {', '.join(losses.COMPATIBLE_LOSSES[kind])}"
    )
  output_dim = num_classes if kind == "multiclass" else 1
  monitor = config.train.monitor
  allowed = ("loss", "mae") if kind == "regression" else CLASSIFICATION_METRICS
  if monitor.split("/")[1] not in allowed:
    raise ConfigError(
      f"config.train.monitor={monitor!r} is not measured for {kind}; allowed: eval/{', eval/'.join(allowed)}"
    )
  _check_data_preparation(config, kind, num_classes, spec)
  generator = synthetic.GENERATED.get(d.name)
  if generator:
    structure = generator.input_structure()
  elif d.name in graph_data.GRAPH_DATASETS:
    structure = graph_data.input_structure(d.name)
  else:
    structure = jax.ShapeDtypeStruct((1, *spec.input_shape), jnp.float32)
  return Problem(
    input_structure=structure,
    kind=kind,
    input_shape=tuple(spec.input_shape),
    num_classes=num_classes,
    output_dim=output_dim,
    loss=loss,
    positive_labels=positive,
    train_size=sizes[d.train_split],
    eval_size=sizes[d.eval_split],
    dataset_classes=spec.num_classes,
  )


def _check_data_preparation(
  config: ml_collections.ConfigDict, kind: str, num_classes: int | None, spec: data_lib.FeatureSpec
) -> None:
  """Imbalance, label noise and augmentation settings that cannot apply to this problem or dataset."""
  d = config.data
  if d.name in graph_data.GRAPH_DATASETS:
    asked = [
      f
      for f, on in (
        ("data.class_counts", d.class_counts is not None),
        ("data.imbalance_ratio", d.imbalance_ratio is not None),
        ("data.sampler", d.sampler != "uniform"),
        ("class_weights", config.class_weights != "none"),
        ("data.label_noise", d.label_noise.kind == "matrix" or d.label_noise.rate > 0),
      )
      if on
    ]
    if asked:
      raise ConfigError(
        f"config.{asked[0]} is not supported for graph datasets ({d.name!r}); it applies to array datasets"
      )
  if kind == "regression":
    asked = [
      field
      for field, on in (
        ("data.class_counts", d.class_counts is not None),
        ("data.imbalance_ratio", d.imbalance_ratio is not None),
        ("data.sampler", d.sampler != "uniform"),
        ("class_weights", config.class_weights != "none"),
        ("data.label_noise", d.label_noise.kind == "matrix" or d.label_noise.rate > 0),
      )
      if on
    ]
    if asked:
      raise ConfigError(
        f"config.{asked[0]} is set for a regression problem; it needs class labels (problem.kind multiclass or binary)"
      )
  elif d.label_noise.kind == "matrix" or d.label_noise.rate > 0:
    try:
      label_noise.transition_matrix(
        num_classes, kind=d.label_noise.kind, rate=d.label_noise.rate, matrix=d.label_noise.matrix
      )
    except label_noise.LabelNoiseError as e:
      raise ConfigError(f"config.{e}") from None
  if d.augment:
    if d.name in graph_data.GRAPH_DATASETS or d.name in synthetic.GENERATED or len(spec.input_shape) != 3:
      raise ConfigError(
        f"config.data.augment needs image inputs [height, width, channels]; {spec.name!r} feature "
        f"{spec.input_feature!r} has shape {tuple(spec.input_shape)}"
      )


def param_shapes(config: ml_collections.ConfigDict, problem: Problem):
  """The model's parameter tree as shapes only (jax.eval_shape: nothing is computed or drawn)."""
  model = models.create_model(config.model, output_dim=problem.output_dim)
  key = jax.eval_shape(jax.random.key, 0)
  return jax.eval_shape(model.init, key, problem.input_structure)["params"]


def _check_layers(config: ml_collections.ConfigDict, problem: Problem) -> None:
  """Layer names in layer_inits / freeze / reinit exist; an init_from run's layers fit this model."""
  shapes = param_shapes(config, problem)
  layers = sorted(shapes)
  unknown = sorted(models.layer_inits(config.model).override_layers() - set(layers))
  if unknown:
    raise ConfigError(
      f"config.model.layer_inits names layers the model lacks ({', '.join(unknown)}); its layers: {', '.join(layers)}"
    )
  for field in ("freeze", "reinit"):
    value = config[field]
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
      raise ConfigError(f"config.{field}={value!r} must be a tuple of layer names or prefixes, e.g. ('conv',)")
    transfer.check_patterns(field, value, layers)
  if config.init_from is not None:
    transfer.check_compatible(transfer.source_params(config.init_from), shapes, config.reinit)
  elif config.freeze:
    raise ConfigError(
      "config.freeze is set without config.init_from: frozen layers would stay at their random initialization"
    )


def check_parallel_fields(config: ml_collections.ConfigDict) -> None:
  """`config.parallel` on its own (the device count is checked once the devices are known)."""
  require_choice(config, "parallel.mode", parallel.MODES)
  for field in ("parallel.num_devices", "parallel.num_processes"):
    if get_field(config, field) is not None:
      require_positive(config, field)
  if config.parallel.process_id is not None:
    require_positive(config, "parallel.process_id", allow_zero=True)
  require_positive(config, "parallel.max_in_flight")
  require_positive(config, "parallel.init_timeout_seconds", float)
  require_type(config, "parallel.detect_cluster", bool)
  if config.parallel.coordinator is not None:
    coordinator = require_type(config, "parallel.coordinator", str)
    if ":" not in coordinator:
      raise ConfigError(f"config.parallel.coordinator={coordinator!r} must be HOST:PORT, e.g. 127.0.0.1:12355")
    if config.parallel.num_processes is None or config.parallel.process_id is None:
      raise ConfigError(
        "config.parallel.coordinator is set; config.parallel.num_processes and config.parallel.process_id must be set too"
      )
    if config.parallel.process_id >= config.parallel.num_processes:
      raise ConfigError(
        f"config.parallel.process_id={config.parallel.process_id} must be in 0..{config.parallel.num_processes - 1}"
      )


def check_layout(config: ml_collections.ConfigDict, problem: Problem) -> parallel.Layout:
  """The layout the config asks for on the devices present; ConfigError when it cannot hold."""
  p = config.parallel
  available = len(jax.devices())
  if p.num_devices is not None and p.num_devices > available:
    raise ConfigError(
      f"config.parallel.num_devices={p.num_devices} but {available} device(s) are present; allowed: 1..{available}"
    )
  if config.data.name in graph_data.GRAPH_DATASETS:
    if p.mode in ("pmap", "sharded"):
      raise ConfigError(
        f"config.parallel.mode={p.mode!r} is not supported for graph datasets ({config.data.name!r}), which batch on the host; allowed: auto, single"
      )
    return parallel.Layout("single")
  layout = parallel.create_layout(p.mode, num_devices=p.num_devices)
  n = layout.num_devices
  if config.train.batch_size % n:
    allowed = ", ".join(str(n * k) for k in (1, 2, 4, 8, 16) if n * k <= problem.train_size)
    raise ConfigError(
      f"config.train.batch_size={config.train.batch_size} must divide by the {n} devices of parallel.mode={layout.mode!r} "
      f"(the batch is global); allowed: a multiple of {n}, e.g. {allowed}"
    )
  return layout


def _adapted_spec(config: ml_collections.ConfigDict, spec: data_lib.FeatureSpec):
  """(the spec as the problem sees it after `data.adapt`, the adaptation, the dataset's own class count)."""
  d = config.data
  if d.name in synthetic.GENERATED or d.name in graph_data.GRAPH_DATASETS:
    a = d.adapt
    if a.resize is not None or a.grayscale or a.relabel is not None:
      raise ConfigError(
        f"config.data.adapt is set, but {d.name!r} is a generated/graph dataset; it applies to tfds and your own array datasets"
      )
    return spec, adapt.Adaptation(), spec.num_classes
  adaptation = adapt.from_config(d, num_classes=spec.num_classes, input_shape=spec.input_shape, dataset=spec.name)
  adapted = dataclasses.replace(
    spec, input_shape=adaptation.input_shape(spec.input_shape), num_classes=adaptation.num_classes(spec.num_classes)
  )
  return adapted, adaptation, spec.num_classes


def _subset_sizes(config: ml_collections.ConfigDict, problem: Problem, original_classes: int | None) -> Problem:
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
  if d.name in synthetic.GENERATED:
    if d.classes is not None:
      raise ConfigError(f"config.data.classes is set, but {d.name!r} is a generated regression set without classes")
    return dataclasses.replace(problem, train_size=min(problem.train_size, d.train_examples))
  read = dict(
    data_dir=d.data_dir,
    input_feature=d.input_feature,
    label_feature=d.label_feature,
    metadata_features=tuple(d.metadata_features),
  )
  sizes = {}
  for split, limit in ((d.train_split, d.train_examples), (d.eval_split, None)):
    labels = data_lib.load_split(d.name, split, **read).labels
    labels = labels[data_lib.select_examples(labels, classes=d.classes, limit=limit)]
    labels = problem.adaptation.labels(labels)[1]
    sizes[split] = len(labels)
    if sizes[split] == 0:
      fields = ", ".join(
        f
        for f, on in (
          ("config.data.classes", d.classes is not None),
          ("config.data.adapt.relabel", relabel is not None),
        )
        if on
      )
      raise ConfigError(f"{fields} leave(s) split {split!r} empty")
    if skewed and split == d.train_split:
      try:
        counts = balance.requested_counts(
          labels, problem.dataset_classes, class_counts=d.class_counts, imbalance_ratio=d.imbalance_ratio
        )
      except balance.ImbalanceError as e:
        raise ConfigError(f"config.{e}") from None
      sizes[split] = int(counts.sum())
  return dataclasses.replace(problem, train_size=sizes[d.train_split], eval_size=sizes[d.eval_split])


def validate(config: ml_collections.ConfigDict) -> Problem:
  """All checks, cheapest first; the dataset is only looked at once the fields themselves are sound."""
  _check_fields(config)
  try:
    if config.data.name in synthetic.GENERATED:
      spec = synthetic.GENERATED[config.data.name].spec(config.data.name)
    elif config.data.name in graph_data.GRAPH_DATASETS:
      spec = graph_data.spec(config.data.name)
    else:
      spec = data_lib.dataset_spec(
        config.data.name,
        data_dir=config.data.data_dir,
        input_feature=config.data.input_feature,
        label_feature=config.data.label_feature,
        metadata_features=tuple(config.data.metadata_features),
      )
  except data_lib.DatasetError as e:  # the data layer names fields `data.x`; configs say `config.data.x`
    message = str(e)
    raise ConfigError(f"config.{message}" if message.startswith("data.") else message) from None
  takes_graphs = config.model.name in models.GRAPH_MODELS
  if takes_graphs != (config.data.name in graph_data.GRAPH_DATASETS):
    graph_sets, graph_models = ", ".join(graph_data.GRAPH_DATASETS), ", ".join(sorted(models.GRAPH_MODELS))
    raise ConfigError(
      f"config.model.name={config.model.name!r} takes graphs, but config.data.name={config.data.name!r} is not a graph dataset (allowed: {graph_sets})"
      if takes_graphs
      else f"config.data.name={config.data.name!r} holds graphs, which config.model.name={config.model.name!r} cannot read (allowed: {graph_models})"
    )
  spec, adaptation, original_classes = _adapted_spec(config, spec)
  problem = dataclasses.replace(_resolve_problem(config, spec), adaptation=adaptation)
  problem = _subset_sizes(config, problem, original_classes)
  if config.train.batch_size > problem.train_size and config.data.name != "karate":  # karate: one full-graph batch
    raise ConfigError(
      f"config.train.batch_size={config.train.batch_size} is larger than split "
      f"{config.data.train_split!r} of {spec.name!r} ({problem.train_size} examples); allowed: 1..{problem.train_size}"
    )
  _check_layers(config, problem)
  return problem
