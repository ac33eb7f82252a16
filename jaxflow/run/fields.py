"""Every field of a training config checked on its own, against the registries that define its values.

The cheapest checks, run before the dataset is looked at: types, ranges and names. Each raises a one-line
ConfigError naming `config.<field>`, the value and what is allowed. The allowed names come from their
owners (models, losses, optimizers, the data preparations, the parallel layouts), never from a second list.
"""

from __future__ import annotations

import ml_collections

from jaxflow import models
from jaxflow.config import ConfigError, get_field, require_choice, require_positive, require_type
from jaxflow.data import augment, balance, label_noise
from jaxflow.data.problem import CLASSIFICATION_METRICS, PROBLEM_KINDS, REGRESSION_METRICS
from jaxflow.models import initializers
from jaxflow.training import losses, optimizers, parallel

MONITOR_METRICS = tuple(f"eval/{m}" for m in dict.fromkeys(CLASSIFICATION_METRICS + REGRESSION_METRICS))
POSITIVE_TRAIN_FIELDS = (
  "batch_size",
  "eval_batch_size",
  "epochs",
  "log_every",
  "histogram_every",
  "class_report_every",
)


def check_fields(config: ml_collections.ConfigDict) -> None:
  """Every field on its own, section by section."""
  require_type(config, "seed", int)
  for name in config.seeds.keys():
    if config.seeds[name] is not None:
      require_type(config, f"seeds.{name}", int)
  require_choice(config, "problem.kind", PROBLEM_KINDS)
  check_model_fields(config)
  check_loss_fields(config)
  check_data_fields(config)
  check_parallel_fields(config)
  check_optim_fields(config)
  check_train_fields(config)


def check_model_fields(config: ml_collections.ConfigDict) -> None:
  require_choice(config, "model.name", models.MODELS)
  require_choice(config, "model.activation", models.ACTIVATIONS)
  for field in ("model.widths", "model.conv_features"):
    value = get_field(config, field)
    positive_ints = all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in value or ())
    if not isinstance(value, (tuple, list)) or not positive_ints:
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


def check_loss_fields(config: ml_collections.ConfigDict) -> None:
  if config.loss is not None:
    require_choice(config, "loss", losses.LOSS_NAMES)
  require_positive(config, "focal_gamma", float, allow_zero=True)
  require_choice(config, "class_weights", balance.WEIGHTINGS)
  beta = require_type(config, "class_weights_beta", (int, float))
  if not 0 < beta < 1:
    raise ConfigError(f"config.class_weights_beta={beta!r} must be in (0, 1), e.g. 0.999")


def check_data_fields(config: ml_collections.ConfigDict) -> None:
  require_choice(config, "data.sampler", balance.SAMPLERS)
  # A config.json written before these fields existed lacks them (read back by explain, export): no check.
  if config.data.get("standardize") is not None:
    require_type(config, "data.standardize", bool)
  if "holdout" in config.data:
    share = require_type(config, "data.holdout", (int, float))
    if not 0 <= share < 1:
      raise ConfigError(f"config.data.holdout={share!r} must be in [0, 1): the share of a single split held out")
  require_choice(config, "data.label_noise.kind", label_noise.NOISE_KINDS)
  rate = require_type(config, "data.label_noise.rate", (int, float))
  if not 0 <= rate <= 1:
    raise ConfigError(f"config.data.label_noise.rate={rate!r} must be in [0, 1]")
  for field in ("data.metadata_features", "data.augment"):
    value = get_field(config, field)
    if not isinstance(value, (tuple, list)) or not all(isinstance(v, str) for v in value):
      raise ConfigError(f"config.{field}={value!r} must be a tuple of strings")
  augment.parse_augment(tuple(config.data.augment), "config.data.augment")


def check_optim_fields(config: ml_collections.ConfigDict) -> None:
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


def check_train_fields(config: ml_collections.ConfigDict) -> None:
  for field in POSITIVE_TRAIN_FIELDS:
    require_positive(config, f"train.{field}")
  require_positive(config, "train.layer_stats_every", allow_zero=True)
  if config.train.steps_per_dispatch is not None:
    require_positive(config, "train.steps_per_dispatch")
  require_type(config, "train.overwrite", bool)
  require_type(config, "train.stop_on_divergence", bool)
  require_type(config, "train.dispatch_ahead", bool)
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


def check_parallel_fields(config: ml_collections.ConfigDict) -> None:
  """`config.parallel` on its own (the device count is checked once the devices are known)."""
  p = config.parallel
  require_choice(config, "parallel.mode", parallel.MODES)
  for field in ("parallel.num_devices", "parallel.num_processes"):
    if get_field(config, field) is not None:
      require_positive(config, field)
  if p.process_id is not None:
    require_positive(config, "parallel.process_id", allow_zero=True)
  require_positive(config, "parallel.max_in_flight")
  require_positive(config, "parallel.init_timeout_seconds", float)
  require_type(config, "parallel.detect_cluster", bool)
  if p.coordinator is None:
    return
  coordinator = require_type(config, "parallel.coordinator", str)
  if ":" not in coordinator:
    raise ConfigError(f"config.parallel.coordinator={coordinator!r} must be HOST:PORT, e.g. 127.0.0.1:12355")
  if p.num_processes is None or p.process_id is None:
    raise ConfigError(
      "config.parallel.coordinator is set; config.parallel.num_processes and config.parallel.process_id must be set too"
    )
  if p.process_id >= p.num_processes:
    raise ConfigError(f"config.parallel.process_id={p.process_id} must be in 0..{p.num_processes - 1}")
