"""How the seeds runner picks its mode: a few real training steps of each candidate, timed.

The candidates run the very programs training will run (built by `loop.build_programs` into the
study's `Compiled`, so the chosen one is not compiled again): a whole fused epoch when the model runs
an epoch per dispatch, else one-step dispatches (a convolutional model on CPU). `sequential` is timed
with one seed and counted `seeds` times; `vmap` and `devices` with all seeds stacked. Each program is
compiled and run once untimed, then timed over a few calls (median), so compile time is left out of the
comparison and reported apart. The timing runs are thrown away; the loser's compile is the price.

That price is a few seconds, which for a small study is a large share of it (16 digits-MLP seeds train in
~20 s), so the decision is kept in a small per-machine cache (like XLA's autotuning results): the next
study of the same static config and seed count on the same devices and jax version (another --vary,
another --study, a rerun elsewhere) reuses it, and its report says when and how it was decided.
$JAXFLOW_SEEDS_MODE_CACHE names the file (default $XDG_CACHE_HOME/jaxflow/seeds_modes.json); "off"
times every study afresh.
"""

from __future__ import annotations

import datetime
import json
import os
import statistics
import time

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jaxflow import rng
from jaxflow.training import loop
from jaxflow.training.device_data import load_device_data

TIMED_CALLS = 5  # one-step dispatches (a conv model on CPU)
FUSED_CALLS = 2  # whole epochs


def seed_sharding(num_runs: int):
  """The run axis over as many local devices as divide it evenly (None with one device)."""
  devices = jax.local_devices()
  n = max(k for k in range(1, len(devices) + 1) if num_runs % k == 0)
  if n == 1:
    return None
  return NamedSharding(Mesh(np.asarray(devices[:n]), ("seeds",)), P("seeds"))


CACHE_ENV = "JAXFLOW_SEEDS_MODE_CACHE"


def cache_path() -> str | None:
  """The decision cache's file, None when switched off."""
  path = os.environ.get(CACHE_ENV)
  if path == "off":
    return None
  if path:
    return path
  return os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")), "jaxflow", "seeds_modes.json")


def _cache_key(config, seeds: int) -> str:
  d = jax.local_devices()[0]
  return f"{loop.static_key(config)}|seeds={seeds}|{d.platform}:{d.device_kind}x{len(jax.local_devices())}|jax {jax.__version__}"


def _read_cache(path: str | None) -> dict:
  if path is None:
    return {}
  try:
    with open(path) as f:
      cache = json.load(f)
    return cache if isinstance(cache, dict) else {}
  except (OSError, ValueError):
    return {}


def _remember(path: str | None, key: str, choice: dict) -> None:
  """Adds the decision to the cache (best effort: an unwritable cache only means timing again)."""
  if path is None:
    return
  cache = _read_cache(path)
  cache[key] = {**choice, "decided": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
  try:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
      json.dump(cache, f, indent=1)
    os.replace(tmp, path)
  except OSError:
    pass


CLEAR_LOSS = 1.5  # a candidate this much slower than the best so far after one timed call is not timed further


def _time_candidate(config, problem, data, stream_list, *, stack: int, sharding, compiled: loop.Compiled, per_step_scale: float, best_so_far: float | None) -> dict:
  """Times the candidate's real programs (kept in `compiled`, so the chosen mode does not compile
  them again): a fused epoch when the model runs whole epochs per dispatch, else one-step chunks.
  A clear loser (CLEAR_LOSS x slower than `best_so_far`, in seconds per step of all seeds, after its
  first timed call) stops there: its calls are thrown away, so each one saved is saved outright."""
  model, tx, programs, steps_per_epoch, per_dispatch = loop.build_programs(
      config, problem, size=stack, class_weights=data.class_weights, stack_sharding=sharding, compiled=compiled,
  )
  streams = stream_list[0] if stack == 1 else loop._stack(stream_list[:stack])
  if sharding is not None:
    streams = jax.device_put(streams, sharding)
  state = loop.init_states(programs, model, tx, problem, streams, size=stack, stack_sharding=sharding)
  fused = per_dispatch == steps_per_epoch
  calls = FUSED_CALLS if fused else TIMED_CALLS
  times, compile_before = [], programs.compile_seconds
  indices = None if fused else programs.indices(data, streams, 0)
  for call in range(calls + 1):
    start = time.perf_counter()
    if fused:
      state, packed = programs.epoch(state, data, streams, call)
      jax.block_until_ready(packed)
    else:
      state, metrics = programs.chunk(state, data=data, epoch_indices=indices, offset=0, num_steps=1, streams=streams)
      jax.block_until_ready(metrics)
    if call:  # the first call compiled (and warmed up)
      times.append(time.perf_counter() - start)
      per_step = times[-1] / (steps_per_epoch if fused else 1) * per_step_scale
      if best_so_far is not None and per_step > CLEAR_LOSS * best_so_far:
        break
  steps = steps_per_epoch if fused else 1
  return {"seconds_per_call": statistics.median(times), "steps_per_call": steps, "steps_per_epoch": steps_per_epoch, "timed_calls": len(times), "compile_seconds": programs.compile_seconds - compile_before}


def _from_cache(known: dict, config, sweeps: int) -> tuple[str, str]:
  """(mode, how) from cached timings. Timed now, the candidates' compiles are sunk and only the steps
  count; from the cache nothing is compiled yet, so each candidate costs its compile plus its steps
  (a small study can be faster in the mode that compiles quicker although it steps slower)."""
  timings = known.get("timings") or {}
  if not timings or not all("steps_per_epoch" in t for t in timings.values()):
    return known["mode"], "its timings' choice"
  steps = config.train.epochs * sweeps
  predicted = {m: t["compile_seconds"] + t["seconds_per_step_all_seeds"] * t["steps_per_epoch"] * steps for m, t in timings.items()}
  mode = min(predicted, key=predicted.get)
  shown = ", ".join(f"{m} {predicted[m]:.1f} s" for m in sorted(predicted, key=predicted.get))
  return mode, f"predicted compile + training seconds for {config.train.epochs} epoch(s) x {sweeps} sweep(s): {shown}"


def choose_mode(config, seeds: int, compiled: loop.Compiled, *, sweeps: int = 1) -> dict:
  """{"mode", "why", "timings", "cached"}: the fastest candidate for `seeds` runs of `config` (in each of
  `sweeps` sweeps) on this machine."""
  from jaxflow.studies.seeds import SOURCES, seed_config
  from jaxflow.training import graph_data
  from jaxflow.training.validate import validate

  if seeds == 1:
    return {"mode": "sequential", "why": "one seed: nothing to stack", "timings": None}
  if config.data.name in graph_data.GRAPH_DATASETS:
    return {"mode": "sequential", "why": "graph datasets batch on the host: their seeds run one after another", "timings": None}
  path = cache_path()
  cache_key = _cache_key(config, seeds)
  known = _read_cache(path).get(cache_key)
  if isinstance(known, dict) and known.get("mode") in ("sequential", "vmap", "devices"):
    mode, how = _from_cache(known, config, sweeps)
    why = (f"{how}, from candidates timed on this machine at {known.get('decided')} and kept in {path} (same config but "
           f"its seeds, {seeds} seeds, devices and jax; {CACHE_ENV}=off retimes); then: {known.get('why')}")
    return {"mode": mode, "why": why, "timings": known.get("timings"), "cached": True}
  key = loop.static_key(config)
  problem = validate(config)
  compiled.problem = (key, problem)  # the runs that follow validate nothing again
  stream_list = [rng.streams(seed_config(config, i, SOURCES)) for i in range(seeds)]
  data_key = (key, loop._host_data_key(config, stream_list[0]))
  if data_key not in compiled.data:
    compiled.data[data_key] = load_device_data(config, problem, stream_list[0])
  data = compiled.data[data_key]
  candidates = {"sequential": (1, None), "vmap": (seeds, None)}
  sharding = seed_sharding(seeds)
  if sharding is not None:
    candidates["devices"] = (seeds, sharding)
  timings = {}
  for name, (stack, shard) in candidates.items():
    # Seconds for one step of every seed: sequential runs the seeds one after another.
    scale = seeds if stack == 1 else 1
    best_so_far = min((t["seconds_per_step_all_seeds"] for t in timings.values()), default=None)
    t = _time_candidate(config, problem, data, stream_list, stack=stack, sharding=shard, compiled=compiled, per_step_scale=scale, best_so_far=best_so_far)
    t["seconds_per_step_all_seeds"] = t["seconds_per_call"] / t["steps_per_call"] * scale
    timings[name] = t
  best = min(timings, key=lambda k: timings[k]["seconds_per_step_all_seeds"])
  ranked = sorted(timings, key=lambda k: timings[k]["seconds_per_step_all_seeds"])
  runner_up = ranked[1]
  ratio = timings[runner_up]["seconds_per_step_all_seeds"] / timings[best]["seconds_per_step_all_seeds"]
  shown = ", ".join(f"{k} {1e3 * timings[k]['seconds_per_step_all_seeds']:.2f} ms" for k in ranked)
  unit = "epoch(s)" if timings[best]["steps_per_call"] > 1 else "one-step dispatch(es)"
  calls = FUSED_CALLS if timings[best]["steps_per_call"] > 1 else TIMED_CALLS
  why = (
      f"timed up to {calls} {unit} of each candidate's own program on this model and device ({jax.devices()[0].device_kind}); "
      f"one step of all {seeds} seeds: {shown}; {best} is {ratio:.2f}x faster than {runner_up}"
  )
  choice = {"mode": best, "why": why, "timings": timings}
  _remember(path, cache_key, choice)
  return {**choice, "cached": False}
