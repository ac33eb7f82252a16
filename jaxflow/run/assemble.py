"""One place assembles a run from its config: problem, PRNG streams, data, programs and initial state.

Training, the seeds runner and its timing, the profiler, the audit and the explainer all start here, so
they see the same problem, draw from the same streams and read the same data the same way:

  problem_of(config)                  -> Problem (validated; cached per static config in a `Compiled`)
  host_data(config, problem, streams) -> PreparedData (arrays, as training sees them) or HostData (graphs)
  device_data(...)                    -> DeviceData (arrays on the device) or HostData
  assemble(configs, ...)              -> Assembled: everything above plus the model, the optimizer, the
                                         compiled programs and the initial state, for one run or a group

A group is several runs of one static config (seeds, and the `RUNTIME_FIELDS` a search varies) trained as
one vmapped program: streams, states and (when the runs' data differ) data carry a leading run axis.
`Compiled` keeps what later runs of the same static config can reuse, keyed by the compile-cache keys
below: `jaxflow seeds --mode=sequential` validates, loads and compiles once for all its seeds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxflow import models, rng
from jaxflow.config import ConfigError, config_hash, get_field
from jaxflow.data import augment, pipeline, registry
from jaxflow.data.device import DeviceData, to_device
from jaxflow.data.graph_batches import HostData
from jaxflow.data.problem import Problem
from jaxflow.data.steps import steps_per_epoch as epoch_steps
from jaxflow.run.validate import RUNTIME_FIELDS, GroupError, validate
from jaxflow.training import dispatch, optimizers, parallel, steps, transfer
from jaxflow.training.programs import Programs
from jaxflow.training.run_axis import stack
from jaxflow.training.state import init_fn

DATA_CACHE_SIZE = 8  # runs whose data all differ (a varied data stream + skew) gain nothing from more


@dataclasses.dataclass
class Compiled:
  """What the next run with the same static config reuses: the validated problem, its data, and the
  programs with the model and optimizer objects their TrainState closes over. A fresh optax optimizer
  would not do: TrainState's `tx` is a static field, so a new object is a new jit cache entry (PITFALLS.md)."""

  parts: dict = dataclasses.field(default_factory=dict)  # build key -> Parts
  problem: tuple | None = None  # (static key, the validated Problem): validation depends on no seed
  data: dict = dataclasses.field(default_factory=dict)  # (static key, pipeline.data_key) -> DeviceData


@dataclasses.dataclass(frozen=True)
class Parts:
  model: object  # flax module
  tx: object  # optax optimizer
  programs: Programs
  steps_per_epoch: int
  per_dispatch: int  # steps per dispatch


@dataclasses.dataclass
class Assembled:
  """A run (or a group of runs) ready to train: everything `train_group` and the timings need."""

  configs: list
  problem: Problem
  layout: parallel.Layout
  streams: dict  # {name: key}; a group: keys [size]
  data: DeviceData | HostData
  parts: Parts
  state: object  # the initial TrainState (stacked for a group)
  stack_sharding: object = None
  per_run_data: list = dataclasses.field(default_factory=list)  # each run's own data (shared objects when equal)
  seconds: dict = dataclasses.field(default_factory=dict)  # {"data", "init"}: where assembling took its time

  @property
  def size(self) -> int:
    return len(self.configs)

  @property
  def on_host(self) -> bool:
    return isinstance(self.data, HostData)


# --- compile-cache keys ------------------------------------------------------------------------------


def static_key(config: ml_collections.ConfigDict) -> str:
  """The hash of everything but the seeds: runs with equal keys compile to the same programs."""
  blank = ml_collections.ConfigDict(config.to_dict())
  blank.seed = 0
  for name in blank.seeds:
    blank.seeds[name] = None
  return config_hash(blank)


def group_key(config: ml_collections.ConfigDict) -> str:
  """Runs with equal group keys can train together in one group: they differ only in their seeds and in
  `RUNTIME_FIELDS` (what a hyperparameter search over lr, weight decay and dropout varies)."""
  blank = ml_collections.ConfigDict(config.to_dict())
  blank.optim.lr, blank.optim.weight_decay, blank.model.dropout_rate = 1.0, 0.0, 0.0
  return static_key(blank)


def runtime_hparams(configs) -> tuple[steps.RuntimeHparams | None, dict | None]:
  """For a group whose runs differ in a RUNTIME_FIELD: how the step applies them, and their values
  stacked per run; (None, None) when they agree (then they stay constants of the program)."""
  values = {field: [get_field(c, field) for c in configs] for field in RUNTIME_FIELDS}
  if len(configs) == 1 or all(len(set(v)) == 1 for v in values.values()):
    return None, None
  optim = configs[0].optim
  runtime = steps.RuntimeHparams(decoupled_weight_decay=optim.name == "adamw", clip_norm=optim.clip_norm)
  stacked = {name.split(".")[1]: jnp.asarray(values[name], jnp.float32) for name in RUNTIME_FIELDS}
  return runtime, stacked


def place(layout: parallel.Layout, tree):
  """Host values on the layout's devices (replicated over its mesh), else on the default device."""
  return layout.place(tree) if layout.mesh is not None else parallel.on_device(tree)


# --- problem and data ------------------------------------------------------------------------------------


def problem_of(config: ml_collections.ConfigDict, compiled: Compiled | None = None) -> Problem:
  """The validated Problem of `config` (ConfigError before anything is written); cached in `compiled`."""
  key = static_key(config)
  if compiled is not None and compiled.problem is not None and compiled.problem[0] == key:
    return compiled.problem[1]
  problem = validate(config)
  if compiled is not None:
    compiled.problem = (key, problem)
  return problem


def host_data(config, problem: Problem, streams: dict) -> pipeline.PreparedData | HostData:
  """The data as training sees it, on the host: prepared arrays, or a graph dataset's batches."""
  kind = registry.dataset_kind(config.data.name)
  if kind.graphs:
    return kind.load_host_data(config, streams["data"])
  return pipeline.prepare(config, problem, streams)


def device_data(config, problem: Problem, streams: dict, *, layout=parallel.SINGLE, cache: dict | None = None):
  """DeviceData (arrays, placed on the layout's devices) or HostData (graphs); `cache` (a Compiled's
  `data`) shares one copy between runs whose data are decided by the same streams."""
  kind = registry.dataset_kind(config.data.name)
  if kind.graphs:
    return kind.load_host_data(config, streams["data"])
  key = (static_key(config), pipeline.data_key(config, streams))
  if cache is not None and key in cache:
    return cache[key]
  prepared = pipeline.prepare(config, problem, streams)
  check_same_data(config, prepared)
  data = to_device(
    prepared,
    eval_batch_size=config.train.eval_batch_size,
    num_devices=layout.num_devices,
    place=layout.place if layout.mesh else None,
  )
  if cache is not None:
    if len(cache) >= DATA_CACHE_SIZE:
      cache.clear()
    cache[key] = data
  return data


def check_same_data(config, prepared: pipeline.PreparedData) -> None:
  """Several processes: each loaded the same examples, else a ConfigError in every one naming those that did
  not. Each process reads its own copy (its data dir, the source file at its path): a host holding another
  version would train on other data than its peers, silently (or, with other sizes, fail deep in a collective)."""
  if not parallel.several_processes():
    return
  digest = hashlib.sha256()
  arrays = (prepared.train.inputs, prepared.train_targets, prepared.eval.inputs, prepared.eval_targets)
  for leaf in jax.tree.leaves(arrays):
    digest.update(f"{leaf.dtype}{leaf.shape}".encode())
    digest.update(np.ascontiguousarray(leaf))  # the buffer itself: no copy of a contiguous array
  others = parallel.differing_processes(digest.digest())
  if others:
    raise ConfigError(
      f"data.name={config.data.name!r}: process {', '.join(map(str, others))} loaded other examples than process 0 "
      "(another version of the data in its data dir, or another file at the source's path); every host needs the "
      "same data"
    )


def group_data(configs, problem: Problem, streams_each: list, *, layout, compiled: Compiled | None):
  """(data, data_stacked, per-run data): one DeviceData for the group, stacked when the runs' differ."""
  cache = compiled.data if compiled is not None and layout.mesh is None else {}
  by_key: dict[tuple, DeviceData | HostData] = {}
  datas = []
  for config, streams in zip(configs, streams_each, strict=True):
    key = pipeline.data_key(config, streams)
    if key not in by_key:
      by_key[key] = device_data(config, problem, streams, layout=layout, cache=cache)
    datas.append(by_key[key])
  if len(by_key) == 1:
    return datas[0], False, datas
  if any(d.class_weights != datas[0].class_weights for d in datas):
    raise GroupError("the runs' class weights differ (their label noise differs): train these seeds one after another")
  probabilities = datas[0].sample_probabilities
  stacked = dataclasses.replace(
    datas[0],
    train_inputs=stack([d.train_inputs for d in datas]),
    train_labels=stack([d.train_labels for d in datas]),
    eval_batches=stack([d.eval_batches for d in datas]),
    sample_probabilities=None if probabilities is None else stack([d.sample_probabilities for d in datas]),
  )
  return stacked, True, datas


# --- programs and state ----------------------------------------------------------------------------------


def build_parts(
  config,
  problem: Problem,
  data: DeviceData | HostData,
  *,
  size: int = 1,
  data_stacked: bool = False,
  layout: parallel.Layout = parallel.SINGLE,
  stack_sharding=None,
  compiled: Compiled | None = None,
  runtime: steps.RuntimeHparams | None = None,
) -> Parts:
  """The model, optimizer and programs of `config`, from `compiled` when an earlier run built the same ones
  (their executables are then reused: nothing compiles again). `runtime`: the group's lr / weight decay /
  dropout come from the state (the optimizer is built for lr 1, without clipping and decay)."""
  on_host = isinstance(data, HostData)
  class_weights = None if on_host else data.class_weights
  key = group_key(config) if runtime else static_key(config)
  build_key = (key, size, data_stacked, class_weights, str(stack_sharding), str(layout), runtime)
  if compiled is not None and build_key in compiled.parts:
    return compiled.parts[build_key]
  if on_host:  # graphs: batches built on the host, one step each
    steps_per_epoch, per_dispatch, unroll = data.steps_per_epoch, 1, 1
  else:
    steps_per_epoch = epoch_steps(problem.train_size, config.train.batch_size)
    per_dispatch, unroll = dispatch.dispatch_plan(config, steps_per_epoch)
  lr_fn, tx, model, shared = _shared_objects(config, problem, (key, steps_per_epoch, runtime), runtime, compiled)
  programs = Programs(
    problem=problem,
    batch_size=config.train.batch_size,
    lr_fn=lr_fn,
    steps_per_epoch=steps_per_epoch,
    unroll=unroll,
    focal_gamma=config.focal_gamma,
    class_weights=class_weights,
    augment_ops=augment.parse_augment(tuple(config.data.augment), "config.data.augment"),
    layout=layout,
    stack=size,
    data_stacked=data_stacked,
    stack_sharding=stack_sharding,
    runtime=runtime,
    shared=shared,
  )
  parts = Parts(model, tx, programs, steps_per_epoch, per_dispatch)
  if compiled is not None:
    compiled.parts[build_key] = parts
  return parts


def _shared_objects(config, problem: Problem, key: tuple, runtime, compiled: Compiled | None):
  """(lr schedule, optimizer, model, shared executables): one model and optimizer object per static config,
  whatever the group size or layout. The state's static fields are these objects, so programs that share
  them share the one-run init executable (`seeds --mode=auto` times a one-run and a stacked candidate;
  the init compiles once for both)."""
  shared_key = ("shared", *key)
  if compiled is not None and shared_key in compiled.parts:
    return compiled.parts[shared_key]
  optim = config.optim
  if runtime is not None:
    optim = ml_collections.ConfigDict(optim.to_dict())
    optim.lr = 1.0  # the schedule's shape; each run's lr multiplies it in the step
  steps_per_epoch = key[1]
  total_steps = steps_per_epoch * config.train.epochs
  lr_fn = optimizers.create_schedule(optim, total_steps=total_steps, steps_per_epoch=steps_per_epoch)
  tx = optimizers.create_optimizer(optim, lr_fn, runtime=runtime is not None)
  tx = transfer.with_frozen(tx, tuple(config.freeze))
  objects = (lr_fn, tx, models.create_model(config.model, output_dim=problem.output_dim), {})
  if compiled is not None:
    compiled.parts[shared_key] = objects
  return objects


def init_states(parts: Parts, problem: Problem, streams: dict, *, size: int):
  """The initial state; for a group, each run's own state from its init key, stacked. Built by the
  one-run init program called per run: vmapping flax's and optax's init compiled ~5x slower (3.5 s vs
  0.7 s for the digits MLP) than the S dispatches cost."""
  programs = parts.programs
  init = init_fn(parts.model, parts.tx, problem.input_structure)
  if size == 1 and programs.layout.mesh is not None:
    return programs.init_state(init, streams["init"])  # built replicated on the layout's devices
  if size == 1:
    return programs.init_single(init)(streams["init"])
  single = programs.init_single(init)
  return stack([single(k) for k in streams["init"]])


def one_bit_perturbed(state, configs):
  """The initial state with each run's `one_bit` flip (`config.seeds.one_bit`, set by a seeds study's one_bit
  sweep; rng.apply_one_bit): the one place a run's initial parameters are perturbed. Applied to the
  one-run init's output, per run, so a vmapped group and the same seeds run one by one start bitwise alike."""
  seeds = [rng.one_bit_seed(c) for c in configs]
  if all(s is None for s in seeds):
    return state
  params = state.params
  for i, seed in enumerate(seeds):
    if seed is not None:
      params = rng.apply_one_bit(params, seed, run=None if len(configs) == 1 else i)
  return state.replace(params=params)


def group_streams(configs, layout: parallel.Layout) -> tuple[dict, list[dict]]:
  """(the streams the programs take: one run's placed on the layout, or a group's stacked; each run's)."""
  streams_each = [rng.streams(c) for c in configs]
  if len(configs) == 1:
    return layout.place(streams_each[0]), streams_each
  return stack(streams_each), streams_each


def assemble(
  configs: list,
  *,
  problem: Problem | None = None,
  layout: parallel.Layout = parallel.SINGLE,
  stack_sharding=None,
  compiled: Compiled | None = None,
) -> Assembled:
  """Everything a run (or a group: `configs` of one static config) needs before its first step."""
  config, size = configs[0], len(configs)
  problem = problem or problem_of(config, compiled)
  started = time.perf_counter()
  streams, streams_each = group_streams(configs, layout)  # laid out on stack_sharding once the state is built
  data, data_stacked, per_run_data = group_data(configs, problem, streams_each, layout=layout, compiled=compiled)
  loaded = time.perf_counter()
  runtime, hparams = runtime_hparams(configs)
  parts = build_parts(
    config,
    problem,
    data,
    size=size,
    data_stacked=data_stacked,
    layout=layout,
    stack_sharding=stack_sharding,
    compiled=compiled,
    runtime=runtime,
  )
  state = one_bit_perturbed(init_states(parts, problem, streams, size=size), configs)
  if hparams is not None:
    state = state.replace(hparams=hparams)
  if stack_sharding is not None:  # the run axis over the devices, of every process under jax.distributed
    streams, state = parallel.put((streams, state), stack_sharding)
  seconds = {"data": loaded - started, "init": time.perf_counter() - loaded}  # init: model, programs, first state
  return Assembled(list(configs), problem, layout, streams, data, parts, state, stack_sharding, per_run_data, seconds)
