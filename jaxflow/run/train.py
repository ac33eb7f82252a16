"""`train(config, workdir)`: a run assembled, its workdir prepared and resumed, then the epoch loop.

Shape of a run: validate (nothing written yet) -> workdir/config.json -> data on device -> state
(restored from the latest checkpoint if there is one) -> the epoch loop (`jaxflow.training.loop`) ->
summary.json. The host-side record of each run (logs, monitor, checkpoints, summary) is a `RunBook`.

`train_group(configs, workdirs)` trains several runs that differ only in their seeds (and the
`RUNTIME_FIELDS` a search varies) as ONE program: the state and the streams carry a leading run axis and
the same step functions are vmapped over it (the multi-seed runner's `vmap` and `devices` modes). Each run
keeps its own RunBook, so each workdir is a normal run's.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

import jax
import ml_collections

from jaxflow.data import holdout, registry, standardize
from jaxflow.run import assemble as assembly
from jaxflow.run import compile_cache, determinism_flags
from jaxflow.run.environment import environment
from jaxflow.run.fields import check_parallel_fields
from jaxflow.run.validate import GroupError, check_group, check_layout
from jaxflow.training import dispatch, interrupt, loop, parallel, progress, transfer
from jaxflow.training.run_axis import stack, take
from jaxflow.training.runbook import NonFiniteLossError, RunBook, record_label_noise
from jaxflow.workdir import LOCK_FILE, acquire_lock, prepare_workdir, write_json

Interrupted = interrupt.Interrupted

__all__ = ["GroupError", "Interrupted", "NonFiniteLossError", "train_and_evaluate", "train_group"]


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  quiet: bool = False,
  compiled: assembly.Compiled | None = None,
  progress_seconds: float = 10.0,
) -> dict:
  """Trains `config` in `workdir` (resuming what is there) and returns the summary written to summary.json.
  Progress (`jaxflow.training.progress`): a bar on a terminal, else a line per epoch at most every
  `progress_seconds`; none when `quiet`."""
  return train_group([config], [workdir], quiet=quiet, compiled=compiled, progress_seconds=progress_seconds)[0]


def train_group(
  configs: list[ml_collections.ConfigDict],
  workdirs: list[str],
  *,
  quiet: bool = False,
  compiled: assembly.Compiled | None = None,
  stack_sharding=None,
  command: str = "jaxflow train",
  progress_seconds: float = 10.0,
) -> list[dict]:
  """Trains runs of one static config; more than one as a single vmapped program.

  One run raises NonFiniteLossError on a NaN/inf loss; in a group, that run's summary says "failed" and
  the others go on. `stack_sharding`: a NamedSharding for the run axis (the runs spread over devices).
  Each workdir is locked for the call (`command` names the holder); SIGINT / SIGTERM stop the runs at the
  next boundary with a checkpoint and raise `Interrupted`. The group shows one progress display
  (`jaxflow.training.progress`: a bar, or a line per epoch at most every `progress_seconds`; none when `quiet`).
  """
  wall_start = time.perf_counter()
  config = configs[0]
  deterministic = determinism_flags.apply(config)  # XLA_FLAGS: before the backend starts
  compile_cache.enable(config.get("compilation_cache"))  # before anything compiles
  check_parallel_fields(config)
  parallel.initialize_distributed(config.parallel, command=command)  # before anything touches a device
  # ConfigError before anything is written; in every process of a multi-host job, which all stop if one fails
  problem, layout = parallel.run_everywhere(
    lambda: _validated(configs, compiled, stack_sharding), what="the config's validation"
  )
  validated = time.perf_counter()
  is_main = jax.process_index() == 0  # the one process that writes logs and the summary
  with contextlib.ExitStack() as held:

    def lock_workdirs() -> None:  # one writer per workdir: held until this function returns (or its process dies)
      for workdir in workdirs:
        held.enter_context(acquire_lock(workdir, command=command))

    locks = f"the lock of workdir {workdirs[0]}" if len(workdirs) == 1 else f"the locks of its {len(workdirs)} workdirs"
    parallel.run_on_main(lock_workdirs, what=locks)  # refused: every process stops
    # the lock file process 0 just wrote, seen by every process: else nothing is written
    parallel.check_shared([os.path.join(w, LOCK_FILE) for w in workdirs], what=f"workdir {workdirs[0]}")
    for cfg, workdir in zip(configs, workdirs, strict=True):
      parallel.run_on_main(functools.partial(prepare_workdir, workdir, cfg), what="the workdir check")
    with interrupt.stop_on_signals() as stop:
      times = {"start": wall_start, "validated": validated}
      display = progress.for_runs(
        workdirs=workdirs, config=config, quiet=quiet, is_main=is_main, min_seconds=progress_seconds
      )
      with contextlib.closing(display):
        times["determinism"] = determinism_flags.record(deterministic, jax.default_backend())
        summaries = _train_prepared(
          configs, workdirs, problem, layout, quiet, compiled, stack_sharding, stop, times, display
        )
  parallel.barrier("jaxflow:done")  # no process leaves (and tears down the collectives) before the others
  return summaries


def _validated(configs, compiled, stack_sharding) -> tuple:
  """(problem, layout) of runs that may train: the config's checks, its data looked at, the devices."""
  config = configs[0]
  problem = assembly.problem_of(config, compiled)
  if len(configs) > 1:
    check_group(configs, assembly.group_key, stack_sharding=stack_sharding)
    return problem, parallel.Layout("single")
  return problem, check_layout(config, problem)


def _train_prepared(configs, workdirs, problem, layout, quiet, compiled, stack_sharding, stop, times, display) -> list:
  """Assembles the runs of prepared, locked workdirs, resumes them and runs the epoch loop."""
  config, is_main, wall_start = configs[0], jax.process_index() == 0, times["start"]
  prepared = time.perf_counter()
  run = assembly.assemble(configs, problem=problem, layout=layout, stack_sharding=stack_sharding, compiled=compiled)
  if not run.on_host:  # written by process 0; a failure there stops every process
    parallel.run_on_main(lambda: _record_label_noise(run, workdirs), what="the label-noise records")
  held_out = _held_out(config)
  if held_out and is_main and not quiet:
    print(
      f"jaxflow: {config.data.name} has only a {held_out['split']!r} split: {held_out['held_out_examples']} of its "
      f"{held_out['train_examples'] + held_out['held_out_examples']} examples ({config.data.holdout:.0%}, stratified "
      f"by class, a fixed seed) are held out for evaluation (config.data.holdout; 0 refuses instead)",
      file=sys.stderr,
    )
  programs, compile_before_run = run.parts.programs, run.parts.programs.compile_seconds
  group_names = getattr(run.data, "group_names", None)
  books = [
    RunBook(c, w, is_main=is_main, class_names=problem.class_names, group_names=group_names)
    for c, w in zip(configs, workdirs)
  ]
  env = environment(mode=layout.mode, used=layout.num_devices)

  def extra(train_seconds: float) -> dict:
    compile_seconds = programs.compile_seconds - compile_before_run
    phases = {  # where the run's wall time went (the process's imports come before it)
      "validate": times["validated"] - wall_start,
      "workdir": prepared - times["validated"],
      **run.seconds,
      "checkpoint and log setup": times.get("resumed", prepared) - prepared - sum(run.seconds.values()),
      "compile": compile_seconds,
      "train": train_seconds,
    }
    phases["other (evaluation, logs, final)"] = time.perf_counter() - wall_start - sum(phases.values())
    return {
      "wall_seconds": time.perf_counter() - wall_start,
      "compile_seconds": compile_seconds,
      "train_seconds": train_seconds,
      "phases": phases,
      "determinism": times["determinism"],
      **env,
      **({"holdout": held_out} if held_out else {}),
    }

  try:
    state = _resumed_state(run, books)
    times["resumed"] = time.perf_counter()
    inputs = loop.LoopInputs(
      config=config,
      books=books,
      state=state,
      data=run.data,
      streams=run.streams,
      programs=programs,
      steps_per_epoch=run.parts.steps_per_epoch,
      per_dispatch=run.parts.per_dispatch,
      on_host=run.on_host,
      in_flight=dispatch.InFlight(dispatch.in_flight_limit(config, layout)),
      extra=extra,
      stop=stop,
      display=display,
    )
    return loop.train_epochs(inputs, place=functools.partial(assembly.place, layout))
  finally:
    for book in books:
      book.close()


def _held_out(config) -> dict | None:
  """summary.json's `holdout` entry when the eval split is held out of the dataset's only split."""
  kind = registry.dataset_kind(config.data.name)
  spec = kind.spec(config.data) if kind.stored else None
  if spec is None or not holdout.applies(config.data, spec, stored=True):
    return None
  return holdout.describe(config.data, spec.split_sizes[config.data.train_split])


def _record_label_noise(run: assembly.Assembled, workdirs: list[str]) -> None:
  """Each run's clean and noisy labels, and its feature scaling, in its workdir (runs sharing data share
  the record)."""
  for workdir, run_data in zip(workdirs, run.per_run_data, strict=True):
    if run_data.label_noise is not None:
      record_label_noise(workdir, run_data.label_noise)
    if run_data.standardization is not None:
      write_json(os.path.join(workdir, standardize.FILE), run_data.standardization.to_json())


def _open_logs(books: list[RunBook]) -> None:
  """Each run's logs, opened by process 0 after every restore (whose collectives come first): its tb/ may be a
  file, its disk full; a failure there stops every process with one line."""
  parallel.run_on_main(lambda: [book.open_logs() for book in books], what="opening the runs' logs")


def _resumed_state(run: assembly.Assembled, books: list[RunBook]):
  """The state to start from: each run's latest checkpoint, else the initial state (with `init_from`'s
  layers transferred in when the run starts fresh)."""
  config, state = run.configs[0], run.state
  if len({b.resumed_from for b in books}) > 1:
    steps = sorted({b.resumed_from for b in books}, key=str)
    raise GroupError(f"the runs of this group stopped at different steps ({steps}): resume them one after another")
  fresh = books[0].resumed_from is None
  if run.size == 1:
    state = books[0].resume(state)
    if fresh and config.init_from is not None:
      source = transfer.source_params(config.init_from)
      params = transfer.transfer(state.params, source, tuple(config.reinit))
      state = state.replace(params=assembly.place(run.layout, params))
    _open_logs(books)
    books[0].initial_histograms(state.params)
    return state
  runs = [book.resume(take(state, i)) for i, book in enumerate(books)]
  if len({b.resumed_from for b in books}) > 1:  # a damaged checkpoint sent one run back further
    steps = sorted({b.resumed_from for b in books}, key=str)
    raise GroupError(f"the runs of this group resumed at different steps ({steps}): resume them one after another")
  if config.init_from is not None and fresh:
    source = transfer.source_params(config.init_from)
    runs = [r.replace(params=transfer.transfer(r.params, source, tuple(config.reinit))) for r in runs]
  _open_logs(books)
  for book, r in zip(books, runs):
    book.initial_histograms(r.params)
  if not fresh or config.init_from is not None:
    state = stack(runs)
  return parallel.put(state, run.stack_sharding) if run.stack_sharding is not None else state
