"""Checks a training config against the registries, the dataset and the devices before anything is computed.

`validate(config)` either returns the resolved `Problem` or raises a one-line ConfigError naming the
field, the value and what is allowed; nothing is written to a workdir before it passes. Cheapest first:
each field on its own (`fields`), then the problem against the dataset's metadata (`data.problem`), then
the model against the data (graph models read graph datasets), the layer names the config mentions and
an `init_from` run's layers (shapes only, `jax.eval_shape`), and, when the run starts, the layout against
the devices present (`check_layout`) and a group's runs against each other (`check_group`).
"""

from __future__ import annotations

import jax
import ml_collections

from jaxflow import models
from jaxflow.config import ConfigError, require_positive
from jaxflow.data import groups, registry
from jaxflow.data.problem import Problem, resolve_problem
from jaxflow.run.fields import check_fields
from jaxflow.training import parallel, transfer

# Hyperparameters the runs of one group may differ in: they become data (TrainState.hparams), not program.
RUNTIME_FIELDS = ("optim.lr", "optim.weight_decay", "model.dropout_rate")


class GroupError(ConfigError):
  """The configs of a group differ in more than their seeds, or need something a group cannot do."""


def validate(config: ml_collections.ConfigDict) -> Problem:
  """All checks, cheapest first; the dataset is only looked at once the fields themselves are sound."""
  check_fields(config)
  check_model_reads_data(config)
  problem = resolve_problem(config)
  kind = registry.dataset_kind(config.data.name)
  if config.train.batch_size > problem.train_size and not kind.whole_graph:
    raise ConfigError(
      f"config.train.batch_size={config.train.batch_size} is larger than split "
      f"{config.data.train_split!r} of {config.data.name!r} ({problem.train_size} examples); "
      f"allowed: 1..{problem.train_size}"
    )
  check_input_rank(config, problem)
  check_layers(config, problem)
  groups.check(config.data, kind=problem.kind, graphs=kind.graphs)
  return problem


# The rank of one example each array model reads (an MLP flattens anything).
INPUT_RANKS = {"cnn": ((3,), "images [height, width, channels]"), "rnn": ((2, 3), "sequences [time, features]")}


def check_input_rank(config: ml_collections.ConfigDict, problem: Problem) -> None:
  """A model that needs images or sequences is refused on inputs of another rank, before anything is traced."""
  if isinstance(problem.input_structure, dict) or registry.dataset_kind(config.data.name).graphs:
    return
  kinds = tuple(config.model.stages) if config.model.name == "stack" else (config.model.name,)
  first = kinds[0] if kinds else None
  if first not in INPUT_RANKS:
    return
  ranks, what = INPUT_RANKS[first]
  shape = tuple(problem.input_shape)
  if len(shape) not in ranks:
    raise ConfigError(
      f"config.model.name={config.model.name!r} reads {what}, but the inputs of {config.data.name!r} "
      f"({config.data.input_feature!r}) have shape {list(shape)}; allowed for these inputs: model.name='mlp' "
      "(any shape, flattened)"
    )


def check_model_reads_data(config: ml_collections.ConfigDict) -> None:
  """Graph models read graph datasets, every other model reads arrays."""
  takes_graphs = config.model.name in models.GRAPH_MODELS
  if takes_graphs == registry.dataset_kind(config.data.name).graphs:
    return
  if takes_graphs:
    raise ConfigError(
      f"config.model.name={config.model.name!r} takes graphs, but config.data.name={config.data.name!r} is not a "
      f"graph dataset (allowed: {', '.join(registry.GRAPH_DATASETS)})"
    )
  raise ConfigError(
    f"config.data.name={config.data.name!r} holds graphs, which config.model.name={config.model.name!r} cannot "
    f"read (allowed: {', '.join(sorted(models.GRAPH_MODELS))})"
  )


def check_layers(config: ml_collections.ConfigDict, problem: Problem) -> None:
  """Layer names in layer_inits / freeze / reinit exist; an init_from run's layers fit this model."""
  shapes = models.param_shapes(config.model, problem.output_dim, problem.input_structure)
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


def check_layout(config: ml_collections.ConfigDict, problem: Problem) -> parallel.Layout:
  """The layout the config asks for on the devices present; ConfigError when it cannot hold."""
  p = config.parallel
  available = len(jax.devices())
  if p.num_devices is not None and p.num_devices > available:
    raise ConfigError(
      f"config.parallel.num_devices={p.num_devices} but {available} device(s) are present; allowed: 1..{available}"
    )
  if not registry.dataset_kind(config.data.name).on_device:
    if p.mode in ("pmap", "sharded"):
      raise ConfigError(
        f"config.parallel.mode={p.mode!r} is not supported for graph datasets ({config.data.name!r}), "
        "which batch on the host; allowed: auto, single"
      )
    return parallel.Layout("single")
  layout = parallel.create_layout(p.mode, num_devices=p.num_devices)
  n = layout.num_devices
  if config.train.batch_size % n:
    allowed = ", ".join(str(n * k) for k in (1, 2, 4, 8, 16) if n * k <= problem.train_size)
    raise ConfigError(
      f"config.train.batch_size={config.train.batch_size} must divide by the {n} devices of "
      f"parallel.mode={layout.mode!r} (the batch is global); allowed: a multiple of {n}, e.g. {allowed}"
    )
  return layout


def check_group(configs: list[ml_collections.ConfigDict], group_key, *, stack_sharding=None) -> None:
  """The runs of a group differ only in their seeds and RUNTIME_FIELDS, and their data lives on the device.
  The first config was validated whole; the others are checked in what may differ. Under jax.distributed the
  run axis must span every process's devices (`stack_sharding`): each process holds a share of the runs."""
  config = configs[0]
  if any(group_key(c) != group_key(config) for c in configs[1:]):
    raise GroupError(f"the configs of a group may differ only in seed, seeds.* and {', '.join(RUNTIME_FIELDS)}")
  for c in configs[1:]:
    require_positive(c, "optim.lr", float)
    require_positive(c, "optim.weight_decay", float, allow_zero=True)
    if not 0 <= c.model.dropout_rate < 1:
      raise ConfigError(f"config.model.dropout_rate={c.model.dropout_rate!r} must be in [0, 1)")
  if not registry.dataset_kind(config.data.name).on_device:
    raise GroupError(
      f"config.data.name={config.data.name!r}: graph datasets batch on the host; their seeds run one after another"
    )
  processes = jax.process_count()
  if processes > 1 and len({d.process_index for d in getattr(stack_sharding, "device_set", ())}) < processes:
    raise GroupError(f"a group of runs in {processes} processes needs its run axis over every process's devices")
  if config.parallel.mode not in ("auto", "single"):
    raise GroupError(
      f"config.parallel.mode={config.parallel.mode!r}: a group of runs uses the devices for its runs, "
      "not for data parallelism; use single"
    )
