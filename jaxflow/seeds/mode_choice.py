"""How the seeds runner picks its mode: a few real training steps of each candidate, timed.

The candidates run the very programs training will run (assembled by `jaxflow.run.assemble` into the
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
import os
import platform
import statistics
import time
from importlib import metadata

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxflow import models
from jaxflow.data import registry
from jaxflow.run import environment
from jaxflow.run.assemble import Compiled, assemble, problem_of, static_key
from jaxflow.seeds.sweeps import seed_config
from jaxflow.workdir import read_json, write_json

TIMED_CALLS = 5  # one-step dispatches (a conv model on CPU)
FUSED_CALLS = 2  # whole epochs


def seed_devices(num_runs: int) -> list:
  """The devices the run axis is spread over: as many as divide it evenly (the largest divisor of `num_runs` up
  to the device count). Under jax.distributed these are every process's devices (`jax.devices()`), taken in
  turn from each process, and the count is at least the number of processes, so every process holds runs
  (a process without any would sit out the program its peers run); none fits: [] (see `devices_note`)."""
  processes, devices = jax.process_count(), _in_turn(jax.devices())
  fits = [k for k in range(1, len(devices) + 1) if num_runs % k == 0 and (k >= processes or k == 1)]
  n = max(fits)
  return [] if n == 1 and processes > 1 else devices[:n]


def _in_turn(devices: list) -> list:
  """Each process's first device, then each one's second, ...: one process's devices in jax.devices() order."""
  by_process: dict[int, list] = {}
  for d in devices:
    by_process.setdefault(d.process_index, []).append(d)
  rows = max(len(ds) for ds in by_process.values())
  return [ds[r] for r in range(rows) for _, ds in sorted(by_process.items()) if r < len(ds)]


def seed_sharding(num_runs: int):
  """The run axis over `seed_devices(num_runs)`; None when that is one device (or none)."""
  devices = seed_devices(num_runs)
  if len(devices) <= 1:
    return None
  return NamedSharding(Mesh(np.asarray(devices), ("seeds",)), P("seeds"))


def devices_note(seeds: int) -> str:
  """Where `devices` mode puts `seeds` runs, for the report's mode line."""
  devices, total, processes = seed_devices(seeds), len(jax.devices()), jax.process_count()
  where = f"{total} device{'s' if total > 1 else ''}" + (f" in {processes} processes" if processes > 1 else "")
  if not devices:
    return (
      f"{seeds} seeds do not divide over at least {processes} of the {where} (one share per process): "
      f"each seed trained in turn, data-parallel over the {where}"
    )
  if len(devices) == 1:
    return f"{seeds} seeds vmapped on one device ({where})"
  used = f"{len(devices)} of the {where}" if len(devices) < total else where
  rule = f"; {len(devices)} is the largest divisor of {seeds} that fits" if len(devices) < total else ""
  return f"the seed axis over {used}, {seeds // len(devices)} seed(s) per device{rule}"


CACHE_ENV = "JAXFLOW_SEEDS_MODE_CACHE"


def cache_path() -> str | None:
  """The decision cache's file, None when switched off."""
  path = os.environ.get(CACHE_ENV)
  if path == "off":
    return None
  if path:
    return path
  return os.path.join(
    os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")), "jaxflow", "seeds_modes.json"
  )


def _cache_key(config, seeds: int) -> str:
  """What the timings depend on: the static config, the seed count, this host (a cache in a shared home
  must not hand one machine's decision to another), its CPU and devices, and the jax and jaxflow versions."""
  d = jax.local_devices()[0]
  try:
    version = metadata.version("jaxflow")
  except metadata.PackageNotFoundError:
    version = "?"
  host = f"{platform.node()}|{environment.cpu_model() or platform.machine()} x{os.cpu_count()}"
  devices = f"{d.platform}:{d.device_kind}x{len(jax.local_devices())}"
  return f"{static_key(config)}|seeds={seeds}|{host}|{devices}|jax {jax.__version__}|jaxflow {version}"


def _read_cache(path: str | None) -> dict:
  if path is None:
    return {}
  try:
    cache = read_json(path)
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
    write_json(path, cache, indent=1)
  except OSError:
    pass


CLEAR_LOSS = 1.5  # a candidate this much slower than the best so far after one timed call is not timed further


def _time_calls(fn, calls: int, scale: float, best_so_far: float | None) -> list[float]:
  """Seconds of up to `calls` calls of `fn` (which blocks) after one untimed call (the compile and a
  warm-up); stops after a call slower than CLEAR_LOSS x `best_so_far` (both x `scale`)."""
  times = []
  for call in range(calls + 1):
    start = time.perf_counter()
    fn(call)
    if call:
      times.append(time.perf_counter() - start)
      if best_so_far is not None and times[-1] * scale > CLEAR_LOSS * best_so_far:
        break
  return times


def _time_candidate(
  configs,
  problem,
  *,
  sharding,
  compiled: Compiled,
  per_step_scale: float,
  best_so_far: float | None,
  eval_best_so_far: float | None,
) -> dict:
  """Times the candidate's real programs (kept in `compiled`, so the chosen mode does not compile
  them again): a fused epoch when the model runs whole epochs per dispatch, else one-step chunks.
  A clear loser (CLEAR_LOSS x slower than `best_so_far`, in seconds per step of all seeds, after its
  first timed call) stops there: its calls are thrown away, so each one saved is saved outright.

  One-step chunks (a conv model on CPU) first time the candidate's evaluation program, which training
  runs every epoch anyway and which compiles in a fraction of the train step's time: a candidate whose
  forward pass is already a clear loser (a vmapped convolution that XLA:CPU turns into a grouped one)
  is pruned there, without compiling its train step (~7 s for the digits CNN's 16 stacked seeds)."""
  run = assemble(configs, problem=problem, stack_sharding=sharding, compiled=compiled)
  programs, data, streams, state = run.parts.programs, run.data, run.streams, run.state
  steps_per_epoch, per_dispatch = run.parts.steps_per_epoch, run.parts.per_dispatch
  fused = per_dispatch == steps_per_epoch
  calls = FUSED_CALLS if fused else TIMED_CALLS
  compile_before = programs.compile_seconds
  result = {"steps_per_epoch": steps_per_epoch}
  if not fused:
    eval_times = _time_calls(
      lambda _: jax.block_until_ready(programs.eval_sums(state, data)), 2, per_step_scale, eval_best_so_far
    )
    result["eval_seconds_all_seeds"] = statistics.median(eval_times) * per_step_scale
    if eval_best_so_far is not None and result["eval_seconds_all_seeds"] > CLEAR_LOSS * eval_best_so_far:
      return {
        **result,
        "pruned": f"its evaluation pass was {result['eval_seconds_all_seeds'] / eval_best_so_far:.2f}x slower",
        "seconds_per_call": None,
        "steps_per_call": 1,
        "timed_calls": 0,
        "compile_seconds": programs.compile_seconds - compile_before,
      }
  indices = None if fused else programs.indices(data, streams, 0)
  box = {"state": state}

  def one_call(call: int) -> None:
    if fused:
      box["state"], packed = programs.epoch(box["state"], data, streams, call)
      jax.block_until_ready(packed)
    else:
      box["state"], metrics = programs.chunk(
        box["state"], data=data, epoch_indices=indices, offset=0, num_steps=1, streams=streams
      )
      jax.block_until_ready(metrics)

  times = _time_calls(one_call, calls, per_step_scale / (steps_per_epoch if fused else 1), best_so_far)
  steps = steps_per_epoch if fused else 1
  return {
    **result,
    "seconds_per_call": statistics.median(times),
    "steps_per_call": steps,
    "timed_calls": len(times),
    "compile_seconds": programs.compile_seconds - compile_before,
  }


def _from_cache(known: dict, config, sweeps: int) -> tuple[str, str]:
  """(mode, how) from cached timings. Timed now, the candidates' compiles are sunk and only the steps
  count; from the cache nothing is compiled yet, so each candidate costs its compile plus its steps
  (a small study can be faster in the mode that compiles quicker although it steps slower)."""
  timings = {
    m: t for m, t in (known.get("timings") or {}).items() if t.get("seconds_per_step_all_seeds") is not None
  }  # pruned ones lost
  if not timings or not all("steps_per_epoch" in t for t in timings.values()):
    return known["mode"], "its timings' choice"
  steps = config.train.epochs * sweeps
  predicted = {
    m: t["compile_seconds"] + t["seconds_per_step_all_seeds"] * t["steps_per_epoch"] * steps for m, t in timings.items()
  }
  mode = min(predicted, key=predicted.get)
  shown = ", ".join(f"{m} {predicted[m]:.1f} s" for m in sorted(predicted, key=predicted.get))
  return mode, f"predicted compile + training seconds for {config.train.epochs} epoch(s) x {sweeps} sweep(s): {shown}"


def choose_mode(config, seeds: int, compiled: Compiled, *, vary: tuple[str, ...], sweeps: int = 1) -> dict:
  """{"mode", "why", "timings", "cached"}: the fastest candidate for `seeds` runs of `config` varying `vary`
  (in each of `sweeps` sweeps) on this machine."""
  if seeds == 1:
    return {"mode": "sequential", "why": "one seed: nothing to stack", "timings": None}
  if not registry.dataset_kind(config.data.name).on_device:
    return {
      "mode": "sequential",
      "why": "graph datasets batch on the host: their seeds run one after another",
      "timings": None,
    }
  if jax.process_count() > 1:  # each process would time its own candidates, and might choose another
    why = f"{jax.process_count()} processes (jax.distributed): the seeds spread over every process's devices, untimed"
    return {"mode": "devices", "why": why, "timings": None}
  path = cache_path()
  cache_key = _cache_key(config, seeds)
  known = _read_cache(path).get(cache_key)
  if isinstance(known, dict) and known.get("mode") in ("sequential", "vmap", "devices"):
    mode, how = _from_cache(known, config, sweeps)
    why = (
      f"{how}, from candidates timed on this machine at {known.get('decided')} and kept in {path} (same config but "
      f"its seeds, {seeds} seeds, devices and jax; {CACHE_ENV}=off retimes); then: {known.get('why')}"
    )
    return {"mode": mode, "why": why, "timings": known.get("timings"), "cached": True}
  configs = [seed_config(config, i, vary) for i in range(seeds)]  # the first sweep's very runs
  timings = _time_candidates(configs, problem_of(config, compiled), compiled)
  choice = {"mode": None, "why": None, "timings": timings}
  choice["mode"], choice["why"] = _verdict(timings, seeds)
  _remember(path, cache_key, choice)
  return {**choice, "cached": False}


def _time_candidates(configs: list, problem, compiled: Compiled) -> dict:
  """{candidate: its timing}: sequential (one seed, counted `seeds` times), vmap and, with several
  devices, the seed axis spread over them; each after the best so far, so a clear loser stops early."""
  seeds = len(configs)
  candidates = {"sequential": (1, None), "vmap": (seeds, None)}
  if vmap_is_grouped_conv(configs[0]):
    del candidates["vmap"]
  sharding = seed_sharding(seeds)
  if sharding is not None:
    candidates["devices"] = (seeds, sharding)
  timings = {}
  for name, (stack, shard) in candidates.items():
    scale = seeds if stack == 1 else 1  # seconds for one step of every seed: sequential runs them in turn
    timed = [t for t in timings.values() if t["seconds_per_call"] is not None]
    best_so_far = min((t["seconds_per_step_all_seeds"] for t in timed), default=None)
    evals = [t["eval_seconds_all_seeds"] for t in timings.values() if "eval_seconds_all_seeds" in t]
    t = _time_candidate(
      configs[:stack],
      problem,
      sharding=shard,
      compiled=compiled,
      per_step_scale=scale,
      best_so_far=best_so_far,
      eval_best_so_far=min(evals, default=None),
    )
    per_step = None if t["seconds_per_call"] is None else t["seconds_per_call"] / t["steps_per_call"] * scale
    t["seconds_per_step_all_seeds"] = per_step
    timings[name] = t
  return timings


def vmap_is_grouped_conv(config) -> bool:
  """Convolutions vmapped over their parameters become one grouped convolution (feature_group_count=seeds),
  which XLA:CPU runs ~5x slower than the seeds one after another (PITFALLS.md; here the CNN's vmapped
  evaluation pass alone was 6.5x slower): not worth compiling just to lose, which cost a first study ~10 %."""
  return models.has_conv(config.model) and jax.default_backend() == "cpu"


def _verdict(timings: dict, seeds: int) -> tuple[str, str]:
  """(the fastest stepped candidate, why, in one paragraph with every candidate's time)."""
  stepped = {k: t for k, t in timings.items() if t["seconds_per_step_all_seeds"] is not None}
  ranked = sorted(stepped, key=lambda k: stepped[k]["seconds_per_step_all_seeds"])
  best = ranked[0]
  shown = ", ".join(f"{k} {1e3 * stepped[k]['seconds_per_step_all_seeds']:.2f} ms" for k in ranked)
  if len(ranked) > 1:
    ratio = stepped[ranked[1]]["seconds_per_step_all_seeds"] / stepped[best]["seconds_per_step_all_seeds"]
    verdict = f"{best} is {ratio:.2f}x faster than {ranked[1]}"
  else:
    verdict = f"{best} is the only candidate stepped"
  pruned = "; ".join(f"{k} not stepped: {t['pruned']} than the fastest" for k, t in timings.items() if t.get("pruned"))
  if "vmap" not in timings:
    pruned = (pruned + "; " if pruned else "") + (
      "vmap not timed: vmapped convolutions are grouped convolutions, ~5x slower on XLA:CPU (PITFALLS.md)"
    )
  unit = "epoch(s)" if stepped[best]["steps_per_call"] > 1 else "one-step dispatch(es) (after its evaluation pass)"
  calls = FUSED_CALLS if stepped[best]["steps_per_call"] > 1 else TIMED_CALLS
  why = (
    f"timed up to {calls} {unit} of each candidate's own program on this model and device "
    f"({jax.devices()[0].device_kind}); one step of all {seeds} seeds: {shown}; {verdict}"
    + (f"; {pruned}" if pruned else "")
  )
  return best, why
