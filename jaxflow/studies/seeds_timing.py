"""How the seeds runner picks its mode: a few real training steps of each candidate, timed.

The candidates run the very programs training runs (jaxflow's Programs, on the config's model, data,
optimizer and batch), for one dispatch unit: one step for a convolutional model on CPU (it runs one
step per dispatch), else a scan of up to 8 steps (a proxy for the fused epoch). `sequential` is timed
with one seed and counted `seeds` times; `vmap` and `devices` with all seeds stacked. Each program is
compiled and run once untimed, then timed over a few calls (median), so compile time is left out of the
comparison and reported apart.
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxflow import models, rng
from jaxflow.data import augment
from jaxflow.training import loop, optimizers, transfer
from jaxflow.training.device_data import load_device_data
from jaxflow.training.programs import Programs
from jaxflow.training.state import init_fn

TIMED_CALLS = 5


def seed_sharding(num_runs: int):
  """The run axis over as many local devices as divide it evenly (None with one device)."""
  devices = jax.local_devices()
  n = max(k for k in range(1, len(devices) + 1) if num_runs % k == 0)
  if n == 1:
    return None
  return NamedSharding(Mesh(np.asarray(devices[:n]), ("seeds",)), P("seeds"))


def _time_candidate(config, problem, data, stream_list, *, stack: int, sharding, num_steps: int, steps_per_epoch: int, unroll) -> dict:
  lr_fn = optimizers.create_schedule(config.optim, total_steps=steps_per_epoch * config.train.epochs, steps_per_epoch=steps_per_epoch)
  tx = transfer.with_frozen(optimizers.create_optimizer(config.optim, lr_fn), tuple(config.freeze))
  model = models.create_model(config.model, output_dim=problem.output_dim)
  programs = Programs(
      problem=problem, batch_size=config.train.batch_size, lr_fn=lr_fn, steps_per_epoch=steps_per_epoch, unroll=unroll,
      focal_gamma=config.focal_gamma, class_weights=data.class_weights,
      augment_ops=augment.parse_augment(tuple(config.data.augment), "config.data.augment"), stack=stack, stack_sharding=sharding,
  )
  streams = stream_list[0] if stack == 1 else loop._stack(stream_list[:stack])
  if sharding is not None:
    streams = jax.device_put(streams, sharding)
  state = programs.init_state(init_fn(model, tx, problem.input_structure), streams["init"])
  indices = programs.indices(data, streams, 0)
  times = []
  for call in range(TIMED_CALLS + 1):
    start = time.perf_counter()
    state, metrics = programs.chunk(state, data=data, epoch_indices=indices, offset=0, num_steps=num_steps, streams=streams)
    jax.block_until_ready(metrics)
    if call:  # the first call compiled (and warmed up)
      times.append(time.perf_counter() - start)
  return {"seconds_per_call": statistics.median(times), "compile_seconds": programs.compile_seconds}


def choose_mode(config, seeds: int, compiled: loop.Compiled) -> dict:
  """{"mode", "why", "timings"}: the fastest candidate for `seeds` runs of `config` on this machine."""
  from jaxflow.studies.seeds import SOURCES, seed_config
  from jaxflow.training import graph_data
  from jaxflow.training.validate import validate

  if seeds == 1:
    return {"mode": "sequential", "why": "one seed: nothing to stack", "timings": None}
  if config.data.name in graph_data.GRAPH_DATASETS:
    return {"mode": "sequential", "why": "graph datasets batch on the host: their seeds run one after another", "timings": None}
  problem = validate(config)
  stream_list = [rng.streams(seed_config(config, i, SOURCES)) for i in range(seeds)]
  data = load_device_data(config, problem, stream_list[0])
  steps_per_epoch = problem.train_size // config.train.batch_size
  per_dispatch, unroll = loop.dispatch_plan(config, steps_per_epoch)
  num_steps = per_dispatch if per_dispatch < steps_per_epoch else min(steps_per_epoch, 8)
  candidates = {"sequential": (1, None), "vmap": (seeds, None)}
  sharding = seed_sharding(seeds)
  if sharding is not None:
    candidates["devices"] = (seeds, sharding)
  timings = {}
  for name, (stack, shard) in candidates.items():
    t = _time_candidate(config, problem, data, stream_list, stack=stack, sharding=shard, num_steps=num_steps, steps_per_epoch=steps_per_epoch, unroll=unroll)
    # Seconds for one step of every seed: sequential runs the seeds one after another.
    t["seconds_per_step_all_seeds"] = t["seconds_per_call"] / num_steps * (seeds if stack == 1 else 1)
    timings[name] = t
  best = min(timings, key=lambda k: timings[k]["seconds_per_step_all_seeds"])
  ranked = sorted(timings, key=lambda k: timings[k]["seconds_per_step_all_seeds"])
  runner_up = ranked[1]
  ratio = timings[runner_up]["seconds_per_step_all_seeds"] / timings[best]["seconds_per_step_all_seeds"]
  shown = ", ".join(f"{k} {1e3 * timings[k]['seconds_per_step_all_seeds']:.2f} ms" for k in ranked)
  why = (
      f"timed {TIMED_CALLS} calls of {num_steps} step(s) of each candidate on this model and device ({jax.devices()[0].device_kind}); "
      f"one step of all {seeds} seeds: {shown}; {best} is {ratio:.2f}x faster than {runner_up}"
  )
  return {"mode": best, "why": why, "timings": timings, "unit_steps": num_steps}
