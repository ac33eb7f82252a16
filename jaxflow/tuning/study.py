"""`jaxflow tune`: hyperparameter search over a config, one normal run workdir per trial.

  run_tune(config, workdir, space="configs/spaces/digits_mlp.py", method="bo", trials=30, batch=1,
           early_stop="none", acquisition="ei", objective="final")

Every argument (the space against the config included) is checked before anything is written; then the
study in `workdir` is started or resumed (study.json must hold the same base config, space, pruning rule
and objective), its loop runs (`study_loop.Study`), and its report is written (`report`).

Each trial applies its sampled overrides to a copy of the config (`space.overrides`: parameters that
are config fields, plus what the space's `derive` makes of them) and trains it in
`WORKDIR/trials/trial_0007/` (see `study_loop`).

The objective is the trial's `train.monitor` metric in the direction `train.monitor_mode`: by default
its *final* evaluation (summary.json `final.eval`, what the config gives when rerun), or with
`objective="best"` its best epoch's value (summary.json `best.value`, optimistic: the epoch is picked
on the evaluation split).

Batches (`batch` > 1): that many proposals per round (a kriging-believer batch for BO), trained as one
vmapped program where their configs allow. Pruning (`early_stop="median" | "asha"`, `pruning.py`) stops
poor trials after short probe runs.

On a cluster (`executor="ray"`, `address="HOST:PORT"`: `jaxflow.run.executors`): each trial of a round is
one Ray task training its normal workdir (the paths must be shared); the loop, the suggestions and the records
stay here, reading each trial's summary.json back, so the study's records are a local study's. A round is
`batch` proposals (default: as many as the cluster runs at once; BO proposes them as a kriging-believer
batch), so the suggestions stay round by round as in a local study.

Resumable: every trial's record (`trial.json`: params, status, objective, error, rungs) is written as
soon as it is proposed and after every run; a rerun of the same command keeps the completed, failed and
stopped trials, retrains the pending ones (their runs resume from their checkpoints) and proposes the
rest from all of them. A trial that raises (a NaN loss, a config error, anything else) is recorded as
failed with its error, and the study goes on.
"""

from __future__ import annotations

import os
import time

import ml_collections

from jaxflow.config import ConfigError, config_hash, config_hashes, to_dict
from jaxflow.run import compile_cache, executors
from jaxflow.run.validate import validate
from jaxflow.training import hparams
from jaxflow.tuning import pruning, suggest
from jaxflow.tuning import report as report_lib
from jaxflow.tuning.space_file import load_space
from jaxflow.tuning.study_loop import Study
from jaxflow.workdir import acquire_lock, read_json, to_jsonable, write_json

OBJECTIVES = ("final", "best")


def _check_counts(*, trials, batch, init_trials, objective: str) -> None:
  for name, value in (("trials", trials), ("batch", batch)):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
      raise ConfigError(f"--{name}={value!r} must be a positive integer")
  if init_trials is not None and (not isinstance(init_trials, int) or init_trials < 1):
    raise ConfigError(f"--init_trials={init_trials!r} must be a positive integer")
  if objective not in OBJECTIVES:
    raise ConfigError(f"--objective={objective!r} is not known; allowed: {', '.join(OBJECTIVES)}")


def _check_settings(workdir: str, settings: dict, base_hashes: tuple[str, ...]) -> dict:
  """A rerun must be the same study: the same base config (one of `base_hashes`: config_hashes), space and
  early-stopping rule. Returns the previous study.json ({} for a new study)."""
  path = os.path.join(workdir, "study.json")
  if not os.path.exists(path):
    return {}
  previous = read_json(path)
  if previous.get("base_config_hash") in base_hashes:  # an earlier jaxflow's hash of the same base config
    previous["base_config_hash"] = settings["base_config_hash"]
  for key, what in (
    ("base_config_hash", "base config"),
    ("space", "search space"),
    ("early_stop", "early stopping"),
    ("objective", "objective"),
  ):
    if previous.get(key) != to_jsonable(settings[key]):
      raise ConfigError(
        f"{workdir} holds a study with another {what}; use another --workdir, or rerun with the settings in {path}"
      )
  return previous


def _check_space(space, config: ml_collections.ConfigDict, early_stop: str) -> None:
  """The base config validates, the space fits it, and pruning's budget (train.epochs) is not tuned."""
  validate(config)
  space.check(config)
  if early_stop != "none" and "train.epochs" in space.override_fields:
    raise ConfigError(
      "--early_stop uses train.epochs as its budget, so the space may not tune train.epochs; "
      "remove it or use --early_stop=none"
    )


def _write_study_json(workdir: str, settings: dict, config: ml_collections.ConfigDict, suggester) -> None:
  """study.json: the settings a rerun must share, the sizes, the metric, and the grid a resumed study keeps."""
  os.makedirs(os.path.join(workdir, "trials"), exist_ok=True)
  write_json(
    os.path.join(workdir, "study.json"),
    {**settings, "metric": config.train.monitor, "mode": config.train.monitor_mode}
    | {"grid_levels": suggester.grid_levels, "grid_budget": suggester.grid_budget},
    indent=2,
  )


def _build_grid(suggester: suggest.Suggester, previous: dict) -> None:
  """The grid, built (and a too-big grid refused) before anything is written; a resumed grid keeps its levels."""
  if previous.get("method") == "grid" and previous.get("grid_levels") is not None:
    suggester.grid_levels = int(previous["grid_levels"])
    suggester.grid_budget = int(previous.get("grid_budget") or previous["trials"])
  suggester.grid_points()


def run_tune(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  space,
  method: str = "bo",
  trials: int = 30,
  batch: int | None = None,
  early_stop: str = "none",
  acquisition: str = "ei",
  objective: str = "final",
  init_trials: int | None = None,
  seed: int = 0,
  config_file: str | None = None,
  quiet: bool = True,
  executor: str = "local",
  address: str | None = None,
) -> dict:
  """Runs (or continues) the study in `workdir`; returns its report (also report.json / report.md /
  plots / best_config.py). Every argument is checked before anything is written. `batch=None`: 1, or with
  `executor="ray"` the tasks the cluster runs at once."""
  start = time.perf_counter()
  _check_counts(trials=trials, batch=1 if batch is None else batch, init_trials=init_trials, objective=objective)
  space = load_space(space)
  compile_cache.enable(config.get("compilation_cache"))
  suggester = suggest.Suggester(
    space, method=method, seed=seed, kind=acquisition, init_trials=init_trials, budget=trials
  )
  rungs = pruning.make_rungs(early_stop, config.train.epochs)
  _check_space(space, config, early_stop)
  # What a rerun must share (checked against study.json), then how the study searches.
  settings = {"base_config_hash": config_hash(config), "space": space.describe(), "early_stop": early_stop}
  settings |= {"objective": objective, "method": method, "acquisition": acquisition, "seed": seed}
  settings["config_file"] = config_file
  with executors.open_executor(executor, address) as cluster, acquire_lock(workdir, command="jaxflow tune"):
    batch = batch or (cluster.slots if cluster else 1)
    previous = _check_settings(workdir, settings, config_hashes(config))
    if method == "grid":
      _build_grid(suggester, previous)
    study = Study(
      config,
      workdir,
      space=space,
      method=method,
      trials=trials,
      batch=batch,
      rungs=rungs,
      objective=objective,
      quiet=quiet,
      suggester=suggester,
      executor=cluster,
    )
    study.load()
    sizes = {"trials": trials, "batch": batch, "rungs": list(rungs.epochs)}
    _write_study_json(workdir, {**settings, **sizes}, config, suggester)
    resumed = sum(t.status != "pending" for t in study.trials)
    study.run()
    searched = {"grid_levels": suggester.grid_levels, "init_trials": suggester.init_trials if method == "bo" else None}
    report = report_lib.build(study, settings=settings | sizes | searched)
    report["resumed_trials"] = resumed
    report["wall_seconds"] = time.perf_counter() - start
    report["config"] = to_dict(config)
    report_lib.write(report, study, config_file=config_file)
    _write_hparams(workdir, study, config)
    return report


def _write_hparams(workdir: str, study, config: ml_collections.ConfigDict) -> None:
  """TensorBoard's HPARAMS tab: each trial's tuned values and final metrics (jaxflow.training.hparams)."""
  sessions = [
    {
      "run_dir": t.workdir,
      "hparams": {"trial": t.index, **t.params},
      "finals": {**hparams.run_finals(t.workdir), "objective": t.value},
      "status": t.status,
    }
    for t in study.trials
    if t.status != "pending"
  ]
  hparams.write_study(workdir, sessions, ["objective", config.train.monitor])
