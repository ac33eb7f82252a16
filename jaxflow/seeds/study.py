"""`jaxflow seeds`: the same settings trained with many seeds, and what the seeds change.

  run_seeds(config, workdir, seeds=16, vary=("all",), mode="auto", study=None, check_determinism=False)

Which seeds. Run i of a sweep sets `config.seeds.<name> = config.seed + i` for every stream it varies
(`vary`: init, data, dropout, augment, noise, sampler, or all); the other streams stay as the config
has them, so a sweep that varies `init` trains the same data order and dropout masks every time.
`study="sources"` runs one sweep per source, plus `one_bit` (every stream pinned; each seed flips the lowest
mantissa bit of one initial weight: rng.apply_one_bit), `all` and `none` (no stream varies: the floor set by
non-deterministic hardware), and decomposes the variance of the final metric by source. Every sweep also
gets its spread (jaxflow.seeds.spread): std of final accuracy and loss, pairwise disagreement and correctness
correlation with bootstrap-over-seeds intervals, the ensemble's accuracy, and its most disputed examples,
from one eval pass per seed over its trained parameters (jaxflow.seeds.evaluation). A source the
config never draws from (no dropout, no augmentation, no label noise, no oversampling) is not run: its
variance is 0 by construction, and the report says so.

Each seed is a normal run workdir (`WORKDIR/<sweep>/seed_000/`, with its config.json, metrics.jsonl,
checkpoints and summary.json): it can be inspected, or resumed with the same command; a rerun skips the
seeds that finished.

How the seeds are trained (`mode`):
- `sequential`: one run after another in this process, compiled once (`run.assemble.Compiled`).
- `vmap`: every seed of a sweep in one program, the states stacked on a leading seed axis
  (`run.train.train_group`).
- `devices`: like vmap, the seed axis spread over the devices (every process's under jax.distributed:
  `jaxflow.seeds.distributed`).
- on a cluster (`executor="ray"`, `address="HOST:PORT"`: jaxflow.run.executors): a sweep's unfinished seeds
  are split into one contiguous chunk per task the cluster runs at once; each task trains its chunk in the mode
  above (`auto` becomes `sequential`: timing here would measure this machine, not the workers), skipping the
  seeds that finished (a retried task resumes), and the summaries are read back from the seeds' workdirs.
- `auto` (default): times a few steps of each candidate on this model and hardware, takes the fastest,
  and writes the timings and the choice into the report. Measured on 2 CPU cores: vmapping 8 seeds of
  the digits MLP was 1.25-1.44x faster than running them one after another, vmapping a CNN 5x slower
  (XLA:CPU turns the batched convolution into a grouped one), so no fixed choice is right.
"""

from __future__ import annotations

import dataclasses
import os
import time

import ml_collections

from jaxflow.config import ConfigError, to_dict
from jaxflow.run import compile_cache, executors
from jaxflow.run.assemble import Compiled, problem_of
from jaxflow.run.train import GroupError, NonFiniteLossError, train_and_evaluate, train_group
from jaxflow.seeds import determinism, distributed, evaluation, mode_choice, spread
from jaxflow.seeds import report as seeds_report
from jaxflow.seeds.sweeps import (
  PERTURBATIONS,
  SOURCES,
  STUDY_SOURCES,
  active_sources,
  parse_vary,
  seed_config,
  seed_workdir,
)
from jaxflow.training import hparams, parallel
from jaxflow.workdir import completed_summary, read_json, read_summary, write_summary

MODES = ("auto", "vmap", "sequential", "devices")


@dataclasses.dataclass
class SweepResult:
  name: str  # the sweep: a source, "all", "none", or the --vary list joined by "+"
  vary: tuple[str, ...]
  workdirs: list[str]
  summaries: list[dict]
  mode: str
  seconds: float


def _train(mode: str, configs: list, workdirs: list[str], compiled: Compiled, quiet: bool) -> list[dict]:
  """Trains the given seeds in `mode`; a group that cannot run stacked falls back to one by one. Under
  jax.distributed (jaxflow.seeds.distributed) `devices` spreads them over every process's devices, or, when
  they do not divide over the processes, trains them one by one, each data-parallel over every device."""
  distributed.agree(workdirs)
  sharding = mode_choice.seed_sharding(len(configs)) if mode == "devices" else None
  if mode in ("vmap", "devices") and len(configs) > 1 and (sharding is not None or not distributed.several()):
    try:
      return train_group(configs, workdirs, quiet=quiet, compiled=compiled, stack_sharding=sharding)
    except GroupError as e:
      print(f"jaxflow seeds: {e}; training them one after another", flush=True)
  summaries = []
  for config, workdir in zip(configs, workdirs, strict=True):
    try:
      summaries.append(train_and_evaluate(config, workdir, quiet=quiet, compiled=compiled))
    except NonFiniteLossError as e:  # this seed failed; the study goes on
      summaries.append({"status": "failed", "error": str(e), "steps": e.step})
      if distributed.is_main():
        write_summary(workdir, summaries[-1])
  return summaries


def _train_on(executor, mode: str, configs: list, workdirs: list[str], quiet: bool) -> list[dict]:
  """The seeds as one contiguous chunk per task the cluster runs at once; each summary read back from its workdir."""
  n = min(len(configs), executor.slots)
  bounds = [len(configs) * k // n for k in range(n + 1)]
  chunks = [range(a, b) for a, b in zip(bounds, bounds[1:])]
  jobs = [(mode, [configs[i] for i in c], [workdirs[i] for i in c], quiet) for c in chunks]
  results = executor.map(train_seeds_task, jobs, workdirs=[job[2] for job in jobs])
  summaries = []
  for chunk, result in zip(chunks, results, strict=True):
    lost = isinstance(result, executors.TaskLost)
    error = f"its {executor.name} task was lost: {result}" if lost else f"its {executor.name} task wrote no summary"
    for i in chunk:
      summary = completed_summary(workdirs[i], configs[i]) or (None if lost else read_summary(workdirs[i]))
      summaries.append(summary or {"status": "failed", "error": error})
  return summaries


def train_seeds_task(job: tuple) -> None:
  """A cluster task (run.executors): trains its chunk of seeds in `mode`, those not finished yet (a retried task
  resumes where the lost one stopped), each in its normal workdir."""
  mode, configs, workdirs, quiet = job
  todo = [i for i, (c, w) in enumerate(zip(configs, workdirs, strict=True)) if completed_summary(w, c) is None]
  if todo:
    _train(mode, [configs[i] for i in todo], [workdirs[i] for i in todo], Compiled(), quiet)


def _previous_choice(workdir: str) -> dict | None:
  """The mode block of the study's last report.json, if any."""
  try:
    mode = read_json(os.path.join(workdir, "report.json")).get("mode")
  except (OSError, ValueError, AttributeError):
    return None
  return mode if isinstance(mode, dict) and mode.get("mode") in MODES else None


def run_sweep(
  config,
  workdir: str,
  *,
  name: str,
  vary: tuple[str, ...],
  seeds: int,
  mode: str,
  compiled: Compiled,
  quiet: bool,
  executor=None,
) -> SweepResult:
  start = time.perf_counter()
  configs = [seed_config(config, i, vary) for i in range(seeds)]
  workdirs = [seed_workdir(workdir, name, i) for i in range(seeds)]
  summaries: list[dict | None] = [completed_summary(w, c) for c, w in zip(configs, workdirs, strict=True)]
  todo = [i for i, s in enumerate(summaries) if s is None]
  if todo:
    todo_configs, todo_workdirs = [configs[i] for i in todo], [workdirs[i] for i in todo]
    if executor is None:
      trained = _train(mode, todo_configs, todo_workdirs, compiled, quiet)
    else:
      trained = _train_on(executor, mode, todo_configs, todo_workdirs, quiet)
    for i, summary in zip(todo, trained):
      summaries[i] = summary
  return SweepResult(
    name=name, vary=vary, workdirs=workdirs, summaries=summaries, mode=mode, seconds=time.perf_counter() - start
  )


def run_seeds(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  seeds: int = 16,
  vary: str | tuple = "all",
  mode: str = "auto",
  study: str | None = None,
  check_determinism: bool = False,
  quiet: bool = True,
  plots: bool = True,
  executor: str = "local",
  address: str | None = None,
) -> dict:
  """Runs the study into `workdir` and returns its report (also report.json / report.md / plots).

  `plots=False` leaves out plots/curves.png and finals.png (~0.5 s of matplotlib per study): for callers that
  run many small studies and draw their own figures, such as experiments/. `executor="ray"` with `address`
  ("HOST:PORT" of the head, or "auto") trains the seeds as tasks on that Ray cluster (jaxflow.run.executors)."""
  start = time.perf_counter()
  if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
    raise ConfigError(f"--seeds={seeds!r} must be a positive integer (seeds per sweep), e.g. 16")
  if mode not in MODES:
    raise ConfigError(f"--mode={mode!r} is not known; allowed: {', '.join(MODES)}")
  if study not in (None, "sources"):
    raise ConfigError(f"--study={study!r} is not known; allowed: sources")
  varied = parse_vary(vary)
  compile_cache.enable(config.get("compilation_cache"))
  distributed.join(config, mode=mode, check_determinism=check_determinism, executor=executor)  # before any device
  compiled = Compiled()
  # Every seed's config differs only in its seeds: one check before writing, in every process (all stop if one fails)
  problem = parallel.run_everywhere(lambda: problem_of(config, compiled), what="the config's validation")
  # A wrong --executor or --address is refused before anything is written (the cluster is joined here).
  with executors.open_executor(executor, address) as cluster, distributed.study_lock(workdir):
    active = active_sources(config)
    if study == "sources":
      sweeps = [(s, (s,)) for s in STUDY_SOURCES if active[s]]
      sweeps += [(p, (p,)) for p in PERTURBATIONS] + [("all", SOURCES), ("none", ())]
      skipped = [s for s in STUDY_SOURCES if not active[s]]
    else:
      name = "all" if varied == SOURCES else ("+".join(varied) if varied else "none")
      sweeps, skipped = [(name, varied)], []
    os.makedirs(workdir, exist_ok=True)
    finished = all(
      completed_summary(seed_workdir(workdir, n, i), seed_config(config, i, v)) for n, v in sweeps for i in range(seeds)
    )
    if mode != "auto":
      choice = {"mode": mode, "why": "chosen on the command line", "timings": None}
    elif finished:  # a rerun of a finished study: nothing to train, nothing to time; say how they were trained
      choice = _previous_choice(workdir) or {"mode": "sequential", "why": "", "timings": None}
      choice = {
        **choice,
        "why": "every seed had finished already: nothing was trained or timed now; they were trained: "
        f"{choice['why'] or 'in an unrecorded mode'}",
      }
    elif executor != "local":  # timing here would measure this machine, not the cluster's workers
      why = f"--executor={executor}: each task trains its seeds one after another"
      choice = {"mode": "sequential", "why": why, "timings": None}
    else:
      choice = mode_choice.choose_mode(config, seeds, compiled, vary=sweeps[0][1], sweeps=len(sweeps))
    if choice["mode"] == "devices" and not finished and executor == "local":  # only where seeds train now, here:
      choice = {**choice, "devices": mode_choice.devices_note(seeds)}  # a rerun keeps its last report's note (auto)
    given = {"seeds": seeds, "mode": choice["mode"], "compiled": compiled, "quiet": quiet, "executor": cluster}
    results = [run_sweep(config, workdir, name=n, vary=v, **given) for n, v in sweeps]
    report = seeds_report.build(
      config, results, choice=choice, skipped_sources=skipped, active=active, study=study, eval_size=problem.eval_size
    )
    programs: dict = {}  # the forward passes, compiled once for every sweep
    predicted = [evaluation.predict_sweep(config, r, problem, compiled, programs) for r in results]  # one pass a seed
    if not distributed.is_main():  # every process read the checkpoints (a collective); process 0 writes the study
      return report
    spread.add_to_report(report, results, predicted, workdir, plots=plots)
    if check_determinism:
      report["determinism"] = determinism.check(config, results[0], workdir)
    report["wall_seconds"] = time.perf_counter() - start
    report["config"] = to_dict(config)
    seeds_report.write(report, workdir, plots=plots)
    _write_hparams(workdir, results, config)
    return report


def _write_hparams(workdir: str, results: list[SweepResult], config) -> None:
  """TensorBoard's HPARAMS tab: each seed with its sweep, its stream seeds and its final metrics."""
  sessions = [
    {
      "run_dir": run_dir,
      "hparams": {"sweep": r.name, "seed_index": i, **{f"seeds.{s}": config.seed + i for s in r.vary}},
      "finals": hparams.run_finals(run_dir),
      "status": (summary or {}).get("status", "failed"),
    }
    for r in results
    for i, (run_dir, summary) in enumerate(zip(r.workdirs, r.summaries, strict=True))
  ]
  hparams.write_study(workdir, sessions, [config.train.monitor])
